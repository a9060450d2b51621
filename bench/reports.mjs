// npm run bench:reports — every report over a store of 1M simulated events (DuckDB, the embedded
// default), against a baseline measured in the same run: counting the same events (a full pass over
// the rows the report filters). Target: each report <= 1 s; RBAC generation for every subject <= 5 s.
// BENCH_EVENTS changes the size (default 1,000,000); the log is shared with bench:ingest.
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MB, simulatedLog, table, timedNode, verdict } from './lib.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = (p) => pathToFileURL(join(root, 'dist', p)).href;
const bin = join(root, 'dist/cli/bin.js');
const out = join(root, 'bench/out');
const events = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const seed = 20261126;
const log = await simulatedLog(root, 'audit', events, seed);
const data = join(out, `reports-${events}`);
if (!existsSync(join(data, 'kaudit.duckdb'))) {
  rmSync(data, { recursive: true, force: true });
  process.stderr.write(`ingesting ${(statSync(log).size / MB).toFixed(0)} MB ...\n`);
  const i = await timedNode([bin, 'ingest', '--data', data, '--no-progress', log]);
  if (i.code !== 0) throw new Error(`ingest failed: ${i.stderr}`);
}

const { openStore } = await import(dist('store/registry.js'));
const { latencyReport } = await import(dist('analyze/latency.js'));
const { activityReport } = await import(dist('analyze/activity.js'));
const { objectHistory } = await import(dist('analyze/history.js'));
const { resolveRange } = await import(dist('analyze/report-range.js'));

const store = await openStore(data, { readOnly: true });
const range = await resolveRange(store, {});
const filter = {};

async function time(fn) {
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await fn();
    runs.push(performance.now() - t);
  }
  runs.sort((a, b) => a - b);
  return runs[1];
}

const baseline = await time(() => store.count({ since: range.since, until: range.until }));
const rows = [];
const add = async (name, fn, targetMs = 1000) => {
  const ms = await time(fn);
  rows.push({
    report: name,
    ms: ms.toFixed(0),
    'x count': (ms / baseline).toFixed(1),
    target: `<= ${targetMs} ms`,
    verdict: verdict(ms <= targetMs),
  });
};
await add('latency', () => latencyReport(store, { filter }));
await add('activity', () => activityReport(store, { filter }));
await add('history configmaps/payments/payments-config', () =>
  objectHistory(store, {
    target: { resource: 'configmaps', namespace: 'payments', name: 'payments-config' },
    filter: {},
  }),
);
const { generateRbac } = await import(dist('analyze/rbac/generate.js'));
const { rbacRecordsFromStore } = await import(dist('analyze/rbac/records-from-store.js'));
const { inRange } = await import(dist('analyze/report-range.js'));
// As `kaudit rbac generate --data` reads them: request shapes counted by the store.
const records = () => rbacRecordsFromStore(store, inRange(filter, range));
const { denialsFromStore } = await import(dist('analyze/denials/denials-from-store.js'));
await add('denials', () => denialsFromStore(store, inRange(filter, range)), 1000);
await add('rbac generate --all', () => generateRbac(records(), { select: { all: true } }), 5000);
await store.close();
console.log(
  `\n${events.toLocaleString('en')} events; baseline: count of the window's events = ${baseline.toFixed(0)} ms\n`,
);
console.log(table(rows));
