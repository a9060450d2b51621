/**
 * A forwarder that uses the store as its buffer. Live batches from the pipeline's fan-out go
 * straight to the platform while the sink keeps up; when its queue overflows, its endpoint stays
 * down, or the agent restarts, it falls behind and reads what it missed from the store, in ingest
 * order (ScanQuery `order: 'ingested'`), a page at a time, then goes back to live batches.
 *
 * Its cursor is a position in ingest order, persisted in run_path (forward-cursors.ts). In catch-up
 * it moves with each page sent. Live batches carry no position, so a reconciliation reads the keys
 * stored after the cursor once a tick and moves the cursor over those already sent live; a stored
 * event that was never sent live (published while the sink was catching up, or lost with a queue)
 * stops it, and once it has stopped it for `stuckMs` the sink catches up from the store. No event is
 * skipped; after a crash, the events sent live since the last tick are sent again (at least once;
 * each platform's idempotency key, such as Elasticsearch's `_id`, absorbs them).
 */
import type { Logger } from '../collect/logger.js';
import type { Sink, StoredBatch } from '../collect/sinks.js';
import { plainStringEnd } from '../model/apiserver-line.js';
import type { EventReader, Row } from '../store/contract.js';
import { nextIngestedUs } from '../store/ingest-clock.js';
import {
  decodeIngestCursor,
  type EventColumn,
  encodeIngestCursor,
  INGEST_CURSOR_COLUMN,
} from '../store/query.js';
import type { ForwardCursors } from './forward-cursors.js';

/** `yielding`: behind, and waiting for the agent's ingest to have room before it reads the store. */
export type FollowMode = 'live' | 'catching-up' | 'yielding';

export interface StoreFollowerOptions {
  /** Sends to the platform: retries until delivered or dead-lettered; throws only once shut down. */
  inner: Sink & { stats?(): object };
  store: EventReader;
  /** The agent's cluster: the events it stored are the ones it forwards. */
  cluster: string;
  cursors: ForwardCursors;
  log: Logger;
  /** Events read from the store per page while catching up; default 20,000. */
  pageRows?: number;
  /** How often the cursor is reconciled and the lag measured; default 1 s. */
  tickMs?: number;
  /** How long a stored event may wait unsent in live mode before the sink catches up; default 5 s. */
  stuckMs?: number;
  /**
   * True while the agent's ingest is saturated (a backlog in its pipeline). The sink then neither
   * sends live batches nor reads the store: on a machine of few cores each cycle it spent would be
   * taken from ingest (bench:agent, docs/performance.md). It follows the store once ingest has had
   * room for `yieldQuietMs`, then goes back to live batches.
   */
  busy?: () => boolean;
  /**
   * How long after its stamp a stored event is surely visible to a read (the store's longest commit):
   * 0 where commits become visible in stamp order (DuckDB, memory), the insert timeout on ClickHouse.
   * The cursor stays that far behind the newest events.
   */
  settleMs?: number;
  /** How long ingest must have room before a yielding sink reads the store again; default 1 s. */
  yieldQuietMs?: number;
  now?: () => number;
}

export interface FollowerStats {
  mode: FollowMode;
  /** Stored events of the cluster after the sink's position (not yet sent, or not yet reconciled). */
  lagEvents: number;
  /** How long ago the oldest of those was stored. */
  lagSeconds: number;
  /** Events sent from the store while catching up. */
  recoveredEvents: number;
  /** Events dropped from the sink's live queue (sent from the store instead). */
  droppedFromQueue: number;
  /** Times the sink fell behind and caught up from the store. */
  catchUps: number;
}

/** Sent keys kept to skip an event that arrives both from the store and live, around a switch. */
const RECENT_FROM_STORE_MAX = 100_000;
/** Pages one tick reconciles at most; the next tick goes on. */
const RECONCILE_MAX_PAGES = 5;
const RECONCILE_PAGE_ROWS = 10_000;
/** How often a yielding sink looks whether ingest has room. */
const YIELD_POLL_MS = 100;
/** Live batches on their way to the platform at once: one being sent, the next being encoded. */
const LIVE_IN_FLIGHT = 2;
/** How often a catching-up sink counts what it has left. */
const LAG_EVERY_MS = 5000;
/** Events of the batches a catching-up sink keeps for the moment it is live again. */
const HELD_MAX_EVENTS = 50_000;

const AUDIT_ID = Buffer.from('"auditID":"');
const STAGE = Buffer.from('"stage":"');

