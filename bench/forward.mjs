// npm run bench:forward — each HTTP sink (http, datadog, elasticsearch, splunk, loki, otlp) sending
// 200,000 simulated events to a local endpoint that accepts everything, through the same
// createForwarder the agent uses (encode, gzip, POST; two batches in flight). Baseline in the same
// run: the bare pass of building the stored batches (what every sink receives). Target: >= 50,000
// events/s for http and datadog. BENCH_FORWARD_EVENTS changes the size; BENCH_FORWARD_SINKS=http,datadog
// runs only those (e.g. under node --cpu-prof).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { simulatedLog, table, verdict } from './lib.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = (p) => pathToFileURL(join(root, 'dist', p)).href;
const _bin = join(root, 'dist/cli/bin.js');
const _out = join(root, 'bench/out');
const events = Number(process.env.BENCH_FORWARD_EVENTS ?? 200_000);
const seed = 20261205;
const log = await simulatedLog(root, 'forward', events, seed);
const lines = readFileSync(log, 'utf8')
  .split('\n')
  .filter((l) => l !== '');

let received = 0;
const server = createServer((req, res) => {
  req.on('data', (c) => {
    received += c.length;
  });
  req.on('end', () => {
    // Elasticsearch's _bulk answer without errors; every other platform reads only the status.
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"errors":false,"items":[]}');
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}`;

const { createForwarder } = await import(dist('forward/sink-types.js'));
const log0 = { debug() {}, info() {}, warn() {}, error() {} };
const deps = { log: log0, env: { BENCH_KEY: 'x'.repeat(32) }, pathOf: (p) => p, deadLetter: async () => {} };
const SINKS = {
  http: { type: 'http', url: `${base}/in` },
  datadog: {
    type: 'datadog',
    url: `${base}/api/v2/logs`,
    api_key: { env: 'BENCH_KEY' },
    site: 'datadoghq.com',
    tags: [],
  },
  elasticsearch: { type: 'elasticsearch', url: base },
  splunk: { type: 'splunk', url: base, token: { env: 'BENCH_KEY' } },
  loki: { type: 'loki', url: base },
  otlp: { type: 'otlp', url: base, headers: {} },
};

const BATCH = 1000;
function batches() {
  const out = [];
  for (let i = 0; i < lines.length; i += BATCH)
    out.push({ cluster: 'bench', events: lines.slice(i, i + BATCH).map((l) => Buffer.from(l)) });
  return out;
}

const t0 = performance.now();
const all = batches();
const baselineS = (performance.now() - t0) / 1000;
const rows = [
  {
    sink: '(baseline) build the batches',
    seconds: baselineS.toFixed(2),
    'events/s': Math.round(lines.length / baselineS).toLocaleString('en-US'),
  },
];
const rates = {};
const only = process.env.BENCH_FORWARD_SINKS?.split(',');
for (const [name, cfg] of Object.entries(SINKS)) {
  if (only !== undefined && !only.includes(name)) continue;
  const { forwardSchema } = await import(dist('forward/sink-types.js'));
  const sink = createForwarder(forwardSchema.parse(cfg), deps);
  const start = performance.now();
  // Two batches in flight, as the agent's store follower keeps them: the next one is encoded and
  // compressed while the request before it is on its way.
  let previous = Promise.resolve();
  for (const b of all) {
    const current = sink.export(b);
    await previous;
    previous = current;
  }
  await previous;
  const s = (performance.now() - start) / 1000;
  await sink.shutdown();
  const st = sink.stats();
  rates[name] = lines.length / s;
  rows.push({
    sink: name,
    seconds: s.toFixed(2),
    'events/s': Math.round(rates[name]).toLocaleString('en-US'),
    sent: st.sentEvents,
  });
}
server.close();
console.log(
  `bench:forward — ${lines.length.toLocaleString('en-US')} events in batches of ${BATCH}, one sink at a time, to a local endpoint\n`,
);
console.log(table(rows));
console.log(`\n${(received / 2 ** 20).toFixed(0)} MiB received in all`);
for (const name of ['http', 'datadog'].filter((n) => rates[n] !== undefined))
  console.log(
    `${verdict(rates[name] >= 50_000)}: ${name} ${Math.round(rates[name]).toLocaleString('en-US')} events/s (target >= 50,000)`,
  );
