import type { PreparedLine, PrepareOptions } from '../model/prepare.js';
import type { HeldBatch, Store, WriteResult } from '../store/contract.js';
import { type Clock, systemClock } from './clock.js';
import type { Logger } from './logger.js';
import type { FanOut } from './sinks.js';

export type { PreparedLine };

/** Decoding, deriving and redacting, bound to the agent's options (max event size, redaction). */
export interface Preparer {
  /** The options `line` prepares with: sources use them to pass plain lines on unprepared. */
  readonly options: PrepareOptions;
  line(line: Buffer): PreparedLine;
  value(value: unknown): PreparedLine;
}

export interface DeadLetterEntry {
  source: string;
  offset?: number;
  reason: string;
  data: Buffer | string;
}

/** The part of collect/dead-letter.ts the pipeline uses. */
export interface DeadLetterSink {
  add(entry: DeadLetterEntry): Promise<void>;
  /** Makes the entries durable; called before the input they came from is acknowledged. */
  sync?(): Promise<void>;
  readonly count: number;
}

export interface PipelineItem {
  source: string;
  events: Buffer[];
  /** Byte offset in the source of each event, when known: dead letters of rejected events carry it. */
  offsets?: number[];
  /** Lines that are not audit events; written to the dead-letter file when the batch is stored. */
  deadLetters: DeadLetterEntry[];
  /** The pipeline clock's now() when the item entered the queue; set by the pipeline. */
  enqueuedAt?: number;
  /**
   * File items are retried until the store takes them (their checkpoint waits); webhook items fail at
   * once so the caller answers 5xx and kube-apiserver retries.
   */
  retry: boolean;
  /**
   * The source had more input ready when it offered this item (a file read behind its end): a batch
   * short of `batchEvents` may wait for it past the flush interval, so a catch-up writes whole batches.
   */
  more?: boolean;
  /** Called once: with no error when every event is durably stored, else with the reason. */
  done?: (err?: Error) => void;
}

export interface PipelineOptions {
  store: Store;
  cluster: string;
  queueEvents: number;
  queueBytes: number;
  batchEvents: number;
  flushIntervalMs: number;
  /** Batches handed to the store at once (the embedded store imports two side by side); default 1. */
  writesInFlight?: number;
  deadLetter: DeadLetterSink;
  log: Logger;
  /** Consumers after the store: each stored batch goes to them once the store acknowledged it. */
  sinks?: FanOut;
  /** Time for flush intervals, backoff and the stop deadline (default: the system clock). */
  clock?: Clock;
}

export interface PipelineStats {
  queuedEvents: number;
  queuedBytes: number;
  queueEvents: number;
  queueBytes: number;
  batches: number;
  eventsStored: number;
  duplicates: number;
  rejected: number;
  deadLettered: number;
  storeErrors: number;
  storeError: string | undefined;
  /** Why dead letters cannot be written (a full disk), until they can: their input is not acknowledged meanwhile. */
  deadLetterError: string | undefined;
  lastWriteAt: string | undefined;
  latencyAvgMs: number;
  latencyPeakMs: number;
}

const INITIAL_BACKOFF_MS = 250;
/** Put in place of an event the store has taken in: the queue keeps counting it, not holding it. */
const RELEASED = Buffer.alloc(0);
const MAX_BACKOFF_MS = 10_000;
/** How many flush intervals a partial batch may wait for a source that said more is coming. */
const MAX_LINGER_INTERVALS = 4;

function itemBytes(item: PipelineItem): number {
  let n = 0;
  for (const e of item.events) n += e.length;
  return n;
}

interface Entry {
  item: PipelineItem;
  bytes: number;
  /** Offer order: acknowledgements go out in it, so a file's checkpoint never passes a gap. */
  seq: number;
  /** Events handed to the store so far: a batch may take part of an item. */
  next: number;
  /** Events the store has taken. */
  stored: number;
  /** An item without events (only dead letters) has been put in a batch. */
  handed: boolean;
  /** A webhook item the store failed: refused, and out of the queue. */
  refused: boolean;
  /** Every event stored and the item's dead letters written: it may be acknowledged. */
  complete: boolean;
  /** Dead letters of the item whose write (or sync) failed: written again before it is acknowledged. */
  pendingLetters?: DeadLetterEntry[] | undefined;
}

