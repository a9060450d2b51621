import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseAgentConfig } from '../../src/collect/agent-config.js';
import { type AgentProcess, buildOnce, kaudit, startAgent, tempDir } from '../fixtures/agent/harness.js';
import { auditEvent } from '../fixtures/agent/make-events.js';
import { THIRD_PARTY } from '../helpers/cli.js';

interface Kubeconfig {
  clusters: {
    cluster: { server: string; 'certificate-authority'?: string; 'certificate-authority-data'?: string };
  }[];
  users: {
    user: {
      'client-certificate'?: string;
      'client-key'?: string;
      'client-certificate-data'?: string;
      'client-key-data'?: string;
    };
  }[];
}

/** What kube-apiserver's webhook backend does with the kubeconfig: the server URL, its CA and the client pair. */
function clientOf(kubeconfig: string): { url: string; ca: Buffer; cert: Buffer; key: Buffer } {
  const kc = parse(kubeconfig) as Kubeconfig;
  const cluster = kc.clusters[0]?.cluster;
  const user = kc.users[0]?.user;
  if (!cluster || !user) throw new Error('kubeconfig without cluster or user');
  const pick = (data: string | undefined, file: string | undefined) =>
    data !== undefined ? Buffer.from(data, 'base64') : readFileSync(file ?? '');
  return {
    url: cluster.server,
    ca: pick(cluster['certificate-authority-data'], cluster['certificate-authority']),
    cert: pick(user['client-certificate-data'], user['client-certificate']),
    key: pick(user['client-key-data'], user['client-key']),
  };
}

