import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
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
import { RestageError } from './staged.js';

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
    const scanner = (store as unknown as { scanner: { memoryBytes: number } }).scanner;
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
      // Both rejected copies before it are dead-lettered; the two after it are duplicates.
      expect(r.stored).toBe(1);
      expect(r.duplicates).toBe(2);
      expect(r.rejected.map((x) => [x.index, x.reason])).toEqual([
        [0, 'not an audit Event: missing field verb'],
        [1, 'not JSON'],
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

  it('vouches for a spare by its own stage time, not the rejected copy it replaces', async () => {
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
    // Stored by an earlier process: the new one must look the spare's key up in the table, though
    // the copy it replaces is later than anything stored.
    expect((await store.write({ events: [good], cluster: 'c1' })).stored).toBe(1);
    await store.close();
    store = await DuckDBStore.open({ dataDir: dir });
    expect(await store.write({ events: [damaged(2), good], cluster: 'c1' })).toMatchObject({
      stored: 0,
      duplicates: 1,
    });
    expect(await rows(store)).toBe(1);
    // Stored by this process, in place of an earlier copy, then let go from a one-key window: the
    // floor must rise past the spare's time, not only the copy's.
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

describe('DuckDBStore.stage', () => {
  const stagingDir = () => (store as unknown as { stagingDir: string }).stagingDir;
  const stagingFiles = () =>
    new Set(readdirSync(stagingDir()).filter((n) => n.startsWith(`.kaudit-staging-${process.pid}-`)));
  /** Stages the events and returns the batch with the staging file it made. */
  const stageNew = (events: Buffer[]) => {
    const before = stagingFiles();
    const staged = store.stage({ events, cluster: 'c1' });
    const made = [...stagingFiles()].filter((n) => !before.has(n));
    expect(made).toHaveLength(1);
    return { staged, file: join(stagingDir(), made[0] as string) };
  };

  it('keeps a batch whose import failed, with its keys, and imports it once on the next write()', async () => {
    const events = prepared(fixture('watch-long-running.jsonl'));
    const { staged, file } = stageNew(events);
    // The caller's buffers may be reused at once: the store has its own copy.
    const copies = events.map((e) => Buffer.from(e));
    for (const e of events) e.fill(0x20);
    // The import fails while its file is away for a moment.
    renameSync(file, `${file}.away`);
    await expect(staged.write()).rejects.toThrow();
    renameSync(`${file}.away`, file);
    // Its keys are held meanwhile: another batch with the same events cannot count them as
    // duplicates while the first is not stored. That batch stages a new event too, in a file of its
    // own (the held one is not written over).
    const other = Buffer.from(auditLine(uuidOf(1, 'e')).trim());
    await expect(store.write({ events: [...copies, other], cluster: 'c1' })).rejects.toThrow(
      /stage them again/,
    );
    const checks = store.tableChecks;
    expect(await staged.write()).toMatchObject({ stored: 4, duplicates: 0, rejected: [] });
    // The retry looked its rows up in the table: a failure may have come after the commit.
    expect(store.tableChecks).toBe(checks + 1);
    await expect(staged.write()).rejects.toThrow(/done/);
    // Once it is stored, they are duplicates.
    expect(await store.write({ events: [...copies, other], cluster: 'c1' })).toMatchObject({
      stored: 1,
      duplicates: 4,
      rejected: [],
    });
    expect((await store.info()).rows).toBe(5);
  });

  it('stores a batch with duplicates of a pending batch only once that one is stored, else fails it', async () => {
    const line = (i: number) => Buffer.from(auditLine(uuidOf(i, 'f')).trim());
    const events = [line(1), line(2)];
    const { staged: first, file } = stageNew(events);
    const later = store.stage({ events: [...events, line(3)], cluster: 'c1' });
    expect(first.selfContained).toBe(true);
    // It has no copy of the duplicates: the caller must keep its events to stage them again.
    expect(later.selfContained).toBe(false);
    renameSync(file, `${file}.away`);
    await expect(first.write()).rejects.toThrow();
    renameSync(`${file}.away`, file);
    // The first is not stored (it waits for a retry): the later one may not count on it.
    await expect(later.write()).rejects.toThrow(/stage them again/);
    await later.discard();
    await first.discard();
    expect(await store.write({ events: [...events, line(3)], cluster: 'c1' })).toMatchObject({
      stored: 3,
      duplicates: 0,
      rejected: [],
    });
    // Both importing: the later one waits for the first and counts its events as duplicates.
    const more = [line(4), line(5)];
    const a = store.stage({ events: more, cluster: 'c1' });
    const b = store.stage({ events: [...more, line(6)], cluster: 'c1' });
    expect(b.selfContained).toBe(false);
    const [ra, rb] = await Promise.all([a.write(), b.write()]);
    expect(ra).toMatchObject({ stored: 2, duplicates: 0, rejected: [] });
    expect(rb).toMatchObject({ stored: 1, duplicates: 2, rejected: [] });
    expect((await store.info()).rows).toBe(6);
    // Depends only on the batches that hold its duplicates' keys: a repeat within itself, or of a
    // stored event, leaves it self-contained while an unrelated batch is pending.
    const unrelated = store.stage({ events: [line(7)], cluster: 'c1' });
    const c = store.stage({ events: [line(8), line(8), line(1)], cluster: 'c1' });
    expect(c.selfContained).toBe(true);
    expect(await c.write()).toMatchObject({ stored: 1, duplicates: 2, rejected: [] });
    expect((await unrelated.write()).stored).toBe(1);
  });

  it('fails a batch waiting for one that then fails, and one whose duplicates that one rejected', async () => {
    await store.close();
    store = await DuckDBStore.open({ dataDir: dir, writers: 1 });
    const line = (i: number, extra = {}) => Buffer.from(auditLine(uuidOf(i, 'c'), extra).trim());
    const { staged: first, file } = stageNew([line(1)]);
    const waiting = store.stage({ events: [line(1), line(2)], cluster: 'c1' });
    renameSync(file, `${file}.away`);
    const [r1, r2] = await Promise.allSettled([first.write(), waiting.write()]);
    renameSync(`${file}.away`, file);
    expect(r1.status).toBe('rejected');
    expect(r2).toMatchObject({ status: 'rejected', reason: expect.any(RestageError) });
    await Promise.all([first.discard(), waiting.discard()]);
    // A copy without a verb is rejected and its key given back: the valid copy counted as its
    // duplicate must be staged again, and then it is stored.
    const bad = store.stage({ events: [line(3, { verb: null })], cluster: 'c1' });
    const good = store.stage({ events: [line(3)], cluster: 'c1' });
    const [rb, rg] = await Promise.allSettled([bad.write(), good.write()]);
    expect(rb).toMatchObject({ status: 'fulfilled', value: { stored: 0, rejected: [{ index: 0 }] } });
    expect(rg).toMatchObject({ status: 'rejected', reason: expect.any(RestageError) });
    await good.discard();
    expect(await store.write({ events: [line(3)], cluster: 'c1' })).toMatchObject({
      stored: 1,
      duplicates: 0,
      rejected: [],
    });
    // A reject of another event does not concern it.
    const mixed = store.stage({ events: [line(4, { verb: null }), line(5)], cluster: 'c1' });
    const after = store.stage({ events: [line(5), line(6)], cluster: 'c1' });
    const [rm, ra] = await Promise.all([mixed.write(), after.write()]);
    expect(rm).toMatchObject({ stored: 1, rejected: [{ index: 0 }] });
    expect(ra).toMatchObject({ stored: 1, duplicates: 1, rejected: [] });
  });

  it('looks up in the table the events of a batch let go after a failed import', async () => {
    const events = prepared(fixture('watch-long-running.jsonl'));
    const { staged, file } = stageNew(events);
    renameSync(file, `${file}.away`);
    await expect(staged.write()).rejects.toThrow();
    renameSync(`${file}.away`, file);
    await staged.discard();
    // The failure might have come after the commit: the same events are looked up, not trusted.
    const checks = store.tableChecks;
    expect(await store.write({ events, cluster: 'c1' })).toMatchObject({
      stored: 4,
      duplicates: 0,
      rejected: [],
    });
    expect(store.tableChecks).toBe(checks + 1);
    expect((await store.info()).rows).toBe(4);
  });

  it('gives back the keys of a discarded batch, so its events can be stored by another', async () => {
    const events = prepared(fixture('watch-long-running.jsonl'));
    const { staged } = stageNew(events);
    await staged.discard();
    expect(await store.write({ events, cluster: 'c1' })).toMatchObject({
      stored: 4,
      duplicates: 0,
      rejected: [],
    });
    await expect(staged.write()).rejects.toThrow(/done/);
  });

  it('deletes the file of a batch never written when it closes', async () => {
    const { file } = stageNew(prepared(fixture('watch-long-running.jsonl')));
    expect(existsSync(file)).toBe(true);
    await store.close();
    expect(existsSync(file)).toBe(false);
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
      { value: '2' },
    ]);
  });

  // Layout 1 (every column stored, raw as text), and a table of a development build between the
  // two layouts (raw already a BLOB, every column stored).
  for (const raw of ['VARCHAR', 'BLOB']) {
    it(`reads and writes a file whose table stores every column, raw as ${raw}`, async () => {
      await store.close();
      const legacy = mkdtempSync(join(tmpdir(), 'kaudit-legacy-'));
      try {
        const { DuckDBInstance } = await import('@duckdb/node-api');
        const file = join(legacy, 'kaudit.duckdb');
        const db = await DuckDBInstance.create(file, { storage_compatibility_version: 'latest' });
        const c = await db.connect();
        await c.run(`CREATE TABLE kaudit_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
          CREATE TABLE audit_events (ts TIMESTAMP NOT NULL, stage_ts TIMESTAMP, audit_id VARCHAR NOT NULL,
            stage VARCHAR NOT NULL, level VARCHAR, verb VARCHAR, username VARCHAR, user_uid VARCHAR, groups VARCHAR[],
            impersonated_user VARCHAR, subject VARCHAR, source_ip VARCHAR, source_ips VARCHAR[], user_agent VARCHAR,
            api_group VARCHAR, api_version VARCHAR, resource VARCHAR, subresource VARCHAR, namespace VARCHAR,
            name VARCHAR, request_uri VARCHAR, code INTEGER, decision VARCHAR, reason VARCHAR, latency_ms DOUBLE,
            long_running BOOLEAN, latency_breakdown MAP(VARCHAR, DOUBLE), truncated BOOLEAN, cluster VARCHAR NOT NULL,
            ingested_at TIMESTAMP NOT NULL, raw ${raw} USING COMPRESSION zstd)`);
        c.closeSync();
        db.closeSync();
        store = await DuckDBStore.open({ dataDir: legacy });
        expect((await store.write({ events: [event], cluster: 'c1' })).stored).toBe(1);
        const r = await q('SELECT raw, typeof(raw) AS type FROM events');
        expect(r.rows).toEqual([{ raw: event.toString(), type: 'VARCHAR' }]);
        // The same view columns, with the same values, as a file of the current layout.
        const all = 'SELECT * EXCLUDE (ingested_at) FROM events';
        const legacyRows = (await q(all)).rows;
        const legacyColumns = (await q('DESCRIBE events')).rows;
        const current = await DuckDBStore.open({ dataDir: join(legacy, 'current') });
        try {
          await current.write({ events: [event], cluster: 'c1' });
          expect((await sqlOn(current, all)).rows).toEqual(legacyRows);
          expect((await sqlOn(current, 'DESCRIBE events')).rows).toEqual(legacyColumns);
        } finally {
          await current.close();
        }
        expect((await q("SELECT value FROM kaudit_meta WHERE key = 'schema_version'")).rows).toEqual([
          { value: '1' },
        ]);
      } finally {
        await store.close();
        rmSync(legacy, { recursive: true, force: true });
        // afterEach closes the store again: give it one to close.
        store = await DuckDBStore.open({ dataDir: dir });
      }
    });
  }
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
    const deadFile = join(dir, `.kaudit-staging-${dead}-0.tsv`);
    const liveFile = join(dir, `.kaudit-staging-${running}-0.tsv`);
    const deadDir = join(dir, `.kaudit-staging-${dead}-1.tsv`);
    const other = join(dir, `.staging-${dead}-0.tsv`);
    for (const f of [deadFile, liveFile, other]) writeFileSync(f, 'x');
    mkdirSync(deadDir);
    store = await DuckDBStore.open({ dataDir: dir });
    expect(existsSync(deadFile)).toBe(false);
    expect(existsSync(liveFile)).toBe(true);
    expect(existsSync(deadDir)).toBe(true);
    expect(existsSync(other)).toBe(true);
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