/** Events [from, to) of one queued item, as part of a batch. */
interface Slice {
  entry: Entry;
  from: number;
  to: number;
}

/** One batch for the store: written again, whole, if it fails. */
interface Batch {
  slices: Slice[];
  /** Once the store has taken the events in: the queue's items no longer hold them (unless sinks want them). */
  held?: HeldBatch | undefined;
  /** A write of it failed: it is being written again. */
  failed?: boolean;
}

/**
 * The stage between sources and the store, shaped like OpenTelemetry's BatchSpanProcessor: a bounded
 * queue, batches cut by size or age, up to `writesInFlight` writes at once. A full queue slows file
 * sources (`offer` waits) and refuses webhook requests (`tryOffer` is false) instead of growing
 * memory. Items count against the queue until they are acknowledged, and are acknowledged in the
 * order they were offered even when a later batch is stored first (webhook items, which move no
 * checkpoint, as soon as they are stored).
 */
export class Pipeline {
  /** Every item not yet acknowledged, in offer order. */
  private readonly queue: Entry[] = [];
  private seq = 0;
  private queuedEvents = 0;
  private queuedBytes = 0;
  private writing = 0;
  /** Batches whose write failed, sent again before anything newer, oldest first. */
  private retry: Batch[] = [];
  /** Failed batches being written again now. */
  private failedInFlight = 0;
  private readonly roomWaiters: (() => void)[] = [];
  private wakeFlusher: (() => void) | undefined;
  private stopping = false;
  private closed = false;
  private loop: Promise<void> | undefined;
  private abortDeadline = Number.POSITIVE_INFINITY;
  private retryAt = 0;
  private backoffMs = INITIAL_BACKOFF_MS;
  private readonly counters = {
    batches: 0,
    eventsStored: 0,
    duplicates: 0,
    rejected: 0,
    deadLettered: 0,
    storeErrors: 0,
  };
  private latencySumMs = 0;
  private latencyCount = 0;
  private latencyPeakMs = 0;
  private storeError: string | undefined;
  private deadLetterError: string | undefined;
  private lettersRetryAt = 0;
  private lettersBackoffMs = INITIAL_BACKOFF_MS;
  private lastWriteAt: Date | undefined;

  private readonly clock: Clock;