function post(url: string, body: string, tls: https.RequestOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      { ...tls, method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

const eventList = (prefix: string, n: number) =>
  JSON.stringify({
    kind: 'EventList',
    apiVersion: 'audit.k8s.io/v1',
    items: Array.from({ length: n }, (_, i) => auditEvent(`${prefix}-${i}`)),
  });

describe('setup certs + setup webhook + the agent webhook source, end to end', () => {
  const dir = tempDir('setup-webhook');
  const certs = join(dir, 'certs');
  const rogue = join(dir, 'rogue');
  let agent: AgentProcess;
  let kubeconfig: string;
  let embedded: string;

  beforeAll(async () => {
    await buildOnce();
    const port = await freePort();
    const url = `https://localhost:${port}/audit`;
    const made = await kaudit([
      'setup',
      'certs',
      '--out-dir',
      certs,
      '--server-name',
      'localhost',
      '--days',
      '2',
    ]);
    expect(made.code, made.stderr).toBe(0);
    expect((await kaudit(['setup', 'certs', '--out-dir', rogue, '--days', '2'])).code).toBe(0);

    const common = ['setup', 'webhook', '--url', url, '--ca-file', join(certs, 'ca.crt')];
    const client = ['--client-cert', join(certs, 'client.crt'), '--client-key', join(certs, 'client.key')];
    const receiver = [
      '--receiver-cert',
      join(certs, 'server.crt'),
      '--receiver-key',
      join(certs, 'server.key'),
      '--receiver-client-ca',
      join(certs, 'ca.crt'),
      '--listen',
      `127.0.0.1:${port}`,
    ];
    const r = await kaudit([
      ...common,
      ...client,
      ...receiver,
      '--kubeconfig-out',
      join(dir, 'webhook.kubeconfig'),
      '--source-out',
      join(dir, 'source.yaml'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    kubeconfig = readFileSync(join(dir, 'webhook.kubeconfig'), 'utf8');
    const e = await kaudit([...common, ...client, ...receiver, '--embed']);
    expect(e.code, e.stderr).toBe(0);
    embedded = e.stdout.split('---\n')[0] ?? '';

    // The agent config: the generated source as the logs: of an otherwise minimal kaudit.yaml.
    const source = readFileSync(join(dir, 'source.yaml'), 'utf8');
    const config = join(dir, 'kaudit.yaml');
    writeFileSync(
      config,
      `cluster: e2e\nrun_path: run\ndata: data\nadmin: {listen: "127.0.0.1:0"}\n${source}`,
    );
    expect(
      parseAgentConfig(readFileSync(config, 'utf8'), { file: config, checkFiles: true }).diagnostics,
    ).toEqual([]);
    agent = await startAgent(config);
  });
  afterAll(async () => {
    agent?.child.kill('SIGTERM');
    await agent?.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  const count = async (prefix: string): Promise<number> => {
    const res = await fetch(`${agent.admin}/api/v1/store/sql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${agent.token}` },
      body: JSON.stringify({ text: `SELECT count(*) AS n FROM events WHERE audit_id LIKE '${prefix}-%'` }),
    });
    const n = ((await res.json()) as { rows: { n: unknown }[] }).rows[0]?.n;
    return Number(typeof n === 'object' && n !== null ? (n as { $bigint: string }).$bigint : n);
  };

  it('writes a kubeconfig naming the files, it and the keys readable by their owner only', () => {
    const kc = parse(kubeconfig) as Kubeconfig & { 'current-context': string };
    expect(kc['current-context']).toBe('kaudit');
    expect(kc.users[0]?.user['client-certificate']).toBe(join(certs, 'client.crt'));
    expect(statSync(join(dir, 'webhook.kubeconfig')).mode & 0o777).toBe(0o600);
    expect(statSync(join(certs, 'client.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(certs, 'ca.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'source.yaml'), 'utf8')).toContain(
      'allowed_names:\n        - kube-apiserver',
    );
  });

  it("stores an EventList posted with exactly the kubeconfig's client certificate, checking the server by its CA", async () => {
    for (const [name, kc] of [
      ['files', kubeconfig],
      ['embedded', embedded],
    ] as const) {
      const c = clientOf(kc);
      const status = await post(c.url, eventList(name, 25), { ca: c.ca, cert: c.cert, key: c.key });
      expect(status).toBe(200);
      expect(await count(name)).toBe(25);
    }
  });

  it("kaudit doctor reaches the receiver with kube-apiserver's kubeconfig and through the agent's source", async () => {
    const manifest = join(dir, 'kube-apiserver.yaml');
    writeFileSync(manifest, readFileSync(`${THIRD_PARTY}kubeadm/kube-apiserver-v1.30-stock.yaml`));
    const setup = await kaudit([
      'setup',
      'apiserver',
      '--manifest',
      manifest,
      '--webhook',
      '--webhook-config-file',
      join(dir, 'webhook.kubeconfig'),
    ]);
    expect(setup.code, setup.stderr).toBe(0);
    writeFileSync(manifest, setup.stdout);
    const r = await kaudit(
      ['doctor', '--manifest', manifest, '--config', join(dir, 'kaudit.yaml'), '--json'],
      { cwd: dir },
    );
    const webhook = (
      JSON.parse(r.stdout) as { checks: { id: string; status: string; detail: string }[] }
    ).checks.filter((c) => c.id === 'webhook');
    expect(webhook.map((c) => c.status)).toEqual(['ok', 'ok']);
    // The empty EventList doctor sends is answered 400 and stores nothing.
    expect(webhook[1]?.detail).toContain('answers (HTTP 400)');
  });

  it('refuses a client certificate from another CA, and stores nothing from it', async () => {
    const c = clientOf(kubeconfig);
    const status = await post(c.url, eventList('rogue', 3), {
      ca: c.ca,
      cert: readFileSync(join(rogue, 'client.crt')),
      key: readFileSync(join(rogue, 'client.key')),
    });
    expect(status).toBe(401);
    expect(await count('rogue')).toBe(0);
  });

  it("is refused by a client that trusts another CA: the server certificate is the kubeconfig CA's", async () => {
    const c = clientOf(kubeconfig);
    await expect(
      post(c.url, eventList('x', 1), { ca: readFileSync(join(rogue, 'ca.crt')), cert: c.cert, key: c.key }),
    ).rejects.toThrow(/self[- ]signed|unable to verify|unable to get local issuer/i);
  });
});
