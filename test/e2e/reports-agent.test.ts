/**
 * Reports while `kaudit agent` holds the DuckDB file go through its API and print what they print on
 * the stopped store; `kaudit ingest` meanwhile sends its events through the agent.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentProcess,
  buildOnce,
  kaudit,
  startAgent,
  status,
  waitFor,
  writeConfig,
} from '../fixtures/agent/harness.js';
import { THIRD_PARTY } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const dir = tempDir('kaudit-reports-agent-');
let agent: AgentProcess | undefined;
const REPORTS = [
  ['report', 'latency', '--json'],
  ['report', 'activity', '--json'],
  ['report', 'denials', '--json'],
  ['history', 'namespaces/feature-x-preview', '--json'],
  ['search', '--decision', 'forbid', '--json', '--limit', '500'],
];

beforeAll(async () => {
  await buildOnce();
  mkdirSync(join(dir, 'logs'));
  const log = join(dir, 'logs', 'audit.log');
  const sim = await kaudit([
    'simulate',
    '--out',
    log,
    '--count',
    '8000',
    '--seed',
    '9',
    '--start',
    '2026-01-15T09:00:00Z',
  ]);
  expect(sim.code, sim.stderr).toBe(0);
  agent = await startAgent(writeConfig(dir, '  - type: file\n    path: logs/audit.log\n'));
  await waitFor(
    'every event stored',
    async () => ((await status(agent?.admin ?? '')).store.rows ?? 0) >= 8000,
  );
}, 180_000);

afterAll(async () => {
  agent?.child.kill('SIGTERM');
  await agent?.exited;
});

describe('reports while the agent holds the store', () => {
  it('give the same output through the agent as on the stopped store', async () => {
    const data = join(dir, 'data');
    const through: string[] = [];
    for (const args of REPORTS) {
      const r = await kaudit([...args, '--data', data]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      through.push(r.stdout);
    }
    // ingest goes through the agent too, and stores what is new.
    copyFileSync(join(THIRD_PARTY, 'samples/audit2rbac-demo.log'), join(dir, 'demo.log'));
    const ing = await kaudit([
      'ingest',
      '--data',
      data,
      '--cluster',
      'demo',
      '--no-progress',
      '--json',
      join(dir, 'demo.log'),
    ]);
    expect(ing.code, ing.stderr).toBe(0);
    expect(JSON.parse(ing.stdout)).toMatchObject({ stored: 37 });
    agent?.child.kill('SIGTERM');
    expect(await agent?.exited).toBe(0);
    agent = undefined;
    for (const [i, args] of REPORTS.entries()) {
      const r = await kaudit([...args, '--data', data, '--cluster', 'e2e']);
      expect(r.code).toBe(0);
      expect(r.stdout, args.join(' ')).toBe(through[i]);
    }
  });
});
