// npm run bench:clickhouse — the ClickHouse store over 1M simulated events, on a clickhouse-server
// started for the run (Debian's 18.16 unless KAUDIT_CLICKHOUSE_SERVER names another binary):
//   1. baseline: ClickHouse's own `INSERT ... FORMAT JSONEachRow` of the same log file (the server
//      parses it into a table of the events' top-level fields; no de-duplication, no derived fields);
//   2. `kaudit ingest --store clickhouse://...` of that file (target >= 100k events/s), then again
//      (every event a duplicate: the cost of re-delivery);
//   3. the cost of the insert-side duplicate check, and what FINAL would cost instead;
//   4. every report's latency on ClickHouse beside DuckDB's over the same events, in this run;
//   5. bytes on disk per 1M events on both.
// BENCH_EVENTS changes the size (default 1,000,000); the log is shared with bench:ingest/reports.
import {
  createReadStream,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startServer } from './clickhouse-server.mjs';
import { MB, simulatedLog, table, timedNode, verdict } from './lib.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = (p) => pathToFileURL(join(root, 'dist', p)).href;
const bin = join(root, 'dist/cli/bin.js');
const out = join(root, 'bench/out');
const events = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const seed = 20261126;
mkdirSync(out, { recursive: true });
const log = join(out, `audit-${events}-${seed}.log`);
const duckData = join(out, `clickhouse-bench-duckdb-${events}`);
// `ingest --store` keeps its dead letters in a data directory: this one, not ./kaudit-data.
const chData = join(out, 'clickhouse-bench-data');
const say = (m) => process.stderr.write(`${m}\n`);
// The figures docs/clickhouse.md recorded before rows went as RowBinary in batches of 50,000 (the
// 2-core development machine, 1M events of this seed): compared by their ratio to the baseline of
// their own run, since the machine's load differs between runs.
const BEFORE = { baseline: 171_330, ingest: 14_909, again: 23_285, duckdb: 74_985 };

// CPU time is what the shared 2-core machine measures steadily: each ingest reports its own (all
// its threads: getrusage of the process) at exit, and the server's is read from /proc around it.
const cpuProbe = join(out, 'cpu-at-exit.cjs');
writeFileSync(
  cpuProbe,
  "process.on('exit', () => { const c = process.cpuUsage(); require('node:fs').writeSync(2, '\\nKAUDIT_BENCH_CPU_US ' + (c.user + c.system) + '\\n'); });\n",
);
const cpuUsOf = (stderr) => Number(/KAUDIT_BENCH_CPU_US (\d+)/.exec(stderr)?.[1] ?? Number.NaN);
/** CPU seconds of a process so far (utime + stime of /proc/<pid>/stat, in clock ticks of 1/100 s). */
const processCpuS = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};

await simulatedLog(root, 'audit', events, seed);
const logBytes = statSync(log).size;
const lines = await (async () => {
  let n = 0;
  for await (const chunk of createReadStream(log)) for (const b of chunk) if (b === 10) n++;
  return n;
})();

