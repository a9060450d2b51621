// Keeps the dependency direction of STYLE.md true:
// model <- policy <- {collect, store, analyze, detect, simulate} <- {server, cli}.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const rank = {
  model: 0,
  policy: 1,
  collect: 2,
  store: 2,
  analyze: 2,
  detect: 2,
  simulate: 2,
  forward: 2,
  setup: 2,
  server: 3,
  cli: 4,
};
// Same-tier packages that may use each other (the pipeline writes to a Store).
const allowed = new Set([
  'collect->store',
  'collect->detect',
  'forward->collect',
  'forward->detect',
  // Forwarders follow the store from their cursors (forward/store-follower.ts).
  'forward->store',
  'analyze->store',
  'detect->store',
  'server->cli',
]);

const root = resolve('src');
const problems = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) check(p);
  }
}
function layerOf(file) {
  return relative(root, file).split('/')[0];
}
function check(file) {
  const from = layerOf(file);
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/from\s+'(\.[^']+)'/g)) {
    const target = resolve(dirname(file), m[1]);
    const to = layerOf(target);
    if (to === from || !(to in rank) || !(from in rank)) continue;
    if (rank[to] > rank[from] || (rank[to] === rank[from] && !allowed.has(`${from}->${to}`))) {
      problems.push(`${relative('.', file)}: imports ${m[1]} (${from} must not depend on ${to})`);
    }
  }
}
walk(root);
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