/** The first string value of `"key":"` in the event, when plain (no escapes). */
function plainField(buf: Buffer, key: Buffer): string | undefined {
  const at = buf.indexOf(key);
  if (at < 0) return undefined;
  const from = at + key.length;
  // A value with an escape is left to the parser.
  const end = plainStringEnd(buf, from, buf.length);
  if (end < 0) return undefined;
  return buf.toString('utf8', from, end);
}

/**
 * (cluster, auditID, stage) of a prepared event, found without parsing it (prepared events put both
 * fields before the bodies, as kube-apiserver writes them); parsed when that finds nothing.
 */
function keyOfEvent(cluster: string, buf: Buffer): string {
  let id = plainField(buf, AUDIT_ID);
  let stage = plainField(buf, STAGE);
  if (id === undefined || stage === undefined) {
    try {
      const e = JSON.parse(buf.toString('utf8')) as { auditID?: unknown; stage?: unknown };
      id = String(e.auditID);
      stage = String(e.stage);
    } catch {
      id = '';
      stage = '';
    }
  }
  return `${cluster}\n${id}\n${stage}`;
}

function keyOfRow(r: Row): string {
  return `${String(r.cluster)}\n${String(r.audit_id)}\n${String(r.stage)}`;
}

interface PageRead {
  /** The position the page was read after. */
  position: string;
  rows: Row[];
  error?: unknown;
}

async function firstPage(rows: AsyncIterable<Row[]>): Promise<Row[]> {
  // Leaving the loop ends the scan and frees what it holds (a connection of the store).
  for await (const page of rows) return page;
  return [];
}

export class StoreFollower implements Sink {
  private mode: FollowMode;
  private position: string;
  private readonly liveSent = new Set<string>();
  private readonly recentFromStore = new Set<string>();
  private lock: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  /** Live batches handed over and not yet sent: what they hold is on its way, not stuck. */
  private awaitingLive = 0;
  /** The deliveries of live batches on their way, oldest first; none rejects. */
  private readonly inFlight: Promise<void>[] = [];
  private lagMeasuredMs = Number.NEGATIVE_INFINITY;
  /** The newest batches handed over while catching up. */
  private readonly held: StoredBatch[] = [];
  private heldEvents = 0;
  private stopping = false;
  private catchingUp: Promise<void> | undefined;
  private stuck: { key: string; sinceMs: number } | undefined;
  private lastError: string | undefined;
  private readonly figures = { lagEvents: 0, lagSeconds: 0, recovered: 0, dropped: 0, catchUps: 0 };
  private readonly now: () => number;
  private readonly pageRows: number;

  constructor(private readonly opts: StoreFollowerOptions) {
    this.now = opts.now ?? Date.now;
    // Each page is a top-N of the keys after the cursor: fewer, larger pages read the store fewer
    // times (bench:agent: 400,000 events caught up in ~30 s with pages of 5,000).
    this.pageRows = opts.pageRows ?? 20_000;
    const saved = opts.cursors.get(opts.inner.name, opts.cluster);
    if (saved !== undefined) {
      this.position = saved;
      this.mode = 'catching-up';
    } else {
      // A new sink starts with what is stored from now on (`kaudit forward --since` sends the past):
      // the process's ingest clock is past every commit this process stamped, and the next one stamps
      // a later time.
      this.position = encodeIngestCursor({ us: nextIngestedUs(), cluster: '', auditId: '', stage: '' });
      this.mode = 'live';
      opts.cursors.set(opts.inner.name, opts.cluster, this.position);
    }
  }

  get name(): string {
    return this.opts.inner.name;
  }

  /** Starts the ticks, and the catch-up from the saved position. */
  start(): void {
    this.timer = setInterval(() => void this.tick(), this.opts.tickMs ?? 1000);
    this.timer.unref();
    if (this.mode === 'catching-up') this.catchUp('resuming from its saved position');
    else void this.opts.cursors.commit().catch((err: unknown) => this.fail('cursor write', err));
  }

