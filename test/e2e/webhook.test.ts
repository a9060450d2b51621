import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentProcess,
  buildOnce,
  kaudit,
  makeCerts,
  startAgent,
  status,
  type TestCerts,
  tempDir,
  waitFor,
  writeConfig,
} from '../fixtures/agent/harness.js';
import { auditEvent, auditLines } from '../fixtures/agent/make-events.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function send(
  url: string,
  body: Buffer | string,
  opts: { ca?: string; cert?: string; key?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const options: https.RequestOptions = {
      method: 'POST',
      host: u.hostname,
      port: u.port,
      path: u.pathname,
      headers: {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        ...opts.headers,
      },
    };
    if (opts.ca) options.ca = readFileSync(opts.ca);
    if (opts.cert) options.cert = readFileSync(opts.cert);
    if (opts.key) options.key = readFileSync(opts.key);
    const req = (u.protocol === 'https:' ? https : http).request(options, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function eventList(prefix: string, n: number): string {
  return JSON.stringify({
    kind: 'EventList',
    apiVersion: 'audit.k8s.io/v1',
    items: Array.from({ length: n }, (_, i) => auditEvent(`${prefix}-${i}`)),
  });
}

async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function countIds(agent: AgentProcess, prefix: string): Promise<number> {
  const res = await fetch(`${agent.admin}/api/v1/store/sql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${agent.token}` },
    body: JSON.stringify({ text: `SELECT count(*) AS n FROM events WHERE audit_id LIKE '${prefix}-%'` }),
  });
  const body = (await res.json()) as { rows: { n: unknown }[] };
  const n = body.rows[0]?.n;
  return Number(typeof n === 'object' && n !== null ? (n as { $bigint: string }).$bigint : n);
}

