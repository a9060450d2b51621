import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { auditLine } from '../../../test/fixtures/agent/make-events.js';
import { deriveFields } from '../../model/derive.js';
import type { AuditEvent } from '../../model/event.js';
import { prepareLine } from '../../model/prepare.js';
import { DuckDBStore } from './duckdb-store.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../../../test/fixtures/${name}`, import.meta.url))
    .toString()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => Buffer.from(l));

const opts = { maxEventBytes: 4 << 20, redact: true };
/** A lowercase UUID auditID, as kube-apiserver makes them (the store's fast key path). */
const uuidOf = (i: number, tail: string) =>
  `${i.toString(16).padStart(8, '0')}-aaaa-4bbb-8ccc-${tail.repeat(12)}`;
const prepared = (lines: Buffer[]) => lines.flatMap((l) => prepareLine(l, opts).events);

let dir: string;
const sqlOn = (st: DuckDBStore, sql: string) => st.sql(sql, { maxRows: 10_000_000, timeoutMs: 60_000 });
/** User SQL with room for every row. */
const q = (sql: string) => store.sql(sql, { maxRows: 10_000_000, timeoutMs: 60_000 });
let store: DuckDBStore;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kaudit-store-'));
  store = await DuckDBStore.open({ dataDir: dir });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('DuckDBStore.write', () => {
  it('is idempotent on (auditID, stage), within a batch and across batches', async () => {
    const events = prepared(fixture('watch-long-running.jsonl'));
    const first = await store.write({ events: [...events, ...events], cluster: 'c1' });
    expect(first).toMatchObject({ stored: 4, duplicates: 4, rejected: [] });
    const second = await store.write({ events, cluster: 'c1' });
    expect(second).toMatchObject({ stored: 0, duplicates: 4, rejected: [] });
    expect((await store.info()).rows).toBe(4);
  });

  it('knows an event again in another field order or case, and a batch larger than one scan slice', async () => {
    const uuid = (i: number) => uuidOf(i, 'd');
    const big = { requestObject: { kind: 'ConfigMap', data: { x: 'y'.repeat(3 << 20) } } };
    const lines = Array.from({ length: 6000 }, (_v, i) =>
      Buffer.from(auditLine(uuid(i), i % 2000 === 0 ? big : {})),
    );
    expect(lines.reduce((n, l) => n + l.length, 0)).toBeGreaterThan(8 << 20);
    const first = await store.write({ events: prepared(lines), cluster: 'c1' });
    expect(first).toMatchObject({ stored: 6000, duplicates: 0, rejected: [] });
    // The same events re-serialized (keys in another order): the store reads their keys in JS.
    const reordered = lines.slice(0, 50).map((l) => {
      const { auditID, ...rest } = JSON.parse(l.toString());
      return Buffer.from(JSON.stringify({ ...rest, auditID }));
    });
    const again = await store.write({
      events: [...reordered, ...prepared(lines.slice(50, 60))],
      cluster: 'c1',
    });
    expect(again).toMatchObject({ stored: 0, duplicates: 60, rejected: [] });
    // An upper-case auditID is another string, so another event.
    const upper = Buffer.from(
      lines[0]
        ?.toString()
        .replace(/"auditID":"([^"]+)"/, (_m, id: string) => `"auditID":"${id.toUpperCase()}"`) ?? '',
    );
    expect(await store.write({ events: prepared([upper]), cluster: 'c1' })).toMatchObject({
      stored: 1,
      duplicates: 0,
      rejected: [],
    });
    expect((await store.info()).rows).toBe(6001);
  });

  it('stores the same with the WebAssembly scanner off (KAUDIT_WASM=off), reading keys in JS', async () => {
    const uuid = (i: number) => uuidOf(i, 'e');
    const lines = prepared(Array.from({ length: 300 }, (_v, i) => Buffer.from(auditLine(uuid(i)))));
    const batch = [...lines, ...lines.slice(0, 20), Buffer.from('{"auditID":"x"\r}')];
    const expected = await store.write({ events: batch, cluster: 'c1' });
    const otherDir = mkdtempSync(join(tmpdir(), 'kaudit-store-js-'));
    process.env.KAUDIT_WASM = 'off';
    try {
      const js = await DuckDBStore.open({ dataDir: otherDir });
      try {
        expect(await js.write({ events: batch, cluster: 'c1' })).toEqual(expected);
        expect(expected).toMatchObject({ stored: 300, duplicates: 20 });
        expect(await js.write({ events: lines.slice(100, 110), cluster: 'c1' })).toMatchObject({
          stored: 0,
          duplicates: 10,
          rejected: [],
        });
        const sql = 'SELECT audit_id, stage, raw FROM events ORDER BY audit_id';
        expect((await sqlOn(js, sql)).rows).toEqual((await q(sql)).rows);
      } finally {
        await js.close();
      }
    } finally {
      delete process.env.KAUDIT_WASM;
      rmSync(otherDir, { recursive: true, force: true });
    }
  });

  it('stores an event larger than a scan slice whole, then lets go of the memory it took', async () => {
    const id = '0000abcd-aaaa-4bbb-8ccc-dddddddddddd';
    const huge = Buffer.from(
      auditLine(id, { requestObject: { kind: 'ConfigMap', data: { x: 'z'.repeat(40 << 20) } } }).trim(),
    );
    expect(await store.write({ events: [huge], cluster: 'c1' })).toMatchObject({
      stored: 1,
      duplicates: 0,
      rejected: [],
    });
    const r = await q(`SELECT length(raw) AS n FROM events WHERE audit_id = '${id}'`);
    expect(r.rows).toEqual([{ n: huge.length }]);
    // WebAssembly memory cannot shrink: the store replaces a scanner that grew past 32 MiB.
    const scanner = (store as unknown as { writer: { scanner: { memoryBytes: number } } }).writer.scanner;
    expect(scanner.memoryBytes).toBeLessThan(32 << 20);
  });

  it('stores an event once when two writes importing at the same time both carry it', async () => {
    const events = prepared(fixture('watch-long-running.jsonl'));
    const [a, b] = await Promise.all([
      store.write({ events, cluster: 'c1' }),
      store.write({ events: [...events].reverse(), cluster: 'c1' }),
    ]);
    expect(a.stored + b.stored).toBe(4);
    expect(a.duplicates + b.duplicates).toBe(4);
    expect((await store.info()).rows).toBe(4);
  });

  it('finds in the table what an earlier process stored', async () => {
    const events = prepared(fixture('watch-long-running.jsonl'));
    await store.write({ events, cluster: 'c1' });
    await store.close();
    store = await DuckDBStore.open({ dataDir: dir });
    expect(await store.write({ events, cluster: 'c1' })).toMatchObject({
      stored: 0,
      duplicates: 4,
      rejected: [],
    });
    expect((await store.info()).rows).toBe(4);
  });

  it('vouches by stage time: a watch completing minutes after it began needs no table lookup, a repeat is still found', async () => {
    await store.close();
    store = await DuckDBStore.open({ dataDir: dir, dedupeWindow: 4 });
    const at = (min: number, sec: number) =>
      `2026-11-26T10:${String(min).padStart(2, '0')}:${String(sec).padStart(2, '0')}.000000Z`;
    const line = (id: string, received: string, stageAt: string) =>
      Buffer.from(auditLine(id, { requestReceivedTimestamp: received, stageTimestamp: stageAt }).trim());
    // Batches of four in stage-time order; the window of four lets each go once the next is stored.
    for (let b = 0; b < 3; b++) {
      const events = [0, 1, 2, 3].map((i) => line(`n-${b}-${i}`, at(b, i), at(b, i)));
      expect((await store.write({ events, cluster: 'c1' })).stored).toBe(4);
    }
    expect(store.tableChecks).toBe(0);
    const watch = line('watch-1', at(0, 0), at(3, 0));
    expect(await store.write({ events: [watch], cluster: 'c1' })).toMatchObject({
      stored: 1,
      duplicates: 0,
      rejected: [],
    });
    expect(store.tableChecks).toBe(0);
    // A repeat of an event the window has let go: the table is asked, and it is not stored twice.
    const again = line('n-0-1', at(0, 1), at(0, 1));
    expect(await store.write({ events: [again], cluster: 'c1' })).toMatchObject({
      stored: 0,
      duplicates: 1,
      rejected: [],
    });
    expect(store.tableChecks).toBe(1);
    expect(await store.info()).toMatchObject({ rows: 13, details: { tableChecks: 1 } });
  });

  it('stores a valid event whose key an earlier, rejected event had used', async () => {
    const [good] = prepared(fixture('watch-long-running.jsonl'));
    if (!good) throw new Error('fixture empty');
    const bad = Buffer.from(good.toString().replace(/"verb":"[a-z]+",/, ''));
    const r1 = await store.write({ events: [bad], cluster: 'c1' });
    expect(r1.rejected.map((r) => r.reason)).toEqual(['not an audit Event: missing field verb']);
    expect(await store.write({ events: [good], cluster: 'c1' })).toMatchObject({
      stored: 1,
      duplicates: 0,
      rejected: [],
    });
  });

  it('stores the first valid repeat in a batch whose earlier copy of the key is rejected', async () => {
    const [fixtureEvent] = prepared(fixture('watch-long-running.jsonl'));
    if (!fixtureEvent) throw new Error('fixture empty');
    // The auditID as kube-apiserver writes it (keys read by the module) and as a client may send it.
    for (const id of [uuidOf(7, 'e'), 'client-chosen-id']) {
      const good = Buffer.from(fixtureEvent.toString().replace(/"auditID":"[^"]+"/, `"auditID":"${id}"`));
      const noVerb = Buffer.from(good.toString().replace(/"verb":"[a-z]+",/, ''));
      const cut = good.subarray(0, good.length - 2);
      const r = await store.write({ events: [noVerb, cut, good, cut, good], cluster: 'c1' });
      // Every invalid copy is dead-lettered, before or after it; the valid repeat is a duplicate.
      expect(r).toMatchObject({ stored: 1, duplicates: 1, duplicateIndexes: [4] });
      expect(r.rejected.map((x) => [x.index, x.reason])).toEqual([
        [0, 'not an audit Event: missing field verb'],
        [1, 'not JSON'],
        [3, 'not JSON'],
      ]);
      expect(r.rejected[1]?.data).toEqual(cut);
      const rows = await q(`SELECT verb FROM events WHERE audit_id = '${id}'`);
      expect(rows.rows).toEqual([{ verb: 'watch' }]);
      // The key is held again: another batch's copy is a duplicate, found without the table.
      expect(await store.write({ events: [good], cluster: 'c1' })).toMatchObject({
        stored: 0,
        duplicates: 1,
        rejected: [],
      });
    }
    expect(store.tableChecks).toBe(0);
  });

  it('vouches for a repeat by its own stage time, not the rejected copy it stands in for', async () => {
    const [good] = prepared(fixture('watch-long-running.jsonl'));
    if (!good) throw new Error('fixture empty');
    const at = /"stageTimestamp":"([^"]+)"/.exec(good.toString())?.[1] ?? '';
    const shifted = (text: string, hours: number) => {
      const t = at.replace(/T(\d\d)/, (_, h: string) => `T${String(Number(h) + hours).padStart(2, '0')}`);
      return text.replace(`"stageTimestamp":"${at}"`, `"stageTimestamp":"${t}"`);
    };
    // A damaged copy: no verb (rejected) and a stage time some hours later or earlier.
    const damaged = (hours: number) =>
      Buffer.from(shifted(good.toString().replace(/"verb":"[a-z]+",/, ''), hours));
    const rows = async (s: DuckDBStore) =>
      (await sqlOn(s, "SELECT count(*)::INTEGER AS n FROM events WHERE verb = 'watch'")).rows[0]?.n;
    // Stored by an earlier process: the new one must look the repeat's key up in the table, though
    // the copy it stands in for is later than anything stored.
    expect((await store.write({ events: [good], cluster: 'c1' })).stored).toBe(1);
    await store.close();
    store = await DuckDBStore.open({ dataDir: dir });
    expect(await store.write({ events: [damaged(2), good], cluster: 'c1' })).toMatchObject({
      stored: 0,
      duplicates: 1,
    });
    expect(await rows(store)).toBe(1);
    // Stored by this process, in place of an earlier copy, then let go from a one-key window: the
    // floor must rise past the repeat's time, not only the copy's.
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    store = await DuckDBStore.open({ dataDir: dir, dedupeWindow: 1 });
    expect((await store.write({ events: [damaged(-2), good], cluster: 'c1' })).stored).toBe(1);
    // Other events, as early as that copy, push the first batch out of the window.
    for (const n of [1, 2]) {
      const other = good.toString().replace(/"auditID":"[^"]+"/, `"auditID":"${uuidOf(n, 'b')}"`);
      await store.write({ events: [Buffer.from(shifted(other, -2))], cluster: 'c1' });
    }
    expect(await store.write({ events: [good], cluster: 'c1' })).toMatchObject({ stored: 0, duplicates: 1 });
    expect(await rows(store)).toBe(1 + 2);
  });

  it('returns the index and reason of events it cannot store, and stores the rest', async () => {
    const [good] = prepared(fixture('watch-long-running.jsonl'));
    if (!good) throw new Error('fixture empty');
    const r = await store.write({
      events: [
        Buffer.from('{"kind":"Event","apiVersion":"audit.k8s.io/v1",'),
        good,
        Buffer.from('{"auditID":"x"}'),
      ],
      cluster: 'c1',
    });
    expect(r.stored).toBe(1);
    expect(r.rejected).toEqual([
      { index: 0, reason: 'not JSON', data: Buffer.from('{"kind":"Event","apiVersion":"audit.k8s.io/v1",') },
      {
        index: 2,
        reason: 'not an audit Event: missing or unknown stage',
        data: Buffer.from('{"auditID":"x"}'),
      },
    ]);
  });

  it('computes the same derived fields in SQL as the reference in model/derive.ts', async () => {
    const lines = [...fixture('watch-long-running.jsonl'), ...fixture('secret-request-response.jsonl')];
    const events = prepared(lines);
    await store.write({ events, cluster: 'prod' });
    const { rows } = await q(
      `SELECT audit_id, stage, epoch_us(ts) AS ts_us, latency_ms, long_running, subject, username, api_group, resource,
         subresource, namespace, name, code, decision, reason, source_ip, user_agent, cluster, truncated, latency_breakdown
       FROM events ORDER BY ts, stage`,
    );
    const expected = events
      .map((b) => deriveFields(JSON.parse(b.toString()) as AuditEvent, 'prod'))
      .sort((a, b) => a.ts.localeCompare(b.ts) || a.stage.localeCompare(b.stage));
    expect(rows).toHaveLength(expected.length);
    rows.forEach((row, i) => {
      const d = expected[i];
      if (!d) throw new Error('missing expectation');
      expect(row).toMatchObject({
        audit_id: d.audit_id,
        stage: d.stage,
        long_running: d.long_running,
        subject: d.subject,
        username: d.username,
        api_group: d.api_group,
        resource: d.resource,
        subresource: d.subresource,
        namespace: d.namespace,
        name: d.name,
        code: d.code,
        decision: d.decision,
        reason: d.reason,
        source_ip: d.source_ip,
        user_agent: d.user_agent,
        cluster: 'prod',
        truncated: d.truncated,
      });
      expect(row.latency_ms).toBeCloseTo(d.latency_ms ?? Number.NaN, 6);
      const breakdown = (row.latency_breakdown as Record<string, number> | null) ?? {};
      expect(Object.keys(breakdown).sort()).toEqual(Object.keys(d.latency_breakdown).sort());
      for (const [k, v] of Object.entries(d.latency_breakdown)) expect(breakdown[k]).toBeCloseTo(v, 6);
    });
  });

  it('keeps microseconds in latency_ms and marks watches and exec long-running', async () => {
    await store.write({ events: prepared(fixture('watch-long-running.jsonl')), cluster: 'c' });
    const { rows } = await q(
      'SELECT verb, subresource, stage, latency_ms, long_running FROM events ORDER BY ts, stage',
    );
    expect(rows[0]).toMatchObject({ verb: 'watch', stage: 'ResponseComplete', long_running: true });
    expect(rows[1]).toMatchObject({
      verb: 'watch',
      stage: 'ResponseStarted',
      long_running: true,
      latency_ms: 1.25,
    });
    expect(rows.find((r) => r.subresource === 'exec')).toMatchObject({ long_running: true });
    expect(rows.find((r) => r.verb === 'list')).toMatchObject({ long_running: false, latency_ms: 1734.512 });
  });

  it('converts timestamps with an offset to UTC', async () => {
    const [line] = fixture('watch-long-running.jsonl');
    const e = JSON.parse(line?.toString() ?? '{}');
    e.auditID = 'offset-1';
    e.requestReceivedTimestamp = '2026-03-01T12:00:00.5+02:00';
    e.stageTimestamp = '2026-03-01T12:00:01.5+02:00';
    await store.write({ events: [Buffer.from(JSON.stringify(e))], cluster: 'c' });
    const { rows } = await q("SELECT strftime(ts, '%Y-%m-%dT%H:%M:%S.%f') AS ts, latency_ms FROM events");
    expect(rows).toEqual([{ ts: '2026-03-01T10:00:00.500000', latency_ms: 1000 }]);
  });
});

