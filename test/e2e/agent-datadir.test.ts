import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentProcess,
  buildOnce,
  startAgent,
  status,
  tempDir,
  waitFor,
  writeConfig,
} from '../fixtures/agent/harness.js';
import { auditEvent, auditLines } from '../fixtures/agent/make-events.js';

async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function checkpointOffset(dir: string): number {
  const file = join(dir, 'run', 'checkpoints.json');
  if (!existsSync(file)) return -1;
  return Number(/"offset":\s*(\d+)/.exec(readFileSync(file, 'utf8'))?.[1] ?? -1);
}

describe('agent whose data directory is replaced while it runs', () => {
  const dir = tempDir('datadir');
  let agent: AgentProcess;
  let port: number;

  beforeAll(async () => {
    await buildOnce();
    port = await freePort();
    mkdirSync(join(dir, 'logs'));
    writeFileSync(join(dir, 'logs', 'audit.log'), auditLines('before', 0, 20));
    agent = await startAgent(
      writeConfig(
        dir,
        `  - type: file\n    path: logs/audit.log\n  - type: webhook\n    listen: 127.0.0.1:${port}\n`,
      ),
    );
  });
  afterAll(async () => {
    agent?.child.kill('SIGKILL');
    await agent?.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops acknowledging: the checkpoint stays, the webhook answers 503, status names the store file', async () => {
    const size = Buffer.byteLength(auditLines('before', 0, 20));
    await waitFor('the first events checkpointed', () => checkpointOffset(dir) === size);
    renameSync(join(dir, 'data'), join(dir, 'data.moved'));
    mkdirSync(join(dir, 'data'));
    appendFileSync(join(dir, 'logs', 'audit.log'), auditLines('after', 0, 20));
    const res = await fetch(`http://127.0.0.1:${port}/audit`, {
      method: 'POST',
      body: JSON.stringify({ kind: 'EventList', items: [auditEvent('hook-1')] }),
    });
    expect(res.status).toBe(503);
    await waitFor(
      'the store error in status',
      async () => (await status(agent.admin)).store.status === 'Error',
    );
    const s = await status(agent.admin);
    expect(JSON.stringify(s.store)).toMatch(/kaudit\.duckdb was gone .*nothing more is acknowledged/);
    // The file source read the new lines, but nothing of them is acknowledged.
    await waitFor('the new lines offered and refused', async () => {
      const p = (await status(agent.admin)).pipeline;
      return (p.queuedEvents ?? 0) >= 20 && (p.storeErrors ?? 0) >= 2;
    });
    expect(checkpointOffset(dir)).toBe(size);
  });
});