describe('webhook receiver (real sockets)', () => {
  const dir = tempDir('webhook');
  let certs: TestCerts;
  let agent: AgentProcess;
  let mtlsUrl: string;
  let tokenUrl: string;

  beforeAll(async () => {
    await buildOnce();
    certs = await makeCerts(dir);
    writeFileSync(join(dir, 'token'), 's3cret-token\n');
    const [p1, p2] = [await freePort(), await freePort()];
    mtlsUrl = `https://127.0.0.1:${p1}/audit`;
    tokenUrl = `http://127.0.0.1:${p2}/audit`;
    const config = writeConfig(
      dir,
      `  - type: webhook
    name: mtls
    listen: 127.0.0.1:${p1}
    path: /audit
    tls: {cert: ${certs.serverCert}, key: ${certs.serverKey}, client_ca: ${certs.ca}}
  - type: webhook
    name: token
    listen: 127.0.0.1:${p2}
    path: /audit
    token_file: token
`,
    );
    agent = await startAgent(config);
  });
  afterAll(async () => {
    if (process.env.DEBUG_AGENT) console.log(agent?.stderr());
    agent?.child.kill('SIGTERM');
    await agent?.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores EventList batches sent over HTTPS with a client certificate, answering 200 once stored', async () => {
    const tls = { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
    for (let b = 0; b < 5; b++) {
      const r = await send(mtlsUrl, eventList(`m${b}`, 100), tls);
      expect(r.status).toBe(200);
      // 200 means stored: the rows are queryable at once.
      expect(await countIds(agent, `m${b}`)).toBe(100);
    }
  });

  it('answers 401 without a client certificate or with one from another CA', async () => {
    const none = await send(mtlsUrl, eventList('x', 1), { ca: certs.ca });
    expect(none.status).toBe(401);
    const rogue = await send(mtlsUrl, eventList('x', 1), {
      ca: certs.ca,
      cert: certs.rogueCert,
      key: certs.rogueKey,
    });
    expect(rogue.status).toBe(401);
    expect(await countIds(agent, 'x')).toBe(0);
  });

  it('answers 401 to a wrong bearer token and 200 to the right one', async () => {
    const wrong = await send(tokenUrl, eventList('t', 3), { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    const right = await send(tokenUrl, eventList('t', 3), {
      headers: { authorization: 'Bearer s3cret-token' },
    });
    expect(right.status).toBe(200);
    expect(await countIds(agent, 't')).toBe(3);
  });

  it('answers 400 to garbage, naming the problem, and 413 to a 20 MiB body', async () => {
    const auth = { authorization: 'Bearer s3cret-token' };
    const garbage = await send(tokenUrl, 'GARBAGE{', { headers: auth });
    expect(garbage.status).toBe(400);
    expect(JSON.parse(garbage.body).error).toMatch(/not JSON/);
    const big = await send(tokenUrl, Buffer.alloc(20 * 1024 * 1024, 0x20), { headers: auth });
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body).error).toMatch(/over the limit of 12582912 bytes/);
  });

  it('stores 99 good items of a batch with one bad one, dead-letters that one by index, answers 200', async () => {
    const auth = { authorization: 'Bearer s3cret-token' };
    const list = JSON.parse(eventList('part', 100)) as { items: unknown[] };
    list.items[50] = { kind: 'Event', apiVersion: 'audit.k8s.io/v1', auditID: 'part-50', verb: 7 };
    const res = await send(tokenUrl, JSON.stringify(list), { headers: auth });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ stored: 99 });
    expect(await countIds(agent, 'part')).toBe(99);
    const dead = readFileSync(join(dir, 'data', 'dead-letter.ndjson'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('EventList item 50'));
    expect(dead).toHaveLength(1);
  });

  it('answers 200, not 500, to an event whose requestObject is nested 5000 deep', async () => {
    const auth = { authorization: 'Bearer s3cret-token' };
    const deep = `${'{"a":'.repeat(4999)}{}${'}'.repeat(4999)}`;
    const body = eventList('deep', 1).replace('"verb"', `"requestObject":${deep},"verb"`);
    const res = await send(tokenUrl, body, { headers: auth });
    expect(res.status).toBe(200);
    expect(await countIds(agent, 'deep')).toBe(1);
  });

  it('counts answers per source in status', async () => {
    const s = await status(agent.admin);
    const mtls = s.logs.find((l) => l.name === 'mtls');
    expect(mtls).toMatchObject({ type: 'webhook', status: 'OK', events: 500, responses: { 200: 5, 401: 2 } });
    const st = await kaudit(['status', '--admin', agent.admin]);
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/Type: webhook\n\s+Listen: 127\.0\.0\.1:\d+\/audit/);
  });
});

describe('webhook receiver with a full pipeline', () => {
  const dir = tempDir('webhook-full');
  let agent: AgentProcess;
  let url: string;

  beforeAll(async () => {
    await buildOnce();
    const port = await freePort();
    url = `http://127.0.0.1:${port}/audit`;
    // A queue of one event flushed every 3 s: the second request finds it full.
    const config = writeConfig(
      dir,
      `  - type: webhook\n    listen: 127.0.0.1:${port}\n`,
      'pipeline: {queue_events: 1, flush_interval_ms: 3000}\n',
    );
    agent = await startAgent(config);
  });
  afterAll(async () => {
    agent?.child.kill('SIGTERM');
    await agent?.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 429 with Retry-After, and stores only what it answered 200 to', async () => {
    const first = send(url, eventList('q1', 1));
    await new Promise((r) => setTimeout(r, 300));
    const second = await send(url, eventList('q2', 1));
    expect(second.status).toBe(429);
    expect(second.headers['retry-after']).toBe('1');
    expect((await first).status).toBe(200);
    expect(await countIds(agent, 'q1')).toBe(1);
    expect(await countIds(agent, 'q2')).toBe(0);
  });
});