describe('DuckDBStore.hold and commit', () => {
  const stagingDir = () => (store as unknown as { staging: { dir: string } }).staging.dir;
  const stagingFiles = () => new Set(readdirSync(stagingDir()));
  /** Holds the events and returns the batch with the staging file it wrote. */
  const holdNew = (s: DuckDBStore, events: Buffer[], cluster = 'c1') => {
    const before = stagingFiles();
    const held = s.hold({ events, cluster });
    const made = [...stagingFiles()].filter((n) => !before.has(n));
    expect(made).toHaveLength(1);
    return { held, file: join(stagingDir(), made[0] as string) };
  };
  const line = (i: number, tail = 'f', extra = {}) => Buffer.from(auditLine(uuidOf(i, tail), extra).trim());
  const rows = async () => (await store.info()).rows;

  it('keeps a batch whose import failed, with its keys, and stores it once on the next commit()', async () => {
    const events = prepared(fixture('watch-long-running.jsonl'));
    const { held, file } = holdNew(store, events);
    // The caller's buffers may be reused at once: the store has its own copy.
    const copies = events.map((e) => Buffer.from(e));
    for (const e of events) e.fill(0x20);
    // The import fails while its file is away for a moment.
    renameSync(file, `${file}.away`);
    await expect(held.commit()).rejects.toThrow();
    renameSync(`${file}.away`, file);
    // Another batch with the same events, while the first waits for its retry: both look the
    // shared keys up in the table, so whichever commits first stores them and the other finds them.
    const other = line(1, 'e');
    expect(await store.write({ events: [...copies, other], cluster: 'c1' })).toMatchObject({
      stored: 5,
      duplicates: 0,
      rejected: [],
    });
    const checks = store.tableChecks;
    expect(await held.commit()).toMatchObject({ stored: 0, duplicates: 4, duplicateIndexes: [0, 1, 2, 3] });
    // The retry looked its rows up in the table: a failure may have come after the commit.
    expect(store.tableChecks).toBe(checks + 1);
    await expect(held.commit()).rejects.toThrow(/done/);
    expect(await store.write({ events: [...copies, other], cluster: 'c1' })).toMatchObject({
      stored: 0,
      duplicates: 5,
    });
    expect(await rows()).toBe(5);
  });

  // A failure before the INSERT, between it and the COMMIT, or after the COMMIT (a lost answer):
  // a retry of the same batch, or a new batch of the same events, stores each event exactly once.
  for (const point of ['insert', 'commit', 'after-commit'] as const) {
    it(`stores each event once after a failure at ${point}, retried or written again`, async () => {
      await store.close();
      let failures = 0;
      store = await DuckDBStore.open({
        dataDir: dir,
        fault: (p) => (p === point && failures-- > 0 ? new Error(`injected at ${p}`) : undefined),
      });
      const batch = [line(1), line(2), line(3), line(2)];
      failures = 1;
      const held = store.hold({ events: batch, cluster: 'c1' });
      await expect(held.commit()).rejects.toThrow(`injected at ${point}`);
      const retry = await held.commit();
      const committed = point === 'after-commit';
      expect(retry).toMatchObject({ stored: committed ? 0 : 3, duplicates: committed ? 4 : 1 });
      expect(await rows()).toBe(3);
      // Let go after a failure: the same events in a new batch are looked up, not trusted.
      failures = 1;
      const second = [line(4), line(5)];
      await expect(store.write({ events: second, cluster: 'c1' })).rejects.toThrow(`injected at ${point}`);
      const checks = store.tableChecks;
      expect(await store.write({ events: [...second, line(1)], cluster: 'c1' })).toMatchObject({
        stored: committed ? 0 : 2,
        duplicates: committed ? 3 : 1,
      });
      expect(store.tableChecks).toBe(checks + 1);
      expect(await rows()).toBe(5);
    });
  }

  it('holds nothing when staging fails, and stores the events once when held again', async () => {
    const events = [line(1), line(2)];
    // Something put a file where the staging directory was: no staging file can be made.
    rmSync(stagingDir(), { recursive: true, force: true });
    writeFileSync(stagingDir(), 'in the way');
    expect(() => store.hold({ events, cluster: 'c1' })).toThrow();
    rmSync(stagingDir(), { force: true });
    // Its keys were let go: the events are new to a batch held again.
    expect(await store.write({ events, cluster: 'c1' })).toMatchObject({ stored: 2, duplicates: 0 });
    expect(await store.write({ events, cluster: 'c1' })).toMatchObject({ stored: 0, duplicates: 2 });
    expect(await rows()).toBe(2);
  });

  it('stores the first copy of a key repeated in one batch and names the repeats', async () => {
    const r = await store.write({ events: [line(1), line(2), line(1), line(1), line(3)], cluster: 'c1' });
    expect(r).toMatchObject({ stored: 3, duplicates: 2, duplicateIndexes: [2, 3], rejected: [] });
    // Known duplicates of a committed batch are dropped at staging, with their indexes.
    const again = await store.write({ events: [line(4), line(2)], cluster: 'c1' });
    expect(again).toMatchObject({ stored: 1, duplicates: 1, duplicateIndexes: [1] });
    expect(store.tableChecks).toBe(0);
  });

  it('identifies events by cluster too, in memory and in the table after a reopen', async () => {
    const events = [line(1), line(2)];
    expect((await store.write({ events, cluster: 'c1' })).stored).toBe(2);
    expect((await store.write({ events, cluster: 'c2' })).stored).toBe(2);
    expect((await store.write({ events, cluster: 'c2' })).duplicates).toBe(2);
    await store.close();
    store = await DuckDBStore.open({ dataDir: dir });
    expect(await store.write({ events, cluster: 'c1' })).toMatchObject({ stored: 0, duplicates: 2 });
    expect(await store.write({ events, cluster: 'c3' })).toMatchObject({ stored: 2, duplicates: 0 });
    const r = await q('SELECT cluster, count(*)::INTEGER AS n FROM events GROUP BY cluster ORDER BY cluster');
    expect(r.rows).toEqual([
      { cluster: 'c1', n: 2 },
      { cluster: 'c2', n: 2 },
      { cluster: 'c3', n: 2 },
    ]);
  });

  it('stores a key of a pending batch once when both commit at the same time', async () => {
    const a = store.hold({ events: [line(1), line(2)], cluster: 'c1' });
    const b = store.hold({ events: [line(2), line(3)], cluster: 'c1' });
    const [ra, rb] = await Promise.all([a.commit(), b.commit()]);
    expect(ra.stored + rb.stored).toBe(3);
    expect(ra.duplicates + rb.duplicates).toBe(1);
    expect(await rows()).toBe(3);
  });

  it('stores the copy another batch held when that one rejects its own', async () => {
    const bad = store.hold({ events: [line(3, 'c', { verb: null })], cluster: 'c1' });
    const good = store.hold({ events: [line(3, 'c')], cluster: 'c1' });
    const [rb, rg] = await Promise.all([bad.commit(), good.commit()]);
    expect(rb).toMatchObject({ stored: 0, rejected: [{ index: 0 }] });
    expect(rg).toMatchObject({ stored: 1, duplicates: 0, rejected: [] });
    expect(await store.write({ events: [line(3, 'c')], cluster: 'c1' })).toMatchObject({
      stored: 0,
      duplicates: 1,
    });
    expect(await rows()).toBe(1);
  });

  it('refuses bytes that are not UTF-8 as one rejected event, not a failed batch', async () => {
    const bad = Buffer.concat([
      line(2).subarray(0, 40),
      Buffer.from([0xc3, 0x28, 0xff]),
      line(2).subarray(40),
    ]);
    const r = await store.write({ events: [line(1), bad, line(3)], cluster: 'c1' });
    expect(r).toMatchObject({ stored: 2, duplicates: 0 });
    expect(r.rejected).toEqual([{ index: 1, reason: 'not UTF-8 text', data: bad }]);
    // Its key was never claimed: a valid copy is stored.
    expect((await store.write({ events: [line(2)], cluster: 'c1' })).stored).toBe(1);
  });

  it('gives every commit an ingested_at later than the commit before', async () => {
    // Four batches on two writers: two import side by side, and every staging file is kept for
    // reuse, so each write settles as soon as its commit has (the order observed here).
    const batches = Array.from({ length: 4 }, (_v, b) => [line(2 * b), line(2 * b + 1)]);
    const order: number[] = [];
    await Promise.all(
      batches.map((events, b) => store.write({ events, cluster: 'c1' }).then(() => order.push(b))),
    );
    const r = await q(
      "SELECT audit_id, epoch_us(ingested_at) AS us FROM events WHERE stage = 'ResponseComplete' ORDER BY audit_id",
    );
    const usOf = new Map(r.rows.map((row) => [String(row.audit_id), Number(row.us)]));
    const times = order.map((b) => {
      const [x, y] = batches[b]?.map((e) => usOf.get(JSON.parse(e.toString()).auditID)) ?? [];
      // One commit, one time.
      expect(x).toBe(y);
      return x ?? 0;
    });
    for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThan(times[i - 1] ?? 0);
  });

  it('gives back the keys of a discarded batch, so its events can be stored by another', async () => {
    const events = prepared(fixture('watch-long-running.jsonl'));
    const { held } = holdNew(store, events);
    await held.discard();
    expect(await store.write({ events, cluster: 'c1' })).toMatchObject({
      stored: 4,
      duplicates: 0,
      rejected: [],
    });
    await expect(held.commit()).rejects.toThrow(/done/);
  });

  it('deletes the file of a batch never committed when it closes, and its directory', async () => {
    const { file } = holdNew(store, prepared(fixture('watch-long-running.jsonl')));
    const staging = stagingDir();
    expect(existsSync(file)).toBe(true);
    await store.close();
    expect(existsSync(staging)).toBe(false);
    store = await DuckDBStore.open({ dataDir: dir });
    expect((await store.info()).rows).toBe(0);
  });
});

