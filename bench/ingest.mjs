// npm run bench:ingest — `kaudit ingest` of a generated 1M-event log against two baselines
// measured in the same run: (a) split + JSON.parse in plain Node, (b) DuckDB importing the file
// itself into the same table. Targets (2 cores): >= 80k events/s, <= 1.25x (b), DB <= 300 MB,
// peak RSS <= 1.5 GB. BENCH_EVENTS changes the size (default 1,000,000).
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MB, simulatedLog, table, timedNode, verdict } from './lib.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'dist/cli/bin.js');
const out = join(root, 'bench/out');
const events = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const seed = 20261126;
const log = await simulatedLog(root, 'audit', events, seed);
process.stderr.write(`  ${(statSync(log).size / MB).toFixed(0)} MB of audit log\n`);
const bytes = statSync(log).size;

process.stderr.write('baseline (a): split + JSON.parse ...\n');
const a = await timedNode([join(root, 'bench/ingest-parse.mjs'), log]);
const aRes = JSON.parse(a.stdout);
if (aRes.lines !== events) throw new Error(`baseline (a) parsed ${aRes.lines} lines, expected ${events}`);

process.stderr.write('baseline (b): DuckDB read_json_objects + json_transform ...\n');
const b = await timedNode([join(root, 'bench/ingest-native.mjs'), log, join(out, 'native')]);
if (b.code !== 0) throw new Error(`native import failed: ${b.stderr}`);
const bRes = JSON.parse(b.stdout);

process.stderr.write('kaudit ingest ...\n');
const data = join(out, 'kaudit-data');
rmSync(data, { recursive: true, force: true });
const k = await timedNode([bin, 'ingest', '--data', data, '--json', '--no-progress', log]);
if (k.code !== 0) throw new Error(`kaudit ingest failed: ${k.stderr}`);
const kRes = JSON.parse(k.stdout);
const dbBytes = statSync(join(data, 'kaudit.duckdb')).size;

const row = (name, seconds, rss, db) => ({
  run: name,
  seconds: seconds.toFixed(2),
  'events/s': Math.round(events / seconds).toLocaleString('en-US'),
  'MB/s': (bytes / MB / seconds).toFixed(0),
  'DB MB': db === null ? '-' : (db / MB).toFixed(0),
  'peak RSS MB': (rss / MB).toFixed(0),
});
console.log(
  `\ningest benchmark: ${events.toLocaleString('en-US')} events, ${(bytes / MB).toFixed(0)} MB of JSON lines\n`,
);
console.log(
  table([
    row('(a) node split+JSON.parse', a.seconds, a.peakRssBytes, null),
    row('(b) duckdb native import', b.seconds, b.peakRssBytes, bRes.dbBytes),
    row('kaudit ingest', k.seconds, k.peakRssBytes, dbBytes),
  ]),
);
const rate = events / k.seconds;
const ratioNative = k.seconds / b.seconds;
const ratioParse = k.seconds / a.seconds;
const scale = events / 1_000_000;
console.log(`
kaudit stored ${kRes.stored} of ${events} (duplicates ${kRes.duplicates}, malformed ${kRes.malformed}, truncated ${kRes.truncated})
ratio kaudit / (a) node parse:    ${ratioParse.toFixed(2)}x
ratio kaudit / (b) duckdb native: ${ratioNative.toFixed(2)}x

targets
  events/s >= 80,000          ${Math.round(rate).toLocaleString('en-US').padStart(10)}  ${verdict(rate >= 80_000)}
  time <= 1.25x native        ${ratioNative.toFixed(2).padStart(10)}  ${verdict(ratioNative <= 1.25)}
  DB <= 300 MB per 1M events  ${(dbBytes / MB / scale).toFixed(0).padStart(10)}  ${verdict(dbBytes / scale <= 300 * MB)}
  peak RSS <= 1.5 GB          ${(k.peakRssBytes / MB).toFixed(0).padStart(10)}  ${verdict(k.peakRssBytes <= 1.5 * 1024 * MB)}
`);
if (kRes.stored !== events) {
  console.error(`kaudit stored ${kRes.stored} events, expected ${events}`);
  process.exitCode = 1;
}
