import { appendFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentProcess,
  buildOnce,
  kaudit,
  startAgent,
  status,
  tempDir,
  waitFor,
  writeConfig,
} from '../fixtures/agent/harness.js';
import { ndjsonAuditIds, PlatformServer } from '../fixtures/forward/platform-server.js';

const dir = tempDir('forward-outage');
const server = new PlatformServer((r) =>
  r.headers['content-type'] === 'application/x-ndjson' ? undefined : 'content-type',
);
let url = '';

beforeAll(async () => {
  url = await server.start();
  await buildOnce();
}, 180_000);
afterAll(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

const idOf = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;

/** Appends events from..to-1 to the audit log, as kube-apiserver writes them. */
function writeEvents(file: string, from: number, to: number): void {
  const lines: string[] = [];
  for (let i = from; i < to; i++)
    lines.push(
      JSON.stringify({
        kind: 'Event',
        apiVersion: 'audit.k8s.io/v1',
        level: 'Metadata',
        auditID: idOf(i),
        stage: 'ResponseComplete',
        requestURI: `/api/v1/namespaces/payments/configmaps/c${i}`,
        verb: 'get',
        user: { username: 'alice', groups: ['devs'] },
        sourceIPs: ['10.0.0.1'],
        objectRef: { resource: 'configmaps', namespace: 'payments', name: `c${i}`, apiVersion: 'v1' },
        responseStatus: { metadata: {}, code: 200 },
        requestReceivedTimestamp: new Date(Date.UTC(2026, 0, 15, 9, 0, 0) + i).toISOString(),
        stageTimestamp: new Date(Date.UTC(2026, 0, 15, 9, 0, 0) + i + 1).toISOString(),
      }),
    );
  appendFileSync(file, `${lines.join('\n')}\n`);
}

/** The auditIDs the platform took, in the order it took them. */
const received = () => ndjsonAuditIds(server);

interface SinkStatus {
  name: string;
  mode: string;
  lagEvents: number;
  sentEvents: number;
}

async function sink(a: AgentProcess): Promise<SinkStatus | undefined> {
  const s = (await status(a.admin)) as unknown as { forward?: SinkStatus[] };
  return s.forward?.[0];
}

describe('kaudit agent forwarding with the store as the buffer', () => {
  it('an endpoint down across a kill -9 and a restart: every stored event arrives, none twice, in order', async () => {
    const logDir = join(dir, 'logs');
    mkdirSync(logDir);
    const log = join(logDir, 'audit.log');
    const config = writeConfig(
      dir,
      '  - type: file\n    path: logs/audit.log\n',
      `forward:\n  - type: http\n    name: ndjson\n    url: ${url}/ingest\n`,
    );
    let agent = await startAgent(config);
    const a1 = agent;
    writeEvents(log, 0, 300);
    await waitFor(
      '300 events forwarded live',
      async () => (await sink(a1))?.lagEvents === 0 && received().length === 300,
    );
    expect((await sink(a1))?.mode).toBe('live');

    // The platform goes down; the agent stores what comes meanwhile and is killed.
    server.down = true;
    writeEvents(log, 300, 800);
    await waitFor('800 stored', async () => (await status(a1.admin)).store.rows === 800);
    agent.child.kill('SIGKILL');
    await agent.exited;

    // Restarted while the platform is still down: the sink resumes from its cursor, from the store.
    agent = await startAgent(config);
    const a2 = agent;
    writeEvents(log, 800, 900);
    await waitFor('900 stored', async () => (await status(a2.admin)).store.rows === 900);
    expect((await sink(a2))?.mode).toBe('catching-up');
    // What it has to send: the 500 stored during the outage and the 100 since, measured each second.
    await waitFor('a lag of 600 events', async () => (await sink(a2))?.lagEvents === 600);
    // The same in /metrics and in `kaudit status`.
    const metrics = await (
      await fetch(`${a2.admin}/metrics`, { headers: { authorization: `Bearer ${a2.token}` } })
    ).text();
    expect(metrics).toContain('kaudit_forward_catching_up{sink="ndjson",type="http"} 1');
    expect(metrics).toContain('kaudit_forward_lag_events{sink="ndjson",type="http"} 600');
    const shown = await kaudit(['status', '--config', config]);
    expect(shown.stdout).toMatch(/Mode: catching-up {3}Behind the store: 600 events, \d+ s/);
    server.down = false;
    await waitFor(
      'every event forwarded',
      async () => received().length >= 900 && (await sink(a2))?.lagEvents === 0,
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; received ${received().length}\n${a2.stderr()}`);
    });
    await waitFor('live again', async () => (await sink(a2))?.mode === 'live');

    const ids = received();
    expect(ids).toHaveLength(900);
    expect(new Set(ids).size).toBe(900);
    expect(ids).toEqual(Array.from({ length: 900 }, (_, i) => idOf(i)));
    expect(server.violations).toEqual([]);

    a2.child.kill('SIGTERM');
    expect(await a2.exited).toBe(0);
    const cursors = JSON.parse(readFileSync(join(dir, 'run', 'forward-cursors.json'), 'utf8')) as {
      sinks: Record<string, { cluster: string }>;
    };
    expect(Object.keys(cursors.sinks)).toEqual(['ndjson']);
    expect(cursors.sinks.ndjson?.cluster).toBe('e2e');
  }, 180_000);
});