  /**
   * Resolves once the batch is on its way and fewer than LIVE_IN_FLIGHT batches are: the fan-out's
   * next batch is encoded while the one before it is sent (the platform still gets them in order,
   * one request at a time: Forwarder). A live batch moves the cursor only once delivered, through
   * the reconciliation.
   */
  async export(batch: StoredBatch): Promise<void> {
    if (this.stopping) return;
    const busy = this.opts.busy?.() === true;
    if (this.mode === 'live' && busy) this.catchUp('ingest is saturated');
    // Held only while ingest has room: during a saturated ingest the catch-up reads them anyway, and
    // keeping 50,000 events alive there costs ingest its garbage collector's time.
    if (this.mode !== 'live') {
      // While it yields no query counts the lag: what it was handed and did not send is added.
      if (busy) this.figures.lagEvents += batch.events.length;
      return busy ? undefined : this.hold(batch);
    }
    this.awaitingLive++;
    await this.sendLive(batch);
    while (this.inFlight.length >= LIVE_IN_FLIGHT) await this.inFlight[0];
  }

  /**
   * Kept for the moment the catch-up ends: a batch stored just after its last read would otherwise
   * wait for the next reconciliation to be found missing. Only the newest are kept; older ones the
   * catch-up reads from the store.
   */
  private hold(batch: StoredBatch): void {
    this.held.push(batch);
    this.heldEvents += batch.events.length;
    while (this.heldEvents > HELD_MAX_EVENTS && this.held.length > 1)
      this.heldEvents -= this.held.shift()?.events.length ?? 0;
  }

  private sendLive(batch: StoredBatch): Promise<void> {
    return this.exclusive(async () => {
      // Decided again under the lock: a catch-up may have begun meanwhile.
      if (this.mode !== 'live') {
        this.awaitingLive--;
        return this.hold(batch);
      }
      const delivered: Promise<void> = this.sendBatchLive(batch)
        .catch((err: unknown) => {
          // Shut down mid-send: the events stay in the store, after the cursor, for the next start.
          if (!this.stopping) this.fail('sending', err);
        })
        .finally(() => {
          this.awaitingLive--;
          this.inFlight.splice(this.inFlight.indexOf(delivered), 1);
        });
      this.inFlight.push(delivered);
    });
  }

  /** Sends what the catch-up has not sent already; the keys are then the reconciliation's. */
  private async sendBatchLive(batch: StoredBatch): Promise<void> {
    const keys: string[] = [];
    const events: Buffer[] = [];
    for (const buf of batch.events) {
      const k = keyOfEvent(batch.cluster, buf);
      if (this.recentFromStore.has(k)) continue;
      keys.push(k);
      events.push(buf);
    }
    if (events.length === 0) return;
    await this.opts.inner.export(events.length === batch.events.length ? batch : { ...batch, events });
    for (const k of keys) this.liveSent.add(k);
  }