describe('DuckDBStore.query', () => {
  it('refuses statements that write, and more than one statement', async () => {
    await expect(q('DELETE FROM audit_events')).rejects.toMatchObject({
      code: 'KAUDIT_QUERY_READONLY',
    });
    await expect(q('SELECT 1; SELECT 2')).rejects.toMatchObject({ code: 'KAUDIT_QUERY_INVALID' });
    await expect(q('SELEC 1')).rejects.toMatchObject({ code: 'KAUDIT_QUERY_INVALID' });
  });
});

describe('DuckDBStore raw column', () => {
  const [fixtureEvent] = prepared(fixture('watch-long-running.jsonl'));
  if (!fixtureEvent) throw new Error('fixture empty');
  // Backslash sequences a cast to BLOB would read as escapes, and text beyond ASCII.
  const event = Buffer.from(
    fixtureEvent
      .toString()
      .replace(/"userAgent":"[^"]*"/, '"userAgent":"kubectl \\\\x41\\\\\\\\x42 \\u00e9 é 漢字"'),
  );

  it('keeps the event bytes as they are and shows them as text', async () => {
    expect((await store.write({ events: [event], cluster: 'c1' })).stored).toBe(1);
    const r = await q("SELECT raw, typeof(raw) AS type, raw::JSON->>'userAgent' AS ua FROM events");
    expect(r.rows).toEqual([{ raw: event.toString(), type: 'VARCHAR', ua: 'kubectl \\x41\\\\x42 é é 漢字' }]);
    expect((await q("SELECT value FROM kaudit_meta WHERE key = 'schema_version'")).rows).toEqual([
      { value: '3' },
    ]);
  });

  it('keeps the text of failed requests apart and reads it back in every kind of read', async () => {
    const ok = Buffer.from(auditLine('10000000-aaaa-4bbb-8ccc-dddddddddddd').trim());
    const denied = Buffer.from(
      auditLine('20000000-aaaa-4bbb-8ccc-dddddddddddd', {
        responseStatus: { code: 403, message: 'pods is forbidden: User "bob" cannot list resource "pods"' },
      }).trim(),
    );
    expect((await store.write({ events: [ok, denied], cluster: 'c1' })).stored).toBe(2);
    const stored = await q(
      'SELECT audit_id, raw IS NULL AS in_raw, raw_failed IS NULL AS in_failed FROM audit_events ORDER BY audit_id',
    );
    expect(stored.rows).toEqual([
      { audit_id: '10000000-aaaa-4bbb-8ccc-dddddddddddd', in_raw: false, in_failed: true },
      { audit_id: '20000000-aaaa-4bbb-8ccc-dddddddddddd', in_raw: true, in_failed: false },
    ]);
    expect((await q('SELECT raw FROM events ORDER BY audit_id')).rows).toEqual([
      { raw: ok.toString() },
      { raw: denied.toString() },
    ]);
    const failed = { code: [{ min: 400, max: 499 }] };
    const scanned: unknown[] = [];
    for await (const page of store.scan({ filter: failed, columns: ['audit_id', 'raw'], pageRows: 10 }))
      scanned.push(...page);
    expect(scanned).toEqual([{ audit_id: '20000000-aaaa-4bbb-8ccc-dddddddddddd', raw: denied.toString() }]);
    const page = await store.search({ filter: failed, columns: ['raw'], limit: 10 });
    expect(page.rows).toEqual([{ raw: denied.toString() }]);
  });
});