const server = await startServer();
const version = (await server.query('SELECT version()')).trim();
say(`clickhouse-server ${version} at ${server.url}`);
const spec = `clickhouse://default@${server.url.replace('http://', '')}/kaudit`;
const results = [];
try {
  // 1. Baseline: the server parsing the same file itself.
  await server.query('CREATE DATABASE baseline');
  await server.query(`CREATE TABLE baseline.events (
    kind String, apiVersion String, level String, auditID String, stage String, requestURI String,
    verb String, userAgent String, requestReceivedTimestamp String, stageTimestamp String
  ) ENGINE = MergeTree ORDER BY (auditID, stage)`);
  say('baseline: INSERT ... FORMAT JSONEachRow of the log over HTTP ...');
  let t = performance.now();
  await server.query(
    'INSERT INTO baseline.events FORMAT JSONEachRow',
    Readable.toWeb(createReadStream(log, { highWaterMark: 1 << 20 })),
    // The nested fields (user, objectRef, ...) have no column: 18.16 cannot put JSON objects in one.
    { input_format_skip_unknown_fields: '1' },
  );
  const baselineS = (performance.now() - t) / 1000;
  const baselineRows = Number(await server.query('SELECT count() FROM baseline.events'));

  // 2. kaudit ingest, twice.
  const init = await timedNode([bin, 'store', 'init', '--store', spec]);
  if (init.code !== 0) throw new Error(`store init failed: ${init.stderr}`);
  say('kaudit ingest into ClickHouse ...');
  // The server's CPU for an ingest includes the merges its inserts start: waited for.
  const merged = async () => {
    for (let i = 0; i < 600; i++) {
      if (Number(await server.query('SELECT count() FROM system.merges')) === 0) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const ingest = async () => {
    await merged();
    const s0 = processCpuS(server.pid);
    const r = await timedNode([
      '--require',
      cpuProbe,
      bin,
      'ingest',
      '--store',
      spec,
      '--data',
      chData,
      '--no-progress',
      '--json',
      log,
    ]);
    await merged();
    return { ...r, nodeCpuUs: cpuUsOf(r.stderr), serverCpuUs: (processCpuS(server.pid) - s0) * 1e6 };
  };
  const first = await ingest();
  if (first.code !== 0) throw new Error(`ingest failed: ${first.stderr}`);
  const firstJson = JSON.parse(first.stdout);
  say('kaudit ingest of the same file again (every event a duplicate) ...');
  const again = await ingest();
  if (again.code !== 0) throw new Error(`second ingest failed: ${again.stderr}`);
  const againJson = JSON.parse(again.stdout);
  const stored = Number(await server.query('SELECT count() FROM kaudit.audit_events'));

  say('kaudit ingest into DuckDB (same file, same run) ...');
  rmSync(duckData, { recursive: true, force: true });
  const duck = await timedNode([bin, 'ingest', '--data', duckData, '--no-progress', '--json', log]);
  if (duck.code !== 0) throw new Error(`duckdb ingest failed: ${duck.stderr}`);

  const rate = (n, s) => Math.round(n / s);
  results.push({
    what: 'ClickHouse INSERT FORMAT JSONEachRow (baseline)',
    events: baselineRows,
    seconds: baselineS.toFixed(1),
    'events/s': rate(baselineRows, baselineS),
    'x baseline': '1.00',
    'peak RSS MB': '-',
  });
  const ingestRow = (what, r, n) => ({
    what,
    events: n,
    seconds: r.seconds.toFixed(1),
    'events/s': rate(lines, r.seconds),
    'x baseline': (rate(lines, r.seconds) / rate(baselineRows, baselineS)).toFixed(2),
    'peak RSS MB': (r.peakRssBytes / MB).toFixed(0),
  });
  results.push(ingestRow('kaudit ingest --store clickhouse://', first, firstJson.stored ?? stored));
  results.push(ingestRow('  the same file again (all duplicates)', again, againJson.duplicates ?? 0));
  results.push(ingestRow('kaudit ingest --data (DuckDB)', duck, JSON.parse(duck.stdout).stored ?? 0));

  // 3. De-duplication: the check's share of a write, and FINAL as the alternative.
  const { ClickHouseStore } = await import(dist('store/clickhouse/clickhouse-store.js'));
  const { prepareLine } = await import(dist('model/prepare.js'));
  const { generateLines } = await import(dist('simulate/generator.js'));
  const { encodeBatch } = await import(dist('store/clickhouse/event-row.js'));
  const sample = [];
  for (const l of generateLines({ seed: 99, count: 100_000, startMs: Date.parse('2026-02-01T00:00:00Z') }))
    sample.push(...prepareLine(Buffer.from(l)).events);
  // Encoding alone (JSON.parse, derived fields, the RowBinary row), in this thread: CPU per event.
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < sample.length; i += 10_000) encodeBatch(sample.slice(i, i + 10_000), 'probe', 1);
  const cpu1 = process.cpuUsage(cpu0);
  const encodeUs = (cpu1.user + cpu1.system) / sample.length;
  const probe = await ClickHouseStore.open({
    url: server.url,
    database: 'kaudit',
    username: 'default',
    password: '',
  });
  const writeEvents = probe.capabilities.batchEvents;
  t = performance.now();
  for (let i = 0; i < sample.length; i += writeEvents)
    await probe.write({ events: sample.slice(i, i + writeEvents), cluster: 'probe' });
  const probeMs = performance.now() - t;
  const details = (await probe.info()).details;
  const timeQuery = async (sql) => {
    const runs = [];
    for (let i = 0; i < 3; i++) {
      const s = performance.now();
      await server.query(sql);
      runs.push(performance.now() - s);
    }
    return runs.sort((a, b) => a - b)[1];
  };
  const plain = await timeQuery('SELECT verb, count() FROM kaudit.audit_events GROUP BY verb');
  const final = await timeQuery('SELECT verb, count() FROM kaudit.audit_events FINAL GROUP BY verb');

  // 4. Reports, ClickHouse beside DuckDB.
  const { openStore } = await import(dist('store/registry.js'));
  const { latencyReport } = await import(dist('analyze/latency.js'));
  const { activityReport } = await import(dist('analyze/activity.js'));
  const { objectHistory } = await import(dist('analyze/history.js'));
  const { resolveRange, inRange } = await import(dist('analyze/report-range.js'));
  const { denialsFromStore } = await import(dist('analyze/denials/denials-from-store.js'));
  const { generateRbac } = await import(dist('analyze/rbac/generate.js'));
  const { requestRecords } = await import(dist('analyze/request-record.js'));
  const { storedEvents } = await import(dist('store/stored-events.js'));
  const time = async (fn) => {
    const runs = [];
    for (let i = 0; i < 3; i++) {
      const s = performance.now();
      await fn();
      runs.push(performance.now() - s);
    }
    return runs.sort((a, b) => a - b)[1];
  };
  const reportsOf = async (store) => {
    const filter = { cluster: ['default'] };
    const range = await resolveRange(store, filter);
    const records = () =>
      requestRecords(
        (async function* () {
          for await (const { event } of storedEvents(store, inRange(filter, range))) yield event;
        })(),
      );
    return {
      'count (the window)': await time(() => store.count(inRange(filter, range))),
      latency: await time(() => latencyReport(store, { filter })),
      activity: await time(() => activityReport(store, { filter })),
      'history configmaps/payments/payments-config': await time(() =>
        objectHistory(store, {
          target: { resource: 'configmaps', namespace: 'payments', name: 'payments-config' },
          filter,
        }),
      ),
      denials: await time(() => denialsFromStore(store, inRange(filter, range))),
      'rbac generate --all': await time(() => generateRbac(records(), { select: { all: true } })),
    };
  };
  say('reports on ClickHouse ...');
  const chStore = await openStore(spec);
  const ch = await reportsOf(chStore);
  const chInfo = await chStore.info();
  await chStore.close();
  say('reports on DuckDB ...');
  const dStore = await openStore(duckData, { readOnly: true });
  const dk = await reportsOf(dStore);
  await dStore.close();
  await probe.close();

  // 5. Size.
  const chBytes = Number(
    await server.query(
      "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'kaudit' AND table = 'audit_events' AND active",
    ),
  );
  const duckBytes = readdirSync(duckData)
    .filter((f) => f.startsWith('kaudit.duckdb'))
    .reduce((n, f) => n + statSync(join(duckData, f)).size, 0);
  const per1M = (b, n) => ((b / MB) * (1_000_000 / n)).toFixed(0);

  console.log(
    `\n${lines.toLocaleString('en')} events (${(logBytes / MB).toFixed(0)} MB), clickhouse-server ${version}\n`,
  );
  console.log(table(results));
  const target = rate(lines, first.seconds) >= 100_000;
  console.log(`\ningest target >= 100,000 events/s: ${verdict(target)}`);
  const ratio = (n, base) => (n / base).toFixed(2);
  console.log(
    '\nbefore (recorded, TabSeparated in batches of 10,000) and now (this run), as a share of the baseline:',
  );
  console.log(
    table([
      {
        what: 'kaudit ingest --store clickhouse://',
        'before events/s': BEFORE.ingest,
        'before x baseline': ratio(BEFORE.ingest, BEFORE.baseline),
        'now events/s': rate(lines, first.seconds),
        'now x baseline': ratio(rate(lines, first.seconds), rate(baselineRows, baselineS)),
      },
      {
        what: '  the same file again (all duplicates)',
        'before events/s': BEFORE.again,
        'before x baseline': ratio(BEFORE.again, BEFORE.baseline),
        'now events/s': rate(lines, again.seconds),
        'now x baseline': ratio(rate(lines, again.seconds), rate(baselineRows, baselineS)),
      },
    ]),
  );
  // Both are Node pipelines on the same cores: a busy machine slows them alike, the server's own
  // single-threaded parse less.
  console.log(
    `kaudit ingest into ClickHouse as a share of kaudit ingest into DuckDB: before ${ratio(BEFORE.ingest, BEFORE.duckdb)}, now ${ratio(rate(lines, first.seconds), rate(lines, duck.seconds))}`,
  );
  console.log(
    `\nwhere the time goes: encoding takes ${encodeUs.toFixed(1)} us of CPU per event; the store encodes in ${details.encodeThreads} worker thread(s)`,
  );
  // The budget that decides the rate on a machine to itself: CPU per event, kaudit and server.
  const perEvent = (us) => us / lines;
  const budget = (what, r) => {
    const node = perEvent(r.nodeCpuUs);
    const srv = perEvent(r.serverCpuUs);
    return {
      what,
      'kaudit us/event': node.toFixed(1),
      'server us/event': srv.toFixed(1),
      'total us/event': (node + srv).toFixed(1),
      'ceiling on 2 cores, events/s': Math.round(2e6 / (node + srv)),
    };
  };
  console.log('\nCPU per event (all threads of the ingest; the server with the merges its inserts start):');
  console.log(
    table([budget('kaudit ingest --store clickhouse://', first), budget('  the same file again', again)]),
  );
  console.log(
    `rows stored: ${stored} (each event once after two ingests: ${verdict(stored === firstJson.stored)})`,
  );
  console.log(
    `\nde-duplication, ${sample.length.toLocaleString('en')} new events in writes of ${writeEvents.toLocaleString('en')}: ${probeMs.toFixed(0)} ms, of which duplicate checks ${details.checkMs} ms (${details.keyLookups} of ${details.duplicateChecks} read keys back), inserts ${details.insertMs} ms, encoding the rest`,
  );
  console.log(
    `a GROUP BY over the table: ${plain.toFixed(0)} ms plain, ${final.toFixed(0)} ms with FINAL (${(final / plain).toFixed(1)}x)`,
  );
  console.log('\nreport latencies (median of 3, ms):');
  console.log(
    table(
      Object.keys(ch).map((k) => ({
        report: k,
        clickhouse: ch[k].toFixed(0),
        duckdb: dk[k].toFixed(0),
        'clickhouse / duckdb': (ch[k] / dk[k]).toFixed(2),
      })),
    ),
  );
  console.log(
    `\nbytes on disk per 1M events: ClickHouse ${per1M(chBytes, chInfo.rows)} MB, DuckDB ${per1M(duckBytes, lines)} MB`,
  );
} finally {
  await server.stop();
  rmSync(duckData, { recursive: true, force: true });
  rmSync(chData, { recursive: true, force: true });
}