  /** Told by the fan-out that a batch did not fit the queue: those events come from the store. */
  dropped(batch: StoredBatch): void {
    this.figures.dropped += batch.events.length;
    if (this.mode === 'live') this.catchUp('its queue overflowed');
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private fail(what: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (this.lastError !== message)
      this.opts.log.error(`forwarding: ${what} failed`, { sink: this.name, error: message });
    this.lastError = `${what}: ${message}`;
  }

  private catchUp(why: string): void {
    if (this.stopping) return;
    if (this.mode === 'live') {
      this.figures.catchUps++;
      // Yielding to a saturated ingest is the design, not a fault.
      const level = this.opts.busy?.() === true ? 'info' : 'warn';
      this.opts.log[level]('forwarding: sink fell behind; catching up from the store', {
        sink: this.name,
        reason: why,
      });
    }
    this.mode = 'catching-up';
    this.catchingUp ??= (async () => {
      try {
        const ahead: { page: Promise<PageRead> | undefined } = { page: undefined };
        for (;;) {
          await this.roomForIngest();
          if (this.stopping || (await this.exclusive(() => this.catchUpPage(ahead)))) break;
        }
      } catch (err) {
        // The next tick starts again from the cursor.
        if (!this.stopping) this.fail('catch-up', err);
      } finally {
        this.catchingUp = undefined;
      }
    })();
  }

  /** Waits, without reading the store, until ingest has had room for `yieldQuietMs`. */
  private async roomForIngest(): Promise<void> {
    const busy = this.opts.busy;
    if (busy === undefined) return;
    const quietMs = this.opts.yieldQuietMs ?? 1000;
    let roomSince: number | undefined;
    while (!this.stopping) {
      const t = this.now();
      if (busy()) {
        roomSince = undefined;
        this.mode = 'yielding';
      } else if (this.mode !== 'yielding' || (roomSince !== undefined && t - roomSince >= quietMs)) {
        break;
      } else {
        roomSince ??= t;
      }
      await new Promise((r) => setTimeout(r, YIELD_POLL_MS));
    }
    if (this.mode === 'yielding') this.mode = 'catching-up';
  }

  /** One page of the store after `position`; a failure is handed back, never left unhandled. */
  private readPage(position: string): Promise<PageRead> {
    return firstPage(
      this.opts.store.scan({
        filter: { cluster: [this.opts.cluster], ingestedAfter: position },
        columns: ['raw', 'cluster', 'audit_id', 'stage'] satisfies EventColumn[],
        order: 'ingested',
        pageRows: this.pageRows,
      }),
    ).then(
      (rows) => ({ position, rows }),
      (error: unknown) => ({ position, rows: [], error }),
    );
  }

  /**
   * Sends the next page from the store; true once nothing is left (the sink is live again). The
   * page after it is read while this one is sent (`ahead`).
   */
  private async catchUpPage(ahead: { page: Promise<PageRead> | undefined }): Promise<boolean> {
    if (this.stopping) return true;
    // Live batches still on their way are delivered (their keys known) before the store is read.
    while (this.inFlight.length > 0) await this.inFlight[0];
    const { cluster } = this.opts;
    let read = ahead.page === undefined ? undefined : await ahead.page;
    ahead.page = undefined;
    if (read === undefined || read.position !== this.position) read = await this.readPage(this.position);
    if (read.error !== undefined) throw read.error;
    const rows = this.settled(read.rows);
    const next = rows.at(-1)?.[INGEST_CURSOR_COLUMN];
    if (read.rows.length === this.pageRows && rows.length === read.rows.length && typeof next === 'string')
      ahead.page = this.readPage(next);
    if (rows.length === 0) {
      this.mode = 'live';
      this.stuck = undefined;
      this.opts.log.info('forwarding: caught up with the store; sending live batches', { sink: this.name });
      const held = this.held.splice(0);
      this.heldEvents = 0;
      for (const batch of held) await this.sendBatchLive(batch);
      return true;
    }
    const events: Buffer[] = [];
    for (const r of rows) {
      const k = keyOfRow(r);
      if (this.liveSent.delete(k) || this.recentFromStore.has(k)) continue;
      events.push(Buffer.from(String(r.raw)));
      this.recentFromStore.add(k);
    }
    if (this.recentFromStore.size > RECENT_FROM_STORE_MAX) {
      // Trimmed in one go to the newest half: deleting the oldest one at a time makes a Set's
      // iteration skip ever more deleted entries (quadratic; 14% of a catch-up's CPU).
      const keep = [...this.recentFromStore].slice(-RECENT_FROM_STORE_MAX / 2);
      this.recentFromStore.clear();
      for (const k of keep) this.recentFromStore.add(k);
    }
    if (events.length > 0) await this.opts.inner.export({ cluster, events });
    this.figures.recovered += events.length;
    await this.moveTo(String(next));
    return false;
  }

  /**
   * The rows stored at least `settleMs` ago: the cursor never passes a younger one, since on a store
   * whose commits become visible out of stamp order (ClickHouse's parallel inserts) an earlier-stamped
   * batch may still appear before it.
   */
  private settled(rows: Row[]): Row[] {
    const settleMs = this.opts.settleMs ?? 0;
    if (settleMs <= 0) return rows;
    const edgeUs = (this.now() - settleMs) * 1000;
    const young = rows.findIndex((r) => decodeIngestCursor(String(r[INGEST_CURSOR_COLUMN])).us > edgeUs);
    return young < 0 ? rows : rows.slice(0, young);
  }

  private async moveTo(position: string): Promise<void> {
    this.position = position;
    this.opts.cursors.set(this.name, this.opts.cluster, position);
    await this.opts.cursors.commit();
  }

  /**
   * Moves the cursor over the stored events already sent live, in ingest order, up to the first one
   * that was not; catches up from the store when that one waits too long. The keys are read without
   * the lock, so that live batches go on meanwhile (under it, a reconciliation of a busy agent's
   * second held them up until the queue overflowed: bench:agent), and checked under it.
   */
  private async reconcile(): Promise<boolean> {
    const from = this.position;
    const rows: Row[] = [];
    for (let page = 0, after = from; page < RECONCILE_MAX_PAGES; page++) {
      const got = await firstPage(
        this.opts.store.scan({
          filter: { cluster: [this.opts.cluster], ingestedAfter: after },
          columns: ['cluster', 'audit_id', 'stage'],
          order: 'ingested',
          pageRows: RECONCILE_PAGE_ROWS,
        }),
      );
      rows.push(...got);
      const last = got.at(-1)?.[INGEST_CURSOR_COLUMN];
      if (got.length < RECONCILE_PAGE_ROWS || typeof last !== 'string') break;
      after = last;
    }
    let complete = false;
    const moved = await this.exclusive(async () => {
      // A catch-up began, or moved the cursor, meanwhile: these rows are its business now.
      if (this.mode !== 'live' || this.position !== from) return undefined;
      let upTo: string | undefined;
      let blocked: string | undefined;
      for (const r of this.settled(rows)) {
        const k = keyOfRow(r);
        if (!this.liveSent.delete(k) && !this.recentFromStore.has(k)) {
          blocked = k;
          break;
        }
        upTo = String(r[INGEST_CURSOR_COLUMN]);
      }
      if (blocked === undefined) {
        this.stuck = undefined;
        complete = rows.length < RECONCILE_MAX_PAGES * RECONCILE_PAGE_ROWS;
      } else {
        const t = this.now();
        if (this.stuck?.key !== blocked || this.awaitingLive > 0) this.stuck = { key: blocked, sinceMs: t };
        else if (t - this.stuck.sinceMs >= (this.opts.stuckMs ?? 5000))
          this.catchUp('a stored event was not sent live');
      }
      if (upTo !== undefined) {
        this.position = upTo;
        this.opts.cursors.set(this.name, this.opts.cluster, upTo);
      }
      return upTo;
    });
    if (moved !== undefined) await this.opts.cursors.commit();
    return complete;
  }

  private isLive(): boolean {
    return this.mode === 'live';
  }

  private async measureLag(): Promise<void> {
    const filter = { cluster: [this.opts.cluster], ingestedAfter: this.position };
    const behind = await this.opts.store.count(filter);
    this.figures.lagEvents = behind;
    if (behind === 0) {
      this.figures.lagSeconds = 0;
      return;
    }
    const next = await firstPage(
      this.opts.store.scan({ filter, columns: [], order: 'ingested', pageRows: 1 }),
    );
    const at = next[0]?.[INGEST_CURSOR_COLUMN];
    this.figures.lagSeconds =
      typeof at === 'string' ? Math.max(0, (this.now() * 1000 - decodeIngestCursor(at).us) / 1e6) : 0;
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopping) return;
    this.ticking = true;
    try {
      // The agent's store runs its queries one at a time beside the writes: a reconciliation that
      // reached the end needs no count to know the lag is nil, and a catch-up is measured every
      // few seconds only.
      const t = this.now();
      // Still live once it has read: a catch-up that began meanwhile keeps its lag.
      if (this.mode === 'live' && (await this.reconcile()) && this.isLive()) {
        this.figures.lagEvents = 0;
        this.figures.lagSeconds = 0;
      } else if (this.mode === 'yielding') {
        // No query while ingest is saturated: the lag in seconds is taken from the cursor (ingest is
        // storing events after it), the lag in events is the last one counted plus what the sink
        // was handed since (export).
        this.figures.lagSeconds = Math.max(0, (t * 1000 - decodeIngestCursor(this.position).us) / 1e6);
      } else if (t - this.lagMeasuredMs >= LAG_EVERY_MS || this.mode === 'live') {
        this.lagMeasuredMs = t;
        await this.measureLag();
      }
      if (this.mode !== 'live' && this.catchingUp === undefined) this.catchUp('retrying');
    } catch (err) {
      this.fail('reading the store', err);
    } finally {
      this.ticking = false;
    }
  }

  /** Stops sending; records how far the sink got, so that the next start resumes there. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    // The platform's retries end (a send in progress fails), and with them the catch-up.
    await this.opts.inner.shutdown();
    await Promise.all(this.inFlight);
    await this.catchingUp;
    try {
      if (this.mode === 'live') await this.reconcile();
      await this.opts.cursors.commit();
    } catch (err) {
      this.fail('saving the cursor', err);
    }
  }

  stats(): Record<string, unknown> & FollowerStats {
    return {
      ...(this.opts.inner.stats?.() ?? { name: this.name }),
      mode: this.mode,
      lagEvents: this.figures.lagEvents,
      lagSeconds: this.figures.lagSeconds,
      recoveredEvents: this.figures.recovered,
      droppedFromQueue: this.figures.dropped,
      catchUps: this.figures.catchUps,
      ...(this.lastError === undefined ? {} : { storeError: this.lastError }),
    };
  }
}