describe('DuckDBStore retention and locking', () => {
  it('deletes events older than the retention', async () => {
    await store.write({ events: prepared(fixture('v1beta1-event.jsonl')), cluster: 'c' });
    await store.write({ events: prepared(fixture('watch-long-running.jsonl')), cluster: 'c' });
    // The 2019 events are older than any retention; the 2026 fixtures are older than 1 day too.
    const days = (Date.now() - Date.parse('2020-01-01T00:00:00Z')) / 86_400_000;
    expect(await store.deleteOlderThan(days)).toBe(2);
    expect((await store.info()).rows).toBe(4);
  });

  // The second process runs the built store (npm test builds first).
  it('names the file and the holder when another process has it open', async () => {
    await store.checkpoint();
    const script = `
      import('${new URL('../../../dist/store/duckdb/duckdb-store.js', import.meta.url).pathname}').then(async ({ DuckDBStore }) => {
        try { await DuckDBStore.open({ dataDir: ${JSON.stringify(dir)} }); console.log('opened'); }
        catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
      });`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    const out = r.stdout.trim();
    expect(out).not.toBe('opened');
    const parsed = JSON.parse(out.split('\n').pop() ?? '{}');
    expect(parsed.code).toBe('KAUDIT_STORE_LOCKED');
    expect(parsed.message).toContain(join(dir, 'kaudit.duckdb'));
    expect(parsed.message).toContain(`PID ${process.pid}`);
  });
});

