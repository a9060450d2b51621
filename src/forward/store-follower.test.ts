import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ndjsonAuditIds, PlatformServer } from '../../test/fixtures/forward/platform-server.js';
import { createLogger } from '../collect/logger.js';
import { FanOut } from '../collect/sinks.js';
import type { EventReader, Row } from '../store/contract.js';
import { nextIngestedUs } from '../store/ingest-clock.js';
import { MemoryStore } from '../store/memory/memory-store.js';
import { decodeIngestCursor, encodeIngestCursor, INGEST_CURSOR_COLUMN } from '../store/query.js';
import { httpEncoder } from './encoders/http.js';
import { FORWARD_CURSORS_FILE, ForwardCursors } from './forward-cursors.js';
import { Forwarder } from './forwarder.js';
import { StoreFollower } from './store-follower.js';

const quiet = createLogger({ out: { write: () => true } as unknown as NodeJS.WritableStream });

function event(i: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      level: 'Metadata',
      auditID: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      stage: 'ResponseComplete',
      requestURI: `/api/v1/namespaces/payments/configmaps/c${i}`,
      verb: 'get',
      user: { username: 'alice' },
      objectRef: { resource: 'configmaps', namespace: 'payments', name: `c${i}`, apiVersion: 'v1' },
      responseStatus: { code: 200 },
      requestReceivedTimestamp: new Date(Date.UTC(2026, 0, 15, 9, 0, 0) + i).toISOString(),
      stageTimestamp: new Date(Date.UTC(2026, 0, 15, 9, 0, 0) + i + 1).toISOString(),
    }),
  );
}

let dir: string;
let server: PlatformServer;
let url: string;
let store: MemoryStore;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kaudit-follow-'));
  server = new PlatformServer(() => undefined);
  url = await server.start();
  store = new MemoryStore();
});

afterEach(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The auditIDs the platform took, in the order it took them (its 503s not counted). */
const received = () => ndjsonAuditIds(server);

const idOf = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;

function follower(cursors: ForwardCursors, fanOutMax = 100, busy?: () => boolean) {
  const inner = new Forwarder({
    name: 'ndjson',
    type: 'http',
    url: `${url}/ingest`,
    encoder: httpEncoder(),
    deadLetter: async () => {
      throw new Error('nothing is refused in this test');
    },
    log: quiet,
    sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 10))),
  });
  const f = new StoreFollower({
    inner,
    store,
    cluster: 'prod',
    cursors,
    log: quiet,
    pageRows: 64,
    tickMs: 10,
    stuckMs: 50,
    ...(busy === undefined ? {} : { busy, yieldQuietMs: 50 }),
  });
  const fanOut = new FanOut([f], { log: quiet, maxQueueEvents: fanOutMax });
  f.start();
  /** What the pipeline does: store a batch, then hand its newly stored events to the sinks. */
  const ingest = async (from: number, n: number) => {
    const events = Array.from({ length: n }, (_, k) => event(from + k));
    const r = await store.write({ events, cluster: 'prod' });
    const skip = new Set(r.duplicateIndexes);
    fanOut.publish({ cluster: 'prod', events: events.filter((_, i) => !skip.has(i)) });
  };
  return { f, fanOut, ingest };
}

