/**
 * Live detection in the agent: every stored event goes through the rules after the store took it,
 * alerts land in the alert log and at a webhook (which first answers 503: retried, delivered once
 * it recovers), the same alerts as `kaudit detect` over the file, and re-reading the file after
 * its checkpoints are lost raises nothing twice.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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
import { ndjson } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const dir = tempDir('kaudit-agent-detect-');
const log = join(dir, 'logs', 'audit.log');
const alertFile = join(dir, 'data', 'alerts.ndjson');
let agent: AgentProcess | undefined;
let server: Server;
let url = '';
const received: Record<string, unknown>[] = [];
let refuse = 3;
let expected: string[] = [];

const key = (a: Record<string, unknown>) => `${(a.rule as { id: string }).id} ${String(a.auditID)}`;
const logged = () => (existsSync(alertFile) ? ndjson(readFileSync(alertFile, 'utf8')) : []);

beforeAll(async () => {
  await buildOnce();
  mkdirSync(join(dir, 'logs'));
  const sim = await kaudit([
    'simulate',
    '--out',
    log,
    '--scenario',
    'normal,attack',
    '--duration',
    '30m',
    '--rate',
    '4',
    '--seed',
    '3',
  ]);
  expect(sim.code, sim.stderr).toBe(0);
  const d = await kaudit(['detect', '--json', log]);
  expect(d.code, d.stderr).toBe(0);
  expected = ndjson(d.stdout).map(key).sort();
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      if (refuse > 0) {
        refuse--;
        res.writeHead(503).end('not yet');
        return;
      }
      received.push(...(JSON.parse(body) as Record<string, unknown>[]));
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`;
}, 180_000);

afterAll(async () => {
  agent?.child.kill('SIGTERM');
  await agent?.exited;
  await new Promise((r) => server.close(r));
});

function config(): string {
  return writeConfig(
    dir,
    '  - type: file\n    path: logs/audit.log\n',
    `detect:\n  max_alerts_per_rule_per_minute: 100000\n  outputs:\n    - type: webhook\n      url: ${url}\n`,
  );
}

describe('the agent runs the rules on what it stores', () => {
  it('raises the alerts kaudit detect raises over the file, and delivers them through a failing webhook', async () => {
    expect(expected.length).toBeGreaterThan(20);
    agent = await startAgent(config());
    await waitFor('the alerts', () => logged().length >= expected.length, 120_000);
    expect(logged().map(key).sort()).toEqual(expected);
    await waitFor('the webhook to get every alert', () => received.length >= expected.length, 60_000);
    expect(received.map(key).sort()).toEqual(expected);
    expect(refuse).toBe(0);
    const s = (await status(agent.admin)) as unknown as {
      detection: { rules: number; alerts: number; outputs: { sent: number; failures: number }[] };
    };
    expect(s.detection.rules).toBeGreaterThanOrEqual(40);
    expect(s.detection.alerts).toBe(expected.length);
    expect(s.detection.outputs[0]).toMatchObject({ sent: expected.length, failures: 3 });
    const text = await kaudit(['status', '--data', join(dir, 'data')]);
    expect(text.stdout).toContain(`Alerts: ${expected.length}`);
    const metrics = await (
      await fetch(`${agent.admin}/metrics`, { headers: { authorization: `Bearer ${agent.token}` } })
    ).text();
    expect(metrics).toContain(`kaudit_detection_alerts_total ${expected.length}`);
    expect(metrics).toContain(`kaudit_alert_output_sent_total{output="webhook"} ${expected.length}`);
    // kaudit alerts reads them while the agent runs
    const listed = await kaudit(['alerts', '--data', join(dir, 'data'), '--json', '--limit', '100000']);
    expect(ndjson(listed.stdout).map(key).sort()).toEqual(expected);
  }, 240_000);

  it('raises nothing twice when the file is read again from the start after a restart', async () => {
    agent?.child.kill('SIGTERM');
    expect(await agent?.exited).toBe(0);
    rmSync(join(dir, 'run'), { recursive: true, force: true });
    const before = logged().length;
    const sent = received.length;
    agent = await startAgent(config());
    const rows = (await status(agent.admin)).store.rows ?? 0;
    expect(rows).toBeGreaterThan(5000);
    await waitFor(
      'the whole file read again',
      async () => ((await status(agent?.admin ?? '')).pipeline.duplicates ?? 0) >= rows,
      120_000,
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(logged()).toHaveLength(before);
    expect(received).toHaveLength(sent);
  }, 240_000);
});