describe('webhook receiver while the store fails', () => {
  const dir = tempDir('webhook-down');
  let agent: AgentProcess;
  let url: string;
  const blockers: string[] = [];

  beforeAll(async () => {
    await buildOnce();
    const port = await freePort();
    url = `http://127.0.0.1:${port}/audit`;
    mkdirSync(join(dir, 'logs'));
    writeFileSync(join(dir, 'logs', 'audit.log'), '');
    const config = writeConfig(
      dir,
      `  - type: webhook\n    listen: 127.0.0.1:${port}\n  - type: file\n    path: logs/audit.log\n`,
    );
    agent = await startAgent(config);
  });
  afterAll(async () => {
    agent?.child.kill('SIGTERM');
    await agent?.exited;
    for (const p of blockers) rmSync(p, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 and stores nothing it did not acknowledge; file events wait and arrive once it recovers', async () => {
    // The DuckDB store stages each batch in .kaudit-staging-<pid>-<n>.tsv inside its own directory
    // kaudit-staging-<pid>-<id>, in /dev/shm when it can, else in the data directory; directories in
    // the way make every write fail, as a full disk would.
    const pid = agent.child.pid ?? 0;
    const stagingDirs = [join(dir, 'data'), '/dev/shm']
      .filter((base) => existsSync(base))
      .flatMap((base) =>
        readdirSync(base)
          .filter((n) => n.startsWith(`kaudit-staging-${pid}-`))
          .map((n) => join(base, n)),
      );
    expect(stagingDirs).toHaveLength(1);
    for (const stagingDir of stagingDirs) {
      for (let n = 0; n < 500; n++) {
        const p = join(stagingDir, `.kaudit-staging-${pid}-${n}.tsv`);
        mkdirSync(p);
        blockers.push(p);
      }
    }
    const refused = await send(url, eventList('down', 4));
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    appendFileSync(join(dir, 'logs', 'audit.log'), auditLines('file', 0, 50));
    await waitFor('the file source to read', async () => {
      const s = await status(agent.admin);
      return (s.logs.find((l) => l.type === 'file')?.bytesRead as number) > 0;
    });
    const unhealthy = await fetch(`${agent.admin}/healthz`);
    expect(unhealthy.status).toBe(503);
    const st = await kaudit(['status', '--admin', agent.admin]);
    expect(st.code).toBe(1);
    expect(st.stdout).toMatch(/Status: Error \(.*EISDIR/);
    expect(st.stdout).toMatch(/Checkpoints: OK {3}Last commit: /);

    for (const p of blockers) rmSync(p, { recursive: true, force: true });
    await waitFor('file events stored after recovery', async () => (await countIds(agent, 'file')) === 50);
    const accepted = await send(url, eventList('up', 4));
    expect(accepted.status).toBe(200);
    expect(await countIds(agent, 'up')).toBe(4);
    expect(await countIds(agent, 'down')).toBe(0);
    expect((await fetch(`${agent.admin}/healthz`)).status).toBe(200);
  });
});

describe('webhook receiver with idle and stalled clients', () => {
  const dir = tempDir('webhook-idle');
  let agent: AgentProcess;
  let port: number;
  const sockets: net.Socket[] = [];

  beforeAll(async () => {
    await buildOnce();
    port = await freePort();
    agent = await startAgent(writeConfig(dir, `  - type: webhook\n    listen: 127.0.0.1:${port}\n`));
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    agent?.child.kill('SIGKILL');
    await agent?.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores batches while 200 connections idle or stall, and SIGTERM ends the agent without waiting for them', async () => {
    const open = (sends: string) =>
      new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          if (sends !== '') s.write(sends);
          resolve();
        });
        s.on('error', () => undefined);
        sockets.push(s);
      });
    const half =
      'POST /audit HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{"kind":"EventList","items":[';
    await Promise.all(Array.from({ length: 200 }, (_, i) => open(i % 2 === 0 ? '' : half)));
    const res = await send(`http://127.0.0.1:${port}/audit`, eventList('busy', 3));
    expect(res.status).toBe(200);
    expect(await countIds(agent, 'busy')).toBe(3);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });
});
