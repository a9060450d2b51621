import { describe, expect, it } from 'vitest';
import { UserError } from '../model/errors.js';
import { decodeValue, encodeQueryResult } from '../store/remote-store.js';
import type { QueryResult } from '../store/store.js';
import { AdminHandler } from './admin-handler.js';
import type { AgentStatus } from './agent.js';
import { MemoryStore } from './memory-store.js';

function fakeStatus(over: Partial<AgentStatus['store']> = {}): AgentStatus {
  return {
    agent: {
      pid: 1,
      version: '0.1.0',
      cluster: 'c',
      startedAt: '2026-11-26T10:00:00.000Z',
      uptimeSeconds: 5,
      runPath: '/r',
      dataDir: '/d',
      admin: 'http://127.0.0.1:1',
      config: null,
      logsEnabled: true,
    },
    logs: [
      {
        name: 'audit "main"',
        type: 'file',
        path: '/var/log/audit.log',
        source: 'kubernetes.audit',
        service: 'audit',
        status: 'OK',
        filesMatching: 3,
        filesTailed: 1,
        bytesRead: 1000,
        events: 7,
        lagBytes: 10,
        lagSeconds: 0.5,
        lastCheckpoint: null,
        rotations: 2,
        truncations: 0,
        truncated: 1,
        malformed: 0,
        dropped: 0,
        files: [],
      },
    ],
    pipeline: {
      queuedEvents: 0,
      queuedBytes: 0,
      queueEvents: 100,
      queueBytes: 1000,
      batches: 1,
      eventsStored: 7,
      duplicates: 0,
      rejected: 0,
      deadLettered: 0,
      storeErrors: 0,
      storeError: undefined,
      lastWriteAt: undefined,
      latencyAvgMs: 12,
      latencyPeakMs: 30,
      deadLetterPath: null,
    },
    store: {
      backend: 'memory',
      location: 'memory',
      status: 'OK',
      rows: 7,
      tableChecks: 2,
      oldest: null,
      newest: null,
      ...over,
    },
  };
}

class SqlStore extends MemoryStore {
  override async query(sql: string): Promise<QueryResult> {
    if (sql.startsWith('DROP'))
      throw new UserError('KAUDIT_QUERY_INVALID', 'only SELECT', { hint: 'read-only' });
    return { columns: ['n', 'ts'], rows: [{ n: 12n, ts: new Date('2026-11-26T10:00:00Z') }] };
  }
}

const TOKEN = 'test-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };

describe('AdminHandler', () => {
  it('answers the read API only with the bearer token; status, metrics and health stay open', async () => {
    const h = new AdminHandler({ status: async () => fakeStatus() }, new SqlStore(), TOKEN);
    const ask = (path: string, headers: Record<string, string> = {}, body?: string) =>
      h.fetch(
        new Request(`http://x${path}`, body === undefined ? { headers } : { method: 'POST', headers, body }),
      );
    const sql = JSON.stringify({ sql: 'SELECT 1' });
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: TOKEN }]) {
      const denied = await ask('/api/v1/query', headers, sql);
      expect(denied.status).toBe(401);
      expect(((await denied.json()) as { code: string }).code).toBe('KAUDIT_API_UNAUTHORIZED');
      for (const path of ['/api/v1/store', '/api/v1/stats'])
        expect((await ask(path, headers)).status).toBe(401);
    }
    expect((await ask('/api/v1/query', AUTH, sql)).status).toBe(200);
    for (const path of ['/status', '/metrics', '/healthz']) expect((await ask(path)).status).toBe(200);
  });

  it('serves Prometheus metrics with escaped labels', async () => {
    const h = new AdminHandler({ status: async () => fakeStatus() }, new MemoryStore(), TOKEN);
    const res = await h.fetch(new Request('http://x/metrics'));
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0.0.4/);
    const text = await res.text();
    expect(text).toContain('# TYPE kaudit_source_events_total counter');
    expect(text).toContain('kaudit_source_events_total{source="audit \\"main\\"",type="file"} 7');
    expect(text).toContain('kaudit_file_lag_bytes{source="audit \\"main\\"",type="file"} 10');
    expect(text).toContain('kaudit_pipeline_latency_peak_seconds 0.03');
    expect(text).toContain('kaudit_store_table_checks_total 2');
  });

  it('keeps each metric family together when there are several sources', async () => {
    const status = fakeStatus();
    const first = status.logs[0];
    if (first === undefined) throw new Error('fixture has no source');
    status.logs.push({ ...first, name: 'second', events: 3 });
    const h = new AdminHandler({ status: async () => status }, new MemoryStore(), TOKEN);
    const lines = (await (await h.fetch(new Request('http://x/metrics'))).text()).trimEnd().split('\n');
    const names = lines.filter((l) => !l.startsWith('#')).map((l) => l.replace(/[{ ].*$/, ''));
    // A family that reappears after another one began is split, which the text format forbids.
    const seen = new Set<string>();
    names.forEach((n, i) => {
      if (i > 0 && names[i - 1] !== n) expect(seen.has(n)).toBe(false);
      seen.add(n);
    });
    expect(lines.filter((l) => l === '# TYPE kaudit_source_events_total counter')).toHaveLength(1);
    expect(names.filter((n) => n === 'kaudit_source_events_total')).toHaveLength(2);
  });

  it('answers /healthz 200 when all is OK and 503 naming the failing part', async () => {
    const ok = new AdminHandler({ status: async () => fakeStatus() }, new MemoryStore(), TOKEN);
    expect((await ok.fetch(new Request('http://x/healthz'))).status).toBe(200);
    const bad = new AdminHandler(
      { status: async () => fakeStatus({ status: 'Error', error: 'disk full' }) },
      new MemoryStore(),
      TOKEN,
    );
    const res = await bad.fetch(new Request('http://x/healthz'));
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'error', errors: ['disk full'] });
  });

  it('answers queries with bigint and Date kept, and a UserError as 400 with its code and hint', async () => {
    const h = new AdminHandler({ status: async () => fakeStatus() }, new SqlStore(), TOKEN);
    const res = await h.fetch(
      new Request('http://x/api/v1/query', {
        method: 'POST',
        headers: AUTH,
        body: JSON.stringify({ sql: 'SELECT 1' }),
      }),
    );
    const body = (await res.json()) as { rows: unknown[] };
    expect(body.rows).toEqual([{ n: { $bigint: '12' }, ts: { $date: '2026-11-26T10:00:00.000Z' } }]);
    expect(decodeValue(body.rows[0])).toEqual({ n: 12n, ts: new Date('2026-11-26T10:00:00Z') });
    const err = await h.fetch(
      new Request('http://x/api/v1/query', {
        method: 'POST',
        headers: AUTH,
        body: JSON.stringify({ sql: 'DROP TABLE x' }),
      }),
    );
    expect(err.status).toBe(400);
    expect(await err.json()).toEqual({
      error: 'only SELECT',
      code: 'KAUDIT_QUERY_INVALID',
      hint: 'read-only',
    });
  });

  it('encodes nested values and objects with toJSON', () => {
    const r = encodeQueryResult({ columns: ['a'], rows: [{ a: [1n, { b: 2n }], c: { toJSON: () => 'x' } }] });
    expect(r.rows).toEqual([{ a: [{ $bigint: '1' }, { b: { $bigint: '2' } }], c: 'x' }]);
  });
});
