// npm run bench:detect — the whole built-in rule pack over simulated traffic (every scenario), on
// one core, against a baseline measured in the same run: the bare decode pass (JSON.parse of each
// line), which every detection pays first. Target: decode + the pack >= 100,000 events/s.
// BENCH_DETECT_EVENTS changes the size (default 300,000); runs alternate, best of BENCH_ROUNDS (3).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { simulatedLog, table, verdict } from './lib.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = (p) => pathToFileURL(join(root, 'dist', p)).href;
const _bin = join(root, 'dist/cli/bin.js');
const _out = join(root, 'bench/out');
const events = Number(process.env.BENCH_DETECT_EVENTS ?? 300_000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const seed = 20261204;
const log = await simulatedLog(root, 'detect', events, seed);

const lines = readFileSync(log, 'utf8')
  .split('\n')
  .filter((l) => l !== '');
const { builtinRules } = await import(dist('detect/builtin.js'));
const { DetectionEngine } = await import(dist('detect/engine.js'));
const rules = builtinRules();

function decodeOnly() {
  const start = performance.now();
  let n = 0;
  for (const line of lines) n += JSON.parse(line).verb.length > 0 ? 1 : 0;
  return { seconds: (performance.now() - start) / 1000, n };
}

function decodeAndDetect() {
  // A fresh engine each round: the stateful rules start empty, as after an agent start.
  const engine = new DetectionEngine(rules);
  const meta = { cluster: 'bench' };
  const start = performance.now();
  let alerts = 0;
  for (const line of lines) alerts += engine.process(JSON.parse(line), meta).length;
  return { seconds: (performance.now() - start) / 1000, alerts };
}

let best = { decode: Number.POSITIVE_INFINITY, detect: Number.POSITIVE_INFINITY, alerts: 0 };
for (let r = 0; r < rounds; r++) {
  const d = decodeOnly();
  const e = decodeAndDetect();
  best = {
    decode: Math.min(best.decode, d.seconds),
    detect: Math.min(best.detect, e.seconds),
    alerts: e.alerts,
  };
}
const rate = (s) => Math.round(lines.length / s);
const detectRate = rate(best.detect);
const engineOnly = Math.round(lines.length / Math.max(best.detect - best.decode, 1e-9));
console.log(
  `bench:detect — ${rules.length} built-in rules, ${lines.length} events, best of ${rounds}, one core\n`,
);
console.log(
  table([
    {
      pass: 'decode only (baseline)',
      seconds: best.decode.toFixed(2),
      'events/s': rate(best.decode).toLocaleString('en-US'),
    },
    {
      pass: 'decode + rule pack',
      seconds: best.detect.toFixed(2),
      'events/s': detectRate.toLocaleString('en-US'),
    },
  ]),
);
console.log(`\nratio (decode + pack) / decode: ${(best.detect / best.decode).toFixed(2)}x the time`);
console.log(
  `the rule pack alone: ${engineOnly.toLocaleString('en-US')} events/s; alerts raised: ${best.alerts}`,
);
console.log(
  `${verdict(detectRate >= 100_000)}: decode + pack ${detectRate.toLocaleString('en-US')} events/s (target >= 100,000)`,
);
