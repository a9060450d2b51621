// npm run bench:api — the API calls each dashboard page makes, over a store of 1M simulated events
// (the one bench:reports builds), served by `kaudit serve`. Baseline in the same run: GET /healthz,
// the cheapest round trip through the same server. Targets: each page's calls <= 300 ms at p95; the
// first page load (index and every asset, gzip as the browser asks) <= 500 KB.
// BENCH_EVENTS changes the size (default 1,000,000); BENCH_API_ROUNDS the calls per endpoint (15).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { table, timedNode, verdict } from './lib.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'dist/cli/bin.js');
const events = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const rounds = Number(process.env.BENCH_API_ROUNDS ?? 15);
const data = join(root, 'bench/out', `reports-${events}`);

if (!existsSync(join(data, 'kaudit.duckdb'))) {
  process.stderr.write(`no store of ${events} events yet: building it with bench/reports.mjs first ...\n`);
  const r = await timedNode([join(root, 'bench/reports.mjs')], { env: { BENCH_EVENTS: String(events) } });
  if (r.code !== 0) throw new Error(`bench/reports.mjs failed: ${r.stderr}`);
}

// A store built by an older kaudit is brought to the current layout first (serve reads it as it is).
const init = await timedNode([bin, 'store', 'init', '--data', data]);
if (init.code !== 0) throw new Error(`kaudit store init failed: ${init.stderr}`);

const serve = spawn(process.execPath, [bin, 'serve', '--data', data, '--listen', '127.0.0.1:0'], {
  stdio: ['ignore', 'ignore', 'pipe'],
});
const base = await new Promise((resolve, reject) => {
  let text = '';
  serve.stderr.on('data', (b) => {
    text += b.toString();
    const m = /at (http:\/\/127\.0\.0\.1:\d+)\//.exec(text);
    if (m) resolve(m[1]);
  });
  serve.on('exit', (code) => reject(new Error(`kaudit serve exited ${code}: ${text}`)));
});

async function timed(path) {
  const start = performance.now();
  const res = await fetch(`${base}${path}`, { headers: { 'accept-encoding': 'gzip' } });
  const body = await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status}`);
  // fetch inflates gzip; content-length is what crossed the wire.
  return {
    ms: performance.now() - start,
    bytes: Number(res.headers.get('content-length') ?? body.byteLength),
  };
}

const p95 = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(s.length * 0.95) - 1)];
};

const activity = await (await fetch(`${base}/api/v1/reports/activity`)).json();
const topUser = activity.top.subjects[0]?.value ?? 'admin';
const PAGES = {
  '(every page)': ['/api/v1/info'],
  overview: ['/api/v1/reports/activity', '/api/v1/count?denied=true', '/api/v1/alerts/count', '/status'],
  explore: ['/api/v1/events?limit=100', '/api/v1/histogram'],
  denials: ['/api/v1/reports/denials'],
  rbac: ['/api/v1/reports/activity?limit=25', `/api/v1/reports/rbac?user=${encodeURIComponent(topUser)}`],
  security: ['/api/v1/alerts'],
  latency: ['/api/v1/reports/latency'],
  history: ['/api/v1/reports/history?object=namespaces/feature-x-preview'],
  policy: [],
};

const rows = [];
let ok = true;
const baseline = [];
for (let i = 0; i < rounds; i++) baseline.push((await timed('/healthz')).ms);
rows.push({ page: '(baseline) /healthz', call: '', 'p95 ms': p95(baseline).toFixed(1), ratio: '1.0' });
for (const [page, calls] of Object.entries(PAGES)) {
  for (const call of calls) {
    await timed(call); // the first call warms DuckDB's caches, as a user's first look does
    const ms = [];
    for (let i = 0; i < rounds; i++) ms.push((await timed(call)).ms);
    const q = p95(ms);
    ok &&= q <= 300;
    rows.push({ page, call, 'p95 ms': q.toFixed(1), ratio: (q / p95(baseline)).toFixed(1) });
  }
}

// The first page load: the index and the assets it names.
const index = await fetch(`${base}/`, { headers: { 'accept-encoding': 'gzip' } });
const html = await index.text();
let pageBytes = Number(index.headers.get('content-length') ?? html.length);
for (const m of html.matchAll(/(?:src|href)="\/?(assets\/[^"]+)"/g))
  pageBytes += (await timed(`/${m[1]}`)).bytes;
serve.kill('SIGTERM');

console.log(
  `bench:api — kaudit serve over ${events.toLocaleString('en-US')} events, ${rounds} calls per endpoint\n`,
);
console.log(table(rows));
const kb = pageBytes / 1024;
console.log(`\nfirst page load: ${kb.toFixed(0)} KB as sent (gzip)`);
console.log(`${verdict(ok)}: every page's API calls <= 300 ms at p95`);
console.log(`${verdict(kb <= 500)}: first page load <= 500 KB`);
