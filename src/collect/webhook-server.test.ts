import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { auditEvent } from '../../test/fixtures/agent/make-events.js';
import { DEFAULT_PREPARE_OPTIONS, prepareLine, prepareValue } from '../model/prepare.js';
import { parseAgentConfig, type WebhookSourceConfig } from './agent-config.js';
import { memoryLogger } from './logger.js';
import type { PipelineItem } from './pipeline.js';
import { type WebhookLimits, WebhookServer } from './webhook-source.js';

const config: WebhookSourceConfig = {
  type: 'webhook',
  name: 'hook',
  listen: { host: '127.0.0.1', port: 0 },
  path: '/audit',
  source: 'kubernetes.audit',
  service: 'audit',
  maxBodyBytes: 64 * 1024,
};

const batch = JSON.stringify({
  kind: 'EventList',
  apiVersion: 'audit.k8s.io/v1',
  items: [auditEvent('s-1'), auditEvent('s-2')],
});

const servers: WebhookServer[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => s.stop(0)));
});

async function serve(
  limits: Partial<WebhookLimits>,
  cfg: WebhookSourceConfig = config,
): Promise<{ server: WebhookServer; port: number }> {
  const server = new WebhookServer(
    cfg,
    {
      options: DEFAULT_PREPARE_OPTIONS,
      line: (b) => prepareLine(b, DEFAULT_PREPARE_OPTIONS),
      value: (v) => prepareValue(v, DEFAULT_PREPARE_OPTIONS),
    },
    (item: PipelineItem) => {
      setTimeout(() => item.done?.(), 1);
      return true;
    },
    memoryLogger(),
    limits,
  );
  servers.push(server);
  const address: AddressInfo = await server.start();
  return { server, port: address.port };
}

/** A raw connection; `sends` is written at once and nothing after it. */
async function connect(port: number, sends = ''): Promise<{ socket: net.Socket; closed: Promise<string> }> {
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  let received = '';
  socket.on('data', (d: Buffer) => {
    received += d.toString();
  });
  socket.on('error', () => undefined);
  const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(received)));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  if (sends !== '') socket.write(sends);
  return { socket, closed };
}

const halfSent = (port: number) =>
  connect(
    port,
    `POST /audit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000\r\n\r\n{"kind":"EventList","items":[`,
  );

function post(port: number, body: string, agent?: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/audit',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('WebhookServer with stalled and idle clients (real sockets)', () => {
  it('stores a batch while 100 idle and 50 half-sent connections are open, then lets them all go', async () => {
    const { server, port } = await serve({ headersTimeoutMs: 500, bodyIdleMs: 500 });
    const idle = await Promise.all(Array.from({ length: 100 }, () => connect(port)));
    const stalled = await Promise.all(Array.from({ length: 50 }, () => halfSent(port)));
    expect(await post(port, batch)).toBe(200);
    expect(server.handler.status().events).toBe(2);
    // Idle connections end at the headers timeout; stalled bodies get 408 and are closed.
    await Promise.all(idle.map((c) => c.closed));
    for (const text of await Promise.all(stalled.map((c) => c.closed)))
      expect(text).toMatch(/^HTTP\/1\.1 408/);
    expect(server.handler.bufferedBytes).toBe(0);
  });

  it('stop ends with an idle keep-alive connection and a stalled body open, without waiting for them', async () => {
    const { server, port } = await serve({
      bodyIdleMs: 600_000,
      headersTimeoutMs: 600_000,
      requestTimeoutMs: 600_000,
    });
    const agent = new http.Agent({ keepAlive: true });
    expect(await post(port, batch, agent)).toBe(200);
    const kept = Object.values(agent.freeSockets).flat()[0];
    expect(kept).toBeDefined();
    const keptClosed = new Promise<void>((resolve) => kept?.once('close', () => resolve()));
    const stalled = await halfSent(port);
    const silent = await connect(port);
    await server.stop(600_000);
    await keptClosed;
    expect(await stalled.closed).toMatch(/^HTTP\/1\.1 503/);
    await silent.closed;
    agent.destroy();
  });

  it('takes max_connections and headers_timeout_ms from the agent config', async () => {
    const { config: agent, diagnostics } = parseAgentConfig(
      'cluster: c\nrun_path: /r\ndata: /d\nlogs:\n  - type: webhook\n    listen: 127.0.0.1:0\n    max_connections: 3\n    headers_timeout_ms: 200\n',
      { file: 'k.yaml' },
    );
    expect(diagnostics).toEqual([]);
    const cfg = agent?.logs[0];
    if (cfg?.type !== 'webhook') throw new Error('no webhook source');
    const { port } = await serve({}, cfg);
    const open = await Promise.all(Array.from({ length: 3 }, () => connect(port)));
    const fourth = await connect(
      port,
      `POST /audit HTTP/1.1\r\nHost: x\r\nContent-Length: ${batch.length}\r\n\r\n${batch}`,
    );
    expect(await fourth.closed).toBe('');
    // Silent connections are let go at the configured headers timeout (the default is 10 s).
    await Promise.all(open.map((c) => c.closed));
  });

  it('refuses connections beyond maxConnections', async () => {
    const { port } = await serve({ maxConnections: 5 });
    await Promise.all(Array.from({ length: 5 }, () => connect(port)));
    const sixth = await connect(
      port,
      `POST /audit HTTP/1.1\r\nHost: x\r\nContent-Length: ${batch.length}\r\n\r\n${batch}`,
    );
    expect(await sixth.closed).toBe('');
  });
});