async function until(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('StoreFollower: the store is the buffer', () => {
  it('an outage longer than the queue holds: every stored event arrives once, in order, then live again', async () => {
    const { f, fanOut, ingest } = follower(ForwardCursors.open(dir));
    for (let b = 0; b < 5; b++) {
      await ingest(b * 20, 20);
      await until('a batch live', () => received().length === (b + 1) * 20);
    }
    expect(f.stats().mode).toBe('live');

    server.down = true;
    // 400 events against a queue of 100: most are dropped from the queue and must come from the store.
    for (let b = 5; b < 25; b++) await ingest(b * 20, 20);
    await until('the queue to overflow', () => f.stats().droppedFromQueue > 0);
    expect(f.stats().mode).toBe('catching-up');
    server.down = false;
    await until('all 500', () => received().length >= 500);
    await until('live again', () => f.stats().mode === 'live');
    for (let b = 25; b < 30; b++) await ingest(b * 20, 20);
    await until('all 600', () => received().length >= 600);
    await until('no lag', () => f.stats().lagEvents === 0);

    const ids = received();
    expect(ids).toEqual(Array.from({ length: 600 }, (_, i) => idOf(i)));
    const s = f.stats();
    expect(s.recoveredEvents).toBeGreaterThan(0);
    expect(s.catchUps).toBe(1);
    expect(s.lagSeconds).toBe(0);
    await fanOut.shutdown(1000);

    // The saved cursor is the last stored event: a restart sends nothing again.
    const saved = JSON.parse(readFileSync(join(dir, FORWARD_CURSORS_FILE), 'utf8')) as {
      sinks: Record<string, { position: string }>;
    };
    const last: unknown[] = [];
    for await (const page of store.scan({ filter: {}, columns: [], order: 'ingested' })) last.push(...page);
    const lastPosition = (last.at(-1) as Record<string, string>)[INGEST_CURSOR_COLUMN] as string;
    expect(decodeIngestCursor(saved.sinks.ndjson?.position ?? '')).toEqual(decodeIngestCursor(lastPosition));
  });

  it('a restart during an outage resumes from the saved cursor: nothing lost, nothing twice', async () => {
    const first = follower(ForwardCursors.open(dir));
    await first.ingest(0, 30);
    await until('30 live', () => received().length === 30);
    await until('the cursor past them', () => first.f.stats().lagEvents === 0);
    server.down = true;
    await first.ingest(30, 30);
    await new Promise((r) => setTimeout(r, 50));
    // The agent stops while the platform is down: the 30 stay in the store, not in the dead letters.
    await first.fanOut.shutdown(100);
    expect(received()).toHaveLength(30);

    const second = follower(ForwardCursors.open(dir));
    expect(second.f.stats().mode).toBe('catching-up');
    await second.ingest(60, 10);
    server.down = false;
    await until('all 70', () => received().length >= 70);
    await until('live', () => second.f.stats().mode === 'live');
    expect(received()).toEqual(Array.from({ length: 70 }, (_, i) => idOf(i)));
    await second.fanOut.shutdown(1000);
  });

  it('a stored event that never came live is found by the reconciliation and sent from the store', async () => {
    const { f, fanOut, ingest } = follower(ForwardCursors.open(dir));
    await ingest(0, 10);
    await until('10 live', () => received().length === 10);
    // Stored, but its batch never reaches the sink (as when a batch is stored just after a
    // catch-up's last read): the next events come live, the cursor must not pass this one.
    await store.write({ events: [event(10)], cluster: 'prod' });
    await ingest(11, 5);
    await until('all 16', () => received().length >= 16);
    await until('no lag', () => f.stats().lagEvents === 0);
    expect([...received()].sort()).toEqual(Array.from({ length: 16 }, (_, i) => idOf(i)));
    expect(new Set(received()).size).toBe(16);
    expect(f.stats()).toMatchObject({ mode: 'live', catchUps: 1, recoveredEvents: 1 });
    await fanOut.shutdown(1000);
  });

  it('a live batch moves the cursor only once the platform took it, with the next one on its way', async () => {
    const { f, fanOut, ingest } = follower(ForwardCursors.open(dir));
    await ingest(0, 10);
    await until('10 live', () => received().length === 10);
    await until('no lag', () => f.stats().lagEvents === 0);
    server.down = true;
    await ingest(10, 10);
    await ingest(20, 10);
    // Both batches are on their way, one retrying and one encoded behind it: the fan-out holds only
    // the second, yet the cursor has passed neither.
    await until('the first handed over', () => fanOut.stats()[0]?.queuedEvents === 10);
    await until('the lag measured', () => f.stats().lagEvents === 20);
    expect(f.stats().mode).toBe('live');
    server.down = false;
    await until('all 30', () => received().length >= 30);
    await until('no lag', () => f.stats().lagEvents === 0);
    expect(received()).toEqual(Array.from({ length: 30 }, (_, i) => idOf(i)));
    await fanOut.shutdown(1000);
  });

  it('while ingest is saturated it neither sends nor reads the store; then it catches up, in order', async () => {
    let busy = false;
    const { f, fanOut, ingest } = follower(ForwardCursors.open(dir), 100, () => busy);
    await ingest(0, 10);
    await until('10 live', () => received().length === 10);
    await until('no lag', () => f.stats().lagEvents === 0);
    busy = true;
    let scans = 0;
    const scan = store.scan.bind(store);
    store.scan = (q) => {
      scans++;
      return scan(q);
    };
    for (let b = 1; b < 6; b++) await ingest(b * 10, 10);
    await until('yielding', () => f.stats().mode === 'yielding');
    const scansWhileBusy = scans;
    // Several of its ticks and polls pass: still nothing sent, nothing read.
    await new Promise((r) => setTimeout(r, 300));
    expect(received()).toHaveLength(10);
    expect(scans).toBe(scansWhileBusy);
    // Its lag grows with what it was handed, without counting in the store.
    expect(f.stats().lagEvents).toBeGreaterThanOrEqual(50);
    busy = false;
    await until('all 60', () => received().length >= 60);
    await until('live again', () => f.stats().mode === 'live');
    await ingest(60, 10);
    await until('all 70', () => received().length >= 70);
    expect(received()).toEqual(Array.from({ length: 70 }, (_, i) => idOf(i)));
    await fanOut.shutdown(1000);
  });

  it('a new sink starts with what is stored from now on', async () => {
    await store.write({ events: [event(0), event(1)], cluster: 'prod' });
    const { f, fanOut, ingest } = follower(ForwardCursors.open(dir));
    await ingest(2, 3);
    await until('3 live', () => received().length === 3);
    await until('no lag', () => f.stats().lagEvents === 0);
    expect(received()).toEqual([idOf(2), idOf(3), idOf(4)]);
    await fanOut.shutdown(1000);
  });

  it('refuses a damaged cursor file with the file named', async () => {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, FORWARD_CURSORS_FILE), '{"version":1,"sinks":{"a":{"position":"x"}}}');
    expect(() => ForwardCursors.open(dir)).toThrow(/forward-cursors\.json has an unknown layout: sinks\.a/);
  });
});