  constructor(private readonly opts: PipelineOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  private get feedsSinks(): boolean {
    return (this.opts.sinks?.size ?? 0) > 0;
  }

  start(): void {
    this.loop ??= this.run();
  }

  private hasRoom(events: number, bytes: number): boolean {
    if (this.queue.length === 0) return true;
    return (
      this.queuedEvents + events <= this.opts.queueEvents && this.queuedBytes + bytes <= this.opts.queueBytes
    );
  }

  private push(item: PipelineItem, bytes: number): void {
    item.enqueuedAt = this.clock.now();
    this.queue.push({
      item,
      bytes,
      seq: this.seq++,
      next: 0,
      stored: 0,
      handed: false,
      refused: false,
      complete: false,
    });
    this.queuedEvents += item.events.length;
    this.queuedBytes += bytes;
    // A full batch, a first item, or the end of a source's run of `more` (a short batch waiting
    // for it may go now).
    if (this.queuedEvents >= this.opts.batchEvents || this.queue.length === 1 || item.more !== true)
      this.wakeFlusher?.();
  }

  /** Waits for room, then queues the item; throws once the pipeline has shut down. */
  async offer(item: PipelineItem): Promise<void> {
    const bytes = itemBytes(item);
    for (;;) {
      if (this.closed) throw new Error('the pipeline has shut down');
      if (this.hasRoom(item.events.length, bytes)) break;
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
    this.push(item, bytes);
  }

  /**
   * Queues the item if there is room now; false when the queue is full, the store is failing (a
   * batch waits to be written again, before anything newer), or the pipeline is shutting down.
   */
  tryOffer(item: PipelineItem): boolean {
    if (this.stopping || this.closed) return false;
    if (this.retry.length > 0 && this.storeError !== undefined) return false;
    const bytes = itemBytes(item);
    if (!this.hasRoom(item.events.length, bytes)) return false;
    this.push(item, bytes);
    return true;
  }

  /**
   * Stops after the queue is written (sources may still add while it drains); gives up retrying a
   * failing store after `timeoutMs`. What is left is reported as not stored, so no checkpoint moves.
   */
  async shutdown(timeoutMs = 15_000): Promise<void> {
    this.stopping = true;
    this.abortDeadline = this.clock.now() + timeoutMs;
    this.wakeFlusher?.();
    await this.loop;
    // One last try for dead letters that failed; what still fails is not acknowledged.
    if (this.deadLetterError !== undefined) await this.retryLetters();
    this.closed = true;
    for (const batch of this.retry.splice(0)) await this.discard(batch);
    for (const w of this.roomWaiters.splice(0)) w();
    for (const { item } of this.queue.splice(0))
      item.done?.(new Error('agent stopped before the store took it'));
    this.queuedEvents = 0;
    this.queuedBytes = 0;
  }

  stats(): PipelineStats {
    return {
      queuedEvents: this.queuedEvents,
      queuedBytes: this.queuedBytes,
      queueEvents: this.opts.queueEvents,
      queueBytes: this.opts.queueBytes,
      ...this.counters,
      storeError: this.storeError,
      deadLetterError: this.deadLetterError,
      lastWriteAt: this.lastWriteAt?.toISOString(),
      latencyAvgMs: this.latencyCount === 0 ? 0 : this.latencySumMs / this.latencyCount,
      latencyPeakMs: this.latencyPeakMs,
    };
  }

  private sleep(ms: number): Promise<void> {
    // Dead letters waiting to be written again wake the loop at their time.
    if (this.deadLetterError !== undefined)
      ms = Math.max(1, Math.min(ms, this.lettersRetryAt - this.clock.now()));
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(done, ms);
      const self = this;
      function done(): void {
        self.clock.clearTimeout(timer);
        if (self.wakeFlusher === done) self.wakeFlusher = undefined;
        resolve();
      }
      this.wakeFlusher = done;
    });
  }

  private waitingEvents(): number {
    let n = 0;
    for (const b of this.retry) for (const r of b.slices) n += r.to - r.from;
    for (const e of this.queue) n += e.item.events.length - e.next;
    return n;
  }

  /**
   * A source is behind its input and not blocked on room in the queue: the batch will fill soon.
   * A partial batch in a catch-up costs twice (the embedded store writes it through its WAL and compresses it
   * again at the next checkpoint) and stores nothing sooner, since the writers are busy anyway.
   */
  private moreComing(): boolean {
    return this.queue[this.queue.length - 1]?.item.more === true && this.roomWaiters.length === 0;
  }

  /** The oldest entry with something still to hand over, for the flush-interval check. */
  private oldestWaiting(): Entry | undefined {
    if (this.retry.length > 0) return this.retry[0]?.slices[0]?.entry;
    return this.queue.find((e) => e.next < e.item.events.length || (e.item.events.length === 0 && !e.handed));
  }

  /**
   * Takes up to `batchEvents` events, splitting an item where the batch is full: a store batch of
   * exactly that many events is the cheap kind (a whole row group of the embedded store).
   */
  private takeBatch(): Slice[] {
    const slices: Slice[] = [];
    let n = 0;
    const limit = this.opts.batchEvents;
    // File items and webhook items go in separate batches: a failed file batch waits in the store
    // (holding its events' keys) to be written again, and a refused webhook item's resend must not
    // count as a duplicate of a copy that may never be written.
    let retry: boolean | undefined;
    for (const e of this.queue) {
      if (n >= limit) break;
      const len = e.item.events.length;
      const waiting = len === 0 ? !e.handed : e.next < len;
      if (!waiting) continue;
      retry ??= e.item.retry;
      if (e.item.retry !== retry) continue;
      if (len === 0) {
        e.handed = true;
        slices.push({ entry: e, from: 0, to: 0 });
        continue;
      }
      const take = Math.min(len - e.next, limit - n);
      slices.push({ entry: e, from: e.next, to: e.next + take });
      e.next += take;
      n += take;
    }
    return slices;
  }