describe('DuckDBStore staging files', () => {
  it('deletes those of processes that died mid-import and keeps those of running ones', async () => {
    await store.close();
    // A process that has exited: its pid names no running process (until reused, which is rare).
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    const running = process.ppid;
    const deadDir = join(dir, `kaudit-staging-${dead}-0a1b2c3d`);
    const liveDir = join(dir, `kaudit-staging-${running}-0a1b2c3d`);
    // A file of the releases that staged into the shared directory itself.
    const deadFile = join(dir, `.kaudit-staging-${dead}-0.tsv`);
    const other = join(dir, `.staging-${dead}-0.tsv`);
    // A file under a directory's name is not deleted as a directory, nor the reverse.
    const fileNamedLikeDir = join(dir, `kaudit-staging-${dead}-ffffffff`);
    for (const d of [deadDir, liveDir]) mkdirSync(d);
    for (const f of [deadFile, other, fileNamedLikeDir]) writeFileSync(f, 'x');
    store = await DuckDBStore.open({ dataDir: dir });
    expect(existsSync(deadDir)).toBe(false);
    expect(existsSync(deadFile)).toBe(false);
    expect(existsSync(liveDir)).toBe(true);
    expect(existsSync(other)).toBe(true);
    expect(existsSync(fileNamedLikeDir)).toBe(true);
  });
});

