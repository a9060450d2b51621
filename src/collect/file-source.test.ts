import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { auditLine, auditLines, backupName } from '../../test/fixtures/agent/make-events.js';
import { DEFAULT_MAX_EVENT_BYTES, prepareLine, prepareValue } from '../model/prepare.js';
import { MemoryStore } from '../store/memory/memory-store.js';
import type { FileSourceConfig } from './agent-config.js';
import { CheckpointRegistry } from './checkpoint-registry.js';
import { ManualClock } from './clock.js';
import { FileSource } from './file-source.js';
import { memoryLogger } from './logger.js';
import { type DeadLetterEntry, Pipeline, type Preparer } from './pipeline.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kaudit-tail-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function preparer(maxEventBytes = DEFAULT_MAX_EVENT_BYTES): Preparer {
  const opts = { maxEventBytes, redact: true };
  return { options: opts, line: (b) => prepareLine(b, opts), value: (v) => prepareValue(v, opts) };
}

/** One agent lifetime over `dir`: registry, pipeline, in-memory store (shared across lifetimes), file source. */
function harness(
  store: MemoryStore,
  opts: {
    path?: string;
    startPosition?: 'beginning' | 'end';
    maxEventBytes?: number;
    maxLineBytes?: number;
    scanIntervalMs?: number;
    pollIntervalMs?: number;
    clock?: ManualClock;
  } = {},
) {
  const clock = opts.clock === undefined ? {} : { clock: opts.clock };
  const letters: DeadLetterEntry[] = [];
  const deadLetter = {
    count: 0,
    async add(e: DeadLetterEntry) {
      letters.push(e);
      this.count++;
    },
  };
  const log = memoryLogger();
  const registry = CheckpointRegistry.open(join(dir, 'run'));
  const pipeline = new Pipeline({
    store,
    cluster: 'test',
    queueEvents: 10_000,
    queueBytes: 64 << 20,
    batchEvents: 5000,
    flushIntervalMs: 20,
    deadLetter,
    log,
    ...clock,
  });
  const config: FileSourceConfig = {
    type: 'file',
    name: 'audit',
    path: opts.path ?? join(dir, 'logs', 'audit.log'),
    source: 'kubernetes.audit',
    service: 'audit',
    startPosition: opts.startPosition ?? 'beginning',
  };
  const source = new FileSource({
    config,
    registry,
    offer: (item) => pipeline.offer(item),
    prepare: preparer(opts.maxEventBytes),
    maxLineBytes: opts.maxLineBytes ?? 64 << 20,
    log,
    scanIntervalMs: opts.scanIntervalMs ?? 100,
    pollIntervalMs: opts.pollIntervalMs ?? 20,
    rotatedIdleMs: 200,
    ...clock,
  });
  pipeline.start();
  source.start();
  return {
    source,
    registry,
    letters,
    log,
    async stop() {
      await source.stop();
      await pipeline.shutdown();
      registry.markDirty();
      await registry.commit();
    },
  };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Moves the clock 20 ms at a time until `cond` holds; the clock time it took. */
async function advanceUntil(
  clock: ManualClock,
  what: string,
  cond: () => boolean,
  maxMs = 60_000,
): Promise<number> {
  const from = clock.now();
  while (!cond()) {
    if (clock.now() - from > maxMs) throw new Error(`${what}: not within ${maxMs} ms of clock time`);
    await clock.advance(20);
  }
  return clock.now() - from;
}

async function storedRows(store: MemoryStore, n: number): Promise<void> {
  await waitFor(`${n} rows`, () => store.rows.size === n);
}

/** The checkpoint file as the agent last committed it. */
function checkpoints() {
  return JSON.parse(readFileSync(join(dir, 'run', 'checkpoints.json'), 'utf8'));
}

/** The name lumberjack gives audit.log when it rotates the file at `iso`. */
function rotatedName(iso: string): string {
  return backupName('audit.log', new Date(iso));
}

function logs(...parts: string[]): string {
  return join(dir, 'logs', ...parts);
}

function ids(store: MemoryStore): string[] {
  return [...store.rows.values()]
    .map((r) => `${r.audit_id}/${r.stage}`)
    .map((k) => k.split('/')[0] ?? '')
    .sort();
}

function expectedIds(prefix: string, from: number, to: number): string[] {
  const out: string[] = [];
  for (let i = from; i < to; i++) out.push(`${prefix}-${i}`);
  return out;
}

describe('FileSource', () => {
  beforeEach(() => {
    mkdirSync(logs(), { recursive: true });
  });

  it('reads a file from the start, follows appends, and checkpoints only what the store acknowledged', async () => {
    const store = new MemoryStore();
    writeFileSync(logs('audit.log'), auditLines('a', 0, 500));
    const h = harness(store);
    await storedRows(store, 500);
    appendFileSync(logs('audit.log'), auditLines('a', 500, 800));
    await storedRows(store, 800);
    await h.stop();
    const cp = checkpoints();
    expect(cp.sources.audit.files[0].offset).toBe(readFileSync(logs('audit.log')).length);
    expect(h.source.status().events).toBe(800);
  });

  it('completes the fingerprint of a file found empty even when it is rotated before the next scan', async () => {
    const store = new MemoryStore();
    writeFileSync(logs('audit.log'), '');
    const h = harness(store);
    await waitFor('tracked', () => h.source.status().filesTailed === 1);
    const { ino } = statSync(logs('audit.log'));
    appendFileSync(logs('audit.log'), auditLines('f', 0, 100));
    renameSync(logs('audit.log'), logs(rotatedName('2026-11-26T10:00:00Z')));
    await storedRows(store, 100);
    await h.stop();
    const cp = checkpoints();
    const entry = cp.sources.audit.files.find((f: { ino: number }) => f.ino === ino);
    // A short fingerprint would match any later file given the same inode, and skip it.
    expect(entry.fingerprintBytes).toBe(1024);
  });

  it('does not consume a last line without a newline until it is complete', async () => {
    const store = new MemoryStore();
    const full = auditLines('p', 0, 10);
    const partial = auditLine('p-10');
    writeFileSync(logs('audit.log'), full + partial.slice(0, 100));
    const clock = new ManualClock();
    const h = harness(store, { clock });
    await advanceUntil(clock, '10 rows', () => store.rows.size === 10);
    // Many polls and scans later, the partial line is still not taken.
    await clock.advance(1000);
    expect(store.rows.size).toBe(10);
    await h.stop();
    // The checkpoint stops before the partial line, so a restart reads it again once complete.
    const cp = checkpoints();
    expect(cp.sources.audit.files[0].offset).toBe(Buffer.byteLength(full));
    appendFileSync(logs('audit.log'), partial.slice(100));
    const h2 = harness(store);
    await storedRows(store, 11);
    expect(h2.source.status().malformed).toBe(0);
    await h2.stop();
  });

  it('drains a file renamed by rotation, then reads the new one', async () => {
    const store = new MemoryStore();
    writeFileSync(logs('audit.log'), auditLines('r', 0, 100));
    const h = harness(store);
    await storedRows(store, 100);
    const backup = logs(rotatedName('2026-11-26T10:00:00Z'));
    renameSync(logs('audit.log'), backup);
    // Written to the old file after the rename, before the reader noticed: still read.
    appendFileSync(backup, auditLines('r', 100, 150));
    writeFileSync(logs('audit.log'), auditLines('r', 150, 300));
    await storedRows(store, 300);
    await waitFor('backup let go', () => h.source.status().filesTailed === 1);
    expect(ids(store)).toEqual(expectedIds('r', 0, 300).sort());
    expect(h.source.status().rotations).toBe(1);
    await h.stop();
  });

  it('after downtime reads rotated backups (plain and gzip) from their checkpoints, oldest first', async () => {
    const store = new MemoryStore();
    writeFileSync(logs('audit.log'), auditLines('d', 0, 100));
    const h = harness(store);
    await storedRows(store, 100);
    await h.stop();

    // While stopped: the tailed file grows and is rotated three times; the oldest backup is gzipped.
    appendFileSync(logs('audit.log'), auditLines('d', 100, 200));
    const b1 = logs(rotatedName('2026-11-26T10:00:00Z'));
    renameSync(logs('audit.log'), b1);
    writeFileSync(logs('audit.log'), auditLines('d', 200, 300));
    const b2 = logs(rotatedName('2026-11-26T10:05:00Z'));
    renameSync(logs('audit.log'), b2);
    writeFileSync(logs('audit.log'), auditLines('d', 300, 400));
    const b3 = logs(rotatedName('2026-11-26T10:10:00Z'));
    renameSync(logs('audit.log'), b3);
    writeFileSync(logs('audit.log'), auditLines('d', 400, 450));
    writeFileSync(`${b1}.gz`, gzipSync(readFileSync(b1)));
    const old = new Date(Date.now() - 60_000);
    utimesSync(`${b1}.gz`, old, old);
    rmSync(b1);

    const h2 = harness(store);
    await storedRows(store, 450);
    expect(ids(store)).toEqual(expectedIds('d', 0, 450).sort());
    // Oldest first: the store saw them in the order kube-apiserver wrote them.
    const order = [...store.rows.values()].map((r) => `${r.audit_id}/${r.stage}`).map((k) => k.split('/')[0]);
    expect(order.slice(100)).toEqual(expectedIds('d', 100, 450));
    // Resumed at each checkpoint (inside the gzip too): nothing stored before was read again.
    const status = h2.source.status();
    expect(status.events).toBe(350);
    await h2.stop();
  });

  it('detects truncation (copytruncate) and reads the file again from its start', async () => {
    const store = new MemoryStore();
    writeFileSync(logs('audit.log'), auditLines('t', 0, 200));
    const h = harness(store);
    await storedRows(store, 200);
    writeFileSync(logs('audit.log.1'), readFileSync(logs('audit.log')));
    truncateSync(logs('audit.log'), 0);
    await new Promise((r) => setTimeout(r, 200));
    appendFileSync(logs('audit.log'), auditLines('t', 200, 250));
    await storedRows(store, 250);
    expect(h.source.status().truncations).toBe(1);
    await h.stop();
  });

  it('keeps a 2 MiB line whole, truncates one over max_event_bytes, drops one over max_line_bytes, and goes on', async () => {
    const store = new MemoryStore();
    const big = 'x'.repeat(2 * 1024 * 1024);
    const lines = [
      auditLine('big-0', { level: 'RequestResponse', requestObject: { data: big } }),
      auditLine('big-1', { level: 'RequestResponse', requestObject: { data: 'y'.repeat(5 * 1024 * 1024) } }),
      auditLine('big-2', { level: 'RequestResponse', requestObject: { data: 'z'.repeat(9 * 1024 * 1024) } }),
      'not json at all\n',
      auditLine('big-3'),
    ];
    writeFileSync(logs('audit.log'), lines.join(''));
    const h = harness(store, { maxLineBytes: 8 * 1024 * 1024 });
    await storedRows(store, 3);
    await waitFor('dead letters', () => h.letters.length === 2);
    const whole = store.rows.get('test/big-0/ResponseComplete')?.raw ?? '';
    expect(whole.length).toBeGreaterThan(2 * 1024 * 1024);
    const cut = JSON.parse(store.rows.get('test/big-1/ResponseComplete')?.raw ?? '{}');
    expect(cut.requestObject).toBeUndefined();
    expect(cut.annotations['audit.k8s.io/truncated']).toBe('true');
    expect(store.rows.has('test/big-2/ResponseComplete')).toBe(false);
    expect(store.rows.has('test/big-3/ResponseComplete')).toBe(true);
    const s = h.source.status();
    expect(s).toMatchObject({ truncated: 1, dropped: 1, malformed: 1 });
    expect(h.letters.map((l) => l.reason).join('\n')).toMatch(/max_line_bytes[\s\S]*not JSON/);
    await h.stop();
    const cp = checkpoints();
    expect(cp.sources.audit.files[0].offset).toBe(Buffer.byteLength(lines.join('')));
  });

  it('start_position end skips what a never-seen file holds, then reads what is appended', async () => {
    const store = new MemoryStore();
    writeFileSync(logs('audit.log'), auditLines('e', 0, 100) + auditLine('e-100').slice(0, 50));
    const h = harness(store, { startPosition: 'end' });
    await waitFor('scan', () => h.source.status().filesTailed === 1);
    await new Promise((r) => setTimeout(r, 200));
    appendFileSync(logs('audit.log'), auditLine('e-100').slice(50) + auditLines('e', 101, 110));
    await storedRows(store, 9);
    expect(ids(store)).toEqual(expectedIds('e', 101, 110).sort());
    expect(h.source.status().malformed).toBe(0);
    await h.stop();
  });

  it('reads appends and a file created by rotation when inotify reports them, long before the next poll or scan', async () => {
    const store = new MemoryStore();
    writeFileSync(logs('audit.log'), auditLines('w', 0, 10));
    const h = harness(store, { scanIntervalMs: 60_000, pollIntervalMs: 60_000 });
    await storedRows(store, 10);
    // Let the loop go to sleep for its minute.
    await new Promise((r) => setTimeout(r, 200));
    appendFileSync(logs('audit.log'), auditLines('w', 10, 20));
    await waitFor('the append', () => store.rows.size === 20, 3000);
    renameSync(logs('audit.log'), logs(rotatedName('2026-03-01T10:00:00Z')));
    writeFileSync(logs('audit.log'), auditLines('w', 20, 30));
    await waitFor('the new file', () => store.rows.size === 30, 3000);
    expect(ids(store)).toEqual(expectedIds('w', 0, 30).sort());
    await h.stop();
  });

  it('keeps following a file while its directory cannot be listed (ELOOP), says so in status, loses nothing', async () => {
    const store = new MemoryStore();
    writeFileSync(logs('audit.log'), auditLines('l', 0, 10));
    const h = harness(store);
    await storedRows(store, 10);
    // Only ENOENT means gone: a directory that fails to list for another reason says nothing of its files.
    renameSync(logs(), join(dir, 'logs.real'));
    symlinkSync('logs', logs());
    await waitFor('the listing error in status', () =>
      /scan failed.*ELOOP/.test(h.source.status().error ?? ''),
    );
    expect(h.source.status()).toMatchObject({ status: 'Error', rotations: 0, files: [{ rotated: false }] });
    rmSync(logs());
    renameSync(join(dir, 'logs.real'), logs());
    appendFileSync(logs('audit.log'), auditLines('l', 10, 20));
    await storedRows(store, 20);
    await waitFor('the error to clear', () => h.source.status().status === 'OK');
    expect(h.source.status()).toMatchObject({ rotations: 0, files: [{ rotated: false }] });
    await h.stop();
    expect(ids(store)).toEqual(expectedIds('l', 0, 20).sort());
    const cp = checkpoints();
    expect(JSON.stringify(cp)).toContain(`"offset":${statSync(logs('audit.log')).size}`);
  });

  it('picks up new files matching a glob within two seconds', async () => {
    const store = new MemoryStore();
    mkdirSync(logs('a'), { recursive: true });
    writeFileSync(logs('a', 'audit.log'), auditLines('g', 0, 10));
    const h = harness(store, { path: join(dir, 'logs', '*', 'audit.log') });
    await storedRows(store, 10);
    mkdirSync(logs('b'));
    // On the wall clock: what is measured is how soon a real directory change is seen (inotify or
    // the next scan), which a manual clock cannot speed up.
    const t0 = Date.now();
    writeFileSync(logs('b', 'audit.log'), auditLines('g', 10, 20));
    await waitFor('20 rows', () => store.rows.size === 20, 2000);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(h.source.status().filesMatching).toBe(2);
    await h.stop();
  });
});