  private async run(): Promise<void> {
    const maxWriting = Math.max(1, this.opts.writesInFlight ?? 1);
    for (;;) {
      if (this.deadLetterError !== undefined && this.clock.now() >= this.lettersRetryAt)
        await this.retryLetters();
      const head = this.oldestWaiting();
      if (head === undefined) {
        if (this.stopping && this.writing === 0) return;
        await this.sleep(60_000);
        continue;
      }
      if (this.writing >= maxWriting) {
        await this.sleep(60_000);
        continue;
      }
      const now = this.clock.now();
      if (now < this.retryAt) {
        if (this.stopping && now >= this.abortDeadline) {
          if (this.writing === 0) return;
          await this.sleep(60_000);
          continue;
        }
        const until = this.stopping ? Math.min(this.retryAt, this.abortDeadline) : this.retryAt;
        await this.sleep(Math.max(1, until - now));
        continue;
      }
      const age = this.clock.now() - (head.item.enqueuedAt ?? 0);
      if (!this.stopping && this.retry.length === 0 && this.waitingEvents() < this.opts.batchEvents) {
        if (age < this.opts.flushIntervalMs) {
          await this.sleep(this.opts.flushIntervalMs - age);
          continue;
        }
        if (this.moreComing() && age < this.opts.flushIntervalMs * MAX_LINGER_INTERVALS) {
          // Woken by push() once a full batch is queued or the source's run of `more` ends; the
          // sleep bounds the wait.
          await this.sleep(this.opts.flushIntervalMs * MAX_LINGER_INTERVALS - age);
          continue;
        }
      }
      const batch = this.retry.shift() ?? { slices: this.takeBatch() };
      if (batch.failed === true) this.failedInFlight++;
      this.writing++;
      void this.writeBatch(batch).finally(() => {
        this.writing--;
        this.wakeFlusher?.();
      });
    }
  }