describe('DuckDBStore trimMemory', () => {
  it('sets DuckDB to give memory back after bulk frees of 4 MiB instead of 512 MiB', async () => {
    const setting = async (s: DuckDBStore) =>
      (
        await sqlOn(
          s,
          "SELECT value FROM duckdb_settings() WHERE name = 'allocator_bulk_deallocation_flush_threshold'",
        )
      ).rows[0]?.value;
    expect(await setting(store)).toBe('512.0 MiB');
    await store.close();
    store = await DuckDBStore.open({ dataDir: dir, trimMemory: true });
    expect(await setting(store)).toBe('4.0 MiB');
  });
});

describe('DuckDBStore.sql sandbox', () => {
  const run = (sql: string) => store.sql(sql, { maxRows: 100, timeoutMs: 10_000 });

  it('refuses statements that write or reach the host, whatever their text says', async () => {
    await store.write({ events: prepared(fixture('watch-long-running.jsonl')), cluster: 'c1' });
    const before = (await store.info()).rows;
    const target = join(dir, 'written-by-query.csv');
    for (const attack of [
      'EXPLAIN ANALYZE DELETE FROM audit_events',
      'explain analyze delete from kaudit.audit_events',
      `EXPLAIN ANALYZE COPY (SELECT 1) TO '${target}'`,
      `COPY (SELECT 1) TO '${target}'`,
      'DELETE FROM audit_events',
      'INSTALL httpfs',
      'LOAD httpfs',
      "ATTACH '/tmp/other.duckdb' AS other",
      'SET enable_external_access = true',
    ])
      await expect(run(attack), attack).rejects.toThrow(/read-only|SQL error|query failed/);
    for (const read of [
      "SELECT * FROM read_text('/etc/hostname')",
      "SELECT * FROM read_csv('/etc/passwd')",
      "SELECT * FROM glob('/etc/*')",
    ])
      await expect(run(read), read).rejects.toThrow(/Permission Error|not allowed|disabled|query failed/i);
    expect(existsSync(target)).toBe(false);
    expect((await store.info()).rows).toBe(before);
    // And ingest still stages and imports under these settings.
    expect(
      (await store.write({ events: prepared(fixture('secret-request-response.jsonl')), cluster: 'c2' }))
        .stored,
    ).toBeGreaterThan(0);
  });

  it('caps the rows and says so, and stops a query that runs too long', async () => {
    const r = await run('SELECT * FROM range(1000)');
    expect(r.rows).toHaveLength(100);
    expect(r.truncated).toBe(true);
    await expect(
      store.sql('SELECT count(*) FROM range(1000000000) a, range(1000) b', { maxRows: 10, timeoutMs: 200 }),
    ).rejects.toThrow(/longer than 200 ms/);
    // The connection is usable afterwards.
    expect((await run('SELECT 42 AS n')).rows).toEqual([{ n: 42 }]);
  });
});

