import { describe, expect, it } from 'vitest';
import { prepareLine } from '../model/prepare.js';
import { generateLines } from '../simulate/generator.js';
import { MemoryStore } from '../store/memory/memory-store.js';
import { createApp } from './app.js';
import { TokenAuth } from './auth.js';
import { listen } from './listen.js';

const READ = 'read-token-0123456789abcdef';
const ADMIN = 'admin-token-0123456789abcdef';

async function appWith(auth = new TokenAuth()) {
  const store = new MemoryStore();
  const events: Buffer[] = [];
  for (const line of generateLines({ seed: 3, count: 2000 }))
    events.push(...prepareLine(Buffer.from(line)).events);
  await store.write({ events, cluster: 'prod' });
  const app = createApp({
    store,
    auth,
    status: async () => ({ store: await store.info() }),
    health: async () => null,
    metrics: async () => 'kaudit_up 1\n',
    routes: [
      {
        prefix: '/api/v1/admin-only',
        level: 'admin',
        handler: async (req) =>
          new URL(req.url).pathname === '/api/v1/admin-only' ? Response.json({ changed: true }) : undefined,
      },
    ],
    maxBodyBytes: 1024,
  });
  return { app, store };
}

const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });

describe('the HTTP API', () => {
  it('searches with the filter parameters and pages with the cursor', async () => {
    const { app, store } = await appWith();
    const res = await app.request('/api/v1/events?verb=get&limit=50&columns=audit_id,verb');
    expect(res.status).toBe(200);
    const page = (await res.json()) as { rows: { verb: string }[]; next?: string };
    expect(page.rows).toHaveLength(50);
    expect(page.rows.every((r) => r.verb === 'get')).toBe(true);
    const next = (await (
      await app.request(`/api/v1/events?verb=get&limit=50&columns=audit_id,verb&cursor=${page.next}`)
    ).json()) as {
      rows: unknown[];
    };
    const want = await store.search({ filter: { verb: ['get'] }, limit: 100, columns: ['audit_id', 'verb'] });
    expect([...page.rows, ...next.rows]).toEqual(want.rows);
  });

  it('answers 400 naming the bad parameter, 404 for unknown routes and events, 413 over the body limit, always as JSON errors', async () => {
    const { app } = await appWith();
    const bad = await app.request('/api/v1/events?code=6xx');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({
      error: {
        code: 'KAUDIT_API_BAD_PARAMETER',
        message: 'code "6xx": expected a code (403), a class (4xx) or a range (400-499)',
      },
    });
    expect((await app.request('/api/v1/events?limit=0')).status).toBe(400);
    expect((await app.request('/api/v1/events?sort=random')).status).toBe(400);
    const unknown = await app.request('/api/v1/nothing-here');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('KAUDIT_API_NOT_FOUND');
    expect((await app.request('/api/v1/events/no-such-id')).status).toBe(404);
    const big = await app.request('/api/v1/policy/lint', { method: 'POST', body: 'x'.repeat(2048) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe('KAUDIT_API_TOO_LARGE');
  });

  it('wants a token once tokens are configured: none is 401, a read token on an admin endpoint is 403', async () => {
    const auth = new TokenAuth().add(READ, 'read').add(ADMIN, 'admin');
    const { app } = await appWith(auth);
    expect((await app.request('/api/v1/info')).status).toBe(401);
    expect((await app.request('/api/v1/info', bearer('wrong-token-0123456789'))).status).toBe(401);
    expect((await app.request('/api/v1/info', bearer(READ))).status).toBe(200);
    expect((await app.request('/api/v1/admin-only', bearer(READ))).status).toBe(403);
    expect((await app.request('/api/v1/admin-only', bearer(ADMIN))).status).toBe(200);
    // Monitoring needs no token: it carries no audit event.
    expect((await app.request('/healthz')).status).toBe(200);
    expect(await (await app.request('/metrics')).text()).toBe('kaudit_up 1\n');
  });

  it('serves the reports the CLI prints, and lints a posted policy', async () => {
    const { app } = await appWith();
    const latency = (await (await app.request('/api/v1/reports/latency')).json()) as {
      overall: { count: number };
    };
    expect(latency.overall.count).toBeGreaterThan(0);
    const lint = (await (
      await app.request('/api/v1/policy/lint', {
        method: 'POST',
        body: 'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n',
      })
    ).json()) as { errors: number };
    expect(lint.errors).toBe(0);
  });
});

describe('listen', () => {
  it('refuses an address off loopback without tokens or client certificates, with the reason', async () => {
    const { app } = await appWith();
    await expect(listen(app, { host: '0.0.0.0', port: 0, tokens: false })).rejects.toMatchObject({
      code: 'KAUDIT_SERVE_UNGUARDED',
    });
    const guarded = await listen(app, { host: '0.0.0.0', port: 0, tokens: true });
    await guarded.close();
    const local = await listen(app, { host: '127.0.0.1', port: 0, tokens: false });
    expect((await fetch(`${local.url}/healthz`)).status).toBe(200);
    await local.close();
  });
});

describe('TokenAuth', () => {
  it('reads tokens a line each, refuses short ones, and never matches a prefix', () => {
    expect(() => new TokenAuth().add('short', 'read')).toThrow(/at least 16/);
    const auth = new TokenAuth().add(READ, 'read');
    expect(auth.levelOf(`Bearer ${READ}`)).toBe('read');
    expect(auth.levelOf(`Bearer ${READ.slice(0, -1)}`)).toBeUndefined();
    expect(auth.levelOf(`Basic ${READ}`)).toBeUndefined();
    expect(auth.levelOf(undefined)).toBeUndefined();
  });
});