  /**
   * Writes one batch; on failure webhook items are refused and the batch is queued again whole for
   * its file items. Once the store has taken the events in (staged them), the queue lets go of them:
   * a retry writes the store's copy.
   */
  private async writeBatch(batch: Batch): Promise<void> {
    const { slices } = batch;
    let result: WriteResult | undefined;
    try {
      if (batch.held === undefined) {
        const events: Buffer[] = [];
        for (const { entry, from, to } of slices)
          for (let i = from; i < to; i++) events.push(entry.item.events[i] as Buffer);
        if (events.length > 0) {
          batch.held = this.opts.store.hold({ events, cluster: this.opts.cluster });
          events.length = 0;
          // The queue lets go of what the store holds, unless sinks want the events after the store.
          if (!this.feedsSinks)
            for (const { entry, from, to } of slices) entry.item.events.fill(RELEASED, from, to);
        }
      }
      if (batch.held !== undefined) result = await batch.held.commit();
    } catch (err) {
      if (batch.failed === true) this.failedInFlight--;
      batch.failed = true;
      const message = err instanceof Error ? err.message : String(err);
      if (this.storeError === undefined)
        this.opts.log.error('store write failed; will retry', { error: message });
      this.storeError = message;
      this.counters.storeErrors++;
      this.retryAt = this.clock.now() + this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
      // Webhook items are refused now (the client retries), and so are those waiting behind this
      // batch, since retries go first (tryOffer takes no more while a failed file batch waits);
      // file items wait, and so do their checkpoints (a batch holds one kind or the other).
      const refusal = new Error(`store unavailable: ${message}`);
      let again = false;
      for (const { entry } of slices) {
        if (entry.item.retry) again = true;
        else this.refuse(entry, refusal);
      }
      for (const entry of this.queue.filter((e) => !e.item.retry && e.next === 0 && !e.handed))
        this.refuse(entry, refusal);
      if (again) await this.requeue(batch);
      else await this.discard(batch);
      this.acknowledge();
      return;
    }
    // Recovered once no failed batch waits or is being written again: another batch's success
    // does not lift the backoff.
    if (batch.failed === true) this.failedInFlight--;
    if (this.retry.length === 0 && this.failedInFlight === 0) {
      if (this.storeError !== undefined) this.opts.log.info('store writes recovered');
      this.storeError = undefined;
      this.backoffMs = INITIAL_BACKOFF_MS;
      this.retryAt = 0;
    }
    this.lastWriteAt = new Date();
    this.counters.batches++;
    if (result !== undefined) {
      this.counters.eventsStored += result.stored;
      this.counters.duplicates += result.duplicates;
      this.counters.rejected += result.rejected.length;
    }

    if (result !== undefined && this.feedsSinks) this.publish(slices, result);
    // Letters by the entry they belong to; `undefined`: the entry's own dead letters.
    const letters: { entry: Entry; letter: DeadLetterEntry | undefined }[] = [];
    if (result !== undefined && result.rejected.length > 0) {
      const owner: Entry[] = [];
      const at: number[] = [];
      for (const { entry, from, to } of slices)
        for (let i = from; i < to; i++) {
          owner.push(entry);
          at.push(i);
        }
      for (const r of result.rejected) {
        const entry = owner[r.index];
        // A refused item's events are the client's to send again, and dead-lettered then.
        if (entry === undefined || entry.refused) continue;
        const offset = entry.item.offsets?.[at[r.index] ?? -1];
        letters.push({
          entry,
          letter: {
            source: entry.item.source,
            reason: r.reason,
            data: r.data,
            ...(offset === undefined ? {} : { offset }),
          },
        });
      }
    }
    const now = this.clock.now();
    const completed: Entry[] = [];
    for (const { entry, from, to } of slices) {
      if (entry.refused) continue;
      entry.stored += to - from;
      if (entry.complete || completed.includes(entry) || entry.stored < entry.item.events.length) continue;
      completed.push(entry);
      // The item is whole in the store now: its own dead letters go with it.
      letters.push({ entry, letter: undefined });
      if (entry.item.events.length > 0) {
        const latency = now - (entry.item.enqueuedAt ?? now);
        this.latencySumMs += latency;
        this.latencyCount++;
        if (latency > this.latencyPeakMs) this.latencyPeakMs = latency;
      }
    }
    const byEntry = new Map<Entry, DeadLetterEntry[]>();
    for (const { entry, letter } of letters) {
      const list = byEntry.get(entry) ?? [...(entry.pendingLetters ?? [])];
      entry.pendingLetters = undefined;
      if (letter === undefined) list.push(...entry.item.deadLetters);
      else list.push(letter);
      byEntry.set(entry, list);
    }
    await this.writeLetters(byEntry);
    // Only now, after their dead letters are durable, may another batch's completion ack them.
    for (const entry of completed) this.complete(entry);
    this.acknowledge();
  }

  /**
   * Writes each entry's dead letters and syncs them. An entry whose letters fail (a full disk) keeps
   * the rest as pending: it is not acknowledged until they are written (see complete()).
   */
  private async writeLetters(byEntry: Map<Entry, DeadLetterEntry[]>): Promise<void> {
    let written = 0;
    let failure: string | undefined;
    for (const [entry, list] of byEntry) {
      for (let i = 0; i < list.length; i++) {
        try {
          await this.opts.deadLetter.add(list[i] as DeadLetterEntry);
          this.counters.deadLettered++;
          written++;
        } catch (err) {
          failure = err instanceof Error ? err.message : String(err);
          entry.pendingLetters = list.slice(i);
          break;
        }
      }
    }
    if (written > 0) {
      try {
        await this.opts.deadLetter.sync?.();
      } catch (err) {
        failure = err instanceof Error ? err.message : String(err);
        // Written but perhaps not on disk: each entry waits for a sync that succeeds.
        for (const entry of byEntry.keys()) entry.pendingLetters ??= [];
      }
    }
    if (failure !== undefined) {
      if (this.deadLetterError === undefined)
        this.opts.log.error('dead-letter write failed; their input is not acknowledged until it succeeds', {
          error: failure,
        });
      this.deadLetterError = failure;
      this.lettersRetryAt = this.clock.now() + this.lettersBackoffMs;
      this.lettersBackoffMs = Math.min(this.lettersBackoffMs * 2, MAX_BACKOFF_MS);
    } else if (
      byEntry.size > 0 &&
      this.deadLetterError !== undefined &&
      !this.queue.some((e) => e.pendingLetters)
    ) {
      this.opts.log.info('dead-letter writes recovered');
      this.deadLetterError = undefined;
      this.lettersBackoffMs = INITIAL_BACKOFF_MS;
    }
  }