describe('StoreFollower: a commit that becomes visible after a later-stamped one (parallel inserts)', () => {
  /**
   * Batch A is stamped before batch B but becomes visible after it, as a slow insert beside a fast
   * one can on ClickHouse. A catching-up sink reads B first.
   */
  async function slowInsert(settleMs: number): Promise<{ lost: string[] }> {
    const cursors = ForwardCursors.open(dir);
    cursors.set(
      'ndjson',
      'prod',
      encodeIngestCursor({ us: nextIngestedUs(), cluster: '', auditId: '', stage: '' }),
    );
    await store.write({ events: [event(0), event(1)], cluster: 'prod' });
    await store.write({ events: [event(2), event(3)], cluster: 'prod' });
    const hidden = new Set([idOf(0), idOf(1)]);
    const reader: EventReader = {
      search: (q) => store.search(q),
      aggregate: (q) => store.aggregate(q),
      count: (f) => store.count(f),
      info: () => store.info(),
      scan: async function* (q) {
        for await (const page of store.scan(q))
          yield page.filter((r: Row) => !hidden.has(String(r.audit_id)));
      },
    };
    // The sink's clock runs 10 s behind until A is visible: nothing it reads has settled before.
    let behindMs = settleMs > 0 ? 10_000 : 0;
    const f = new StoreFollower({
      inner: new Forwarder({
        name: 'ndjson',
        type: 'http',
        url: `${url}/ingest`,
        encoder: httpEncoder(),
        deadLetter: async () => undefined,
        log: quiet,
      }),
      store: reader,
      cluster: 'prod',
      cursors,
      log: quiet,
      tickMs: 10,
      stuckMs: 50,
      settleMs,
      now: () => Date.now() - behindMs,
    });
    f.start();
    await until('caught up with what is visible', () => f.stats().mode === 'live');
    if (settleMs === 0) await until('B sent', () => received().length === 2);
    else expect(received()).toEqual([]);
    hidden.clear();
    behindMs = 0;
    if (settleMs > 0) await until('all 4', () => received().length >= 4);
    await until('no lag', () => f.stats().lagEvents === 0 && f.stats().mode === 'live');
    await f.shutdown();
    const got = new Set(received());
    return { lost: [0, 1, 2, 3].map(idOf).filter((id) => !got.has(id)) };
  }

  it('without a settle time the cursor passes the slow batch and it is never sent', async () => {
    expect((await slowInsert(0)).lost).toEqual([idOf(0), idOf(1)]);
  });

  it('with a settle time longer than the insert, nothing is lost', async () => {
    expect((await slowInsert(1000)).lost).toEqual([]);
    expect(new Set(received()).size).toBe(received().length);
  });
});
