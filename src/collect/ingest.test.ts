import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { auditLine } from '../../test/fixtures/agent/make-events.js';
import type { Store } from '../store/contract.js';
import { openStore } from '../store/registry.js';
import { DeadLetter } from './dead-letter.js';
import { ingest } from './ingest.js';
import { createLogger } from './logger.js';

let dir: string;
let store: Store;
let deadLetter: DeadLetter;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kaudit-ingest-'));
  store = await openStore(join(dir, 'data'));
  deadLetter = new DeadLetter(join(dir, 'data'));
});

afterEach(async () => {
  // Its file stays open after a write until closed, as the CLI closes it.
  await deadLetter.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const uuid = (i: number) => `${i.toString(16).padStart(8, '0')}-aaaa-4bbb-8ccc-${'9'.repeat(12)}`;

/** Ingests the lines as one file, in small batches with several in flight. */
function ingestLines(lines: string[], batchEvents: number) {
  writeFileSync(join(dir, 'audit.log'), lines.join(''));
  return ingest([{ path: join(dir, 'audit.log') }], {
    store,
    cluster: 'c1',
    deadLetter,
    batchEvents,
    log: createLogger({ out: { write: () => true } as unknown as NodeJS.WritableStream }),
  });
}

describe('ingest', () => {
  it('stores each event once when batches in flight together carry copies of it', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 40; i++) lines.push(auditLine(uuid(i)), auditLine(uuid(i)));
    for (let i = 0; i < 40; i += 3) lines.push(auditLine(uuid(i)));
    const s = await ingestLines(lines, 5);
    expect(s).toMatchObject({ events: 94, stored: 40, duplicates: 54, malformed: 0 });
    expect((await store.info()).rows).toBe(40);
  });

  it('stores batches that repeat an event of the batch before, itself holding a reject', async () => {
    const lines: string[] = [];
    lines.push(auditLine(uuid(1000), { verb: null }), auditLine(uuid(1)), auditLine(uuid(1001)));
    for (let b = 1; b < 30; b++)
      lines.push(auditLine(uuid(b)), auditLine(uuid(1001 + b), { verb: null }), auditLine(uuid(b + 1)));
    const s = await ingestLines(lines, 3);
    expect(s).toMatchObject({ stored: 31, duplicates: 29, malformed: 30 });
    expect((await store.info()).rows).toBe(31);
  });

  it('stores a valid event whose key a rejected copy in an earlier batch in flight had claimed', async () => {
    const bad = auditLine(uuid(1), { verb: null });
    const fill = [2, 3, 4].map((i) => auditLine(uuid(i)));
    const s = await ingestLines([bad, ...fill, auditLine(uuid(1))], 2);
    expect(s).toMatchObject({ stored: 4, duplicates: 0, malformed: 1 });
    const r = await store.sql?.(`SELECT verb FROM events WHERE audit_id = '${uuid(1)}'`, {
      maxRows: 10,
      timeoutMs: 60_000,
    });
    expect(r?.rows).toEqual([{ verb: 'list' }]);
  });

  it('goes on past a broken symlink, an unreadable file and a truncated .gz in a directory, storing every readable event', async () => {
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    const lines = (from: number, n: number) =>
      Array.from({ length: n }, (_v, i) => auditLine(uuid(from + i))).join('');
    writeFileSync(join(logs, 'a.log'), lines(0, 5));
    symlinkSync(join(logs, 'missing.log'), join(logs, 'b.log'));
    writeFileSync(join(logs, 'c.log'), lines(100, 5));
    // root reads any file whatever its mode; the skip is checked where the mode holds.
    chmodSync(join(logs, 'c.log'), 0o000);
    const unreadable = process.getuid?.() !== 0;
    const gz = gzipSync(Buffer.from(lines(200, 50)));
    writeFileSync(join(logs, 'd.log.gz'), gz.subarray(0, Math.floor(gz.length * 0.6)));
    writeFileSync(join(logs, 'e.log'), lines(300, 5));
    const s = await ingest([{ path: logs }], {
      store,
      cluster: 'c1',
      deadLetter,
      log: createLogger({ out: { write: () => true } as unknown as NodeJS.WritableStream }),
    });
    const skipped = new Map(s.skipped.map((k) => [k.path, k.reason]));
    expect(skipped.get(join(logs, 'b.log'))).toMatch(/ENOENT|no such file/i);
    if (unreadable) expect(skipped.get(join(logs, 'c.log'))).toMatch(/EACCES|permission/i);
    // The truncated gzip: what could be decoded is stored, and it is reported with where it stopped.
    expect(skipped.get(join(logs, 'd.log.gz'))).toBeDefined();
    const sql = store.sql?.bind(store);
    if (sql === undefined) throw new Error('the DuckDB store runs SQL');
    const { rows } = await sql('SELECT audit_id FROM events', { maxRows: 1000, timeoutMs: 30_000 });
    const ids = new Set(rows.map((r) => String(r.audit_id)));
    for (const i of [0, 4, 300, 304]) expect(ids.has(uuid(i))).toBe(true);
    if (!unreadable) expect(ids.has(uuid(100))).toBe(true);
    const fromGz = [...ids].filter(
      (id) => Number.parseInt(id.slice(0, 8), 16) >= 200 && Number.parseInt(id.slice(0, 8), 16) < 300,
    );
    expect(fromGz.length).toBeGreaterThan(0);
    expect(fromGz.length).toBeLessThan(50);
    expect(s.stored).toBe(ids.size);
  });
});