  /**
   * Every event of the entry is stored. With its dead letters written it may be acknowledged; if
   * they are not, a webhook item is refused (the client sends it again: its events are duplicates
   * then, its bad items written again), and a file item waits for retryLetters().
   */
  private complete(entry: Entry): void {
    if (entry.pendingLetters === undefined) entry.complete = true;
    else if (!entry.item.retry)
      this.refuse(
        entry,
        new Error(`dead letters cannot be written: ${this.deadLetterError ?? 'unknown error'}`),
      );
  }

  /** Writes the pending dead letters of items whose events are all stored, and acknowledges them. */
  private async retryLetters(): Promise<void> {
    const waiting = this.queue.filter(
      (e) => e.pendingLetters !== undefined && !e.complete && e.stored >= e.item.events.length,
    );
    if (waiting.length === 0) {
      // Entries not stored whole yet write theirs with their last batch.
      if (!this.queue.some((e) => e.pendingLetters !== undefined)) this.deadLetterError = undefined;
      this.lettersRetryAt = this.clock.now() + this.lettersBackoffMs;
      return;
    }
    const byEntry = new Map<Entry, DeadLetterEntry[]>();
    for (const e of waiting) {
      byEntry.set(e, e.pendingLetters ?? []);
      e.pendingLetters = undefined;
    }
    await this.writeLetters(byEntry);
    for (const e of waiting) this.complete(e);
    this.acknowledge();
  }

  /** The batch's newly stored events (not its duplicates or rejects) go to the sinks. */
  private publish(slices: readonly Slice[], result: WriteResult): void {
    const skip = new Set<number>(result.duplicateIndexes ?? []);
    for (const r of result.rejected) skip.add(r.index);
    const events: Buffer[] = [];
    let index = 0;
    for (const { entry, from, to } of slices)
      for (let i = from; i < to; i++, index++)
        if (!skip.has(index) && !entry.refused) events.push(entry.item.events[i] as Buffer);
    this.opts.sinks?.publish({ cluster: this.opts.cluster, events });
  }

  private refuse(entry: Entry, err: Error): void {
    if (entry.refused) return;
    entry.refused = true;
    this.remove(entry);
    entry.item.done?.(err);
  }

  /** Queues a batch to be committed again (the store holds its events), before anything newer. */
  private async requeue(batch: Batch): Promise<void> {
    this.retry.push(batch);
    this.retry.sort((x, y) => firstSeq(x) - firstSeq(y));
  }

  private async discard(batch: Batch): Promise<void> {
    try {
      await batch.held?.discard();
    } catch (err) {
      this.opts.log.error('store discard failed', { error: String(err) });
    }
  }

  /** Acknowledges stored items from the front of the queue, stopping at the first that is not. */
  private acknowledge(): void {
    for (;;) {
      const entry = this.queue[0];
      if (entry === undefined || !entry.complete) break;
      this.remove(entry);
      entry.item.done?.();
    }
    // A webhook item moves no checkpoint: once stored it is answered, not held behind earlier file
    // items. (Its batch succeeded only once every batch it counted duplicates against was stored.)
    for (const entry of this.queue.filter((e) => e.complete && !e.item.retry)) {
      this.remove(entry);
      entry.item.done?.();
    }
  }

  private remove(entry: Entry): void {
    const index = this.queue.indexOf(entry);
    if (index < 0) return;
    this.queue.splice(index, 1);
    this.queuedEvents -= entry.item.events.length;
    this.queuedBytes -= entry.bytes;
    const waiters = this.roomWaiters.splice(0);
    for (const w of waiters) w();
  }
}

function firstSeq(batch: Batch): number {
  return batch.slices[0]?.entry.seq ?? 0;
}