describe('DuckDBStore read-only', () => {
  /** Name, size and mtime of every entry under `d`. */
  const listing = (d: string) =>
    readdirSync(d, { recursive: true, withFileTypes: true }).map((e) => {
      const p = join(e.parentPath, e.name);
      const st = statSync(p);
      return `${p} ${st.size} ${st.mtimeMs}`;
    });
  const ownStaging = () =>
    readdirSync('/dev/shm').filter((n) => n.startsWith(`kaudit-staging-${process.pid}-`));

  it('refuses a missing store with a UserError and creates nothing', async () => {
    const missing = join(dir, 'not-there');
    await expect(DuckDBStore.open({ dataDir: missing, readOnly: true })).rejects.toMatchObject({
      code: 'KAUDIT_STORE_MISSING',
      message: expect.stringContaining(join(missing, 'kaudit.duckdb')),
    });
    expect(existsSync(missing)).toBe(false);
  });

  it('writes nothing: no file, WAL, staging or spill directory made, none changed', async () => {
    await store.write({ events: prepared(fixture('watch-long-running.jsonl')), cluster: 'c1' });
    await store.close();
    const before = listing(dir);
    const shmBefore = existsSync('/dev/shm') ? ownStaging() : [];
    const reader = await DuckDBStore.open({ dataDir: dir, readOnly: true });
    try {
      expect(await reader.count({})).toBe(4);
      expect((await reader.search({ filter: {}, limit: 10 })).rows).toHaveLength(4);
      expect(
        (await reader.sql('SELECT count(*) AS n FROM events', { maxRows: 1, timeoutMs: 10_000 })).rows,
      ).toEqual([{ n: 4 }]);
      expect(await reader.info()).toMatchObject({ rows: 4, details: { mode: 'read-only' } });
      expect(() => reader.hold({ events: [], cluster: 'c1' })).toThrow(
        expect.objectContaining({ code: 'KAUDIT_STORE_READ_ONLY' }),
      );
      await expect(reader.deleteOlderThan(1)).rejects.toMatchObject({ code: 'KAUDIT_STORE_READ_ONLY' });
      expect(existsSync('/dev/shm') ? ownStaging() : []).toEqual(shmBefore);
    } finally {
      await reader.close();
    }
    expect(listing(dir)).toEqual(before);
    // afterEach closes the store again: give it one to close.
    store = await DuckDBStore.open({ dataDir: dir });
  });
});
