/**
 * One suite, every backend (as Kysely runs one suite over every dialect): the same events must give
 * the same writes, searches, scans and aggregates. The memory store is the reference; a backend
 * joins by adding its factory to BACKENDS (test/helpers/store-backends.ts).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, type OpenedBackend } from '../../test/helpers/store-backends.js';
import { prepareLine } from '../model/prepare.js';
import { generateLines } from '../simulate/generator.js';
import { aggregateSets } from './aggregate-sets.js';
import type { Row, Store } from './contract.js';
import { MemoryStore } from './memory/memory-store.js';
import {
  type AggregateQuery,
  compareIngestPositions,
  decodeIngestCursor,
  type EventFilter,
  INGEST_CURSOR_COLUMN,
  type IngestPosition,
  type SearchQuery,
} from './query.js';

const THIRD_PARTY = new URL('../../test/fixtures/third-party/', import.meta.url);

/** Simulated traffic of every scenario, prepared as the pipeline prepares it. */
const simulated: Buffer[] = [];
for (const line of generateLines({ seed: 7, count: 4000 }))
  simulated.push(...prepareLine(Buffer.from(line)).events);
const demo = readFileSync(new URL('samples/audit2rbac-demo.log', THIRD_PARTY), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .flatMap((l) => prepareLine(Buffer.from(l)).events);

const reference = new MemoryStore();

beforeAll(async () => {
  await reference.write({ events: simulated, cluster: 'prod' });
  await reference.write({ events: demo, cluster: 'demo' });
});

const SEARCHES: [string, SearchQuery][] = [
  ['newest first', { filter: {}, limit: 25 }],
  ['oldest first', { filter: {}, limit: 25, sort: 'time_asc' }],
  ['slowest first', { filter: { longRunning: false }, limit: 25, sort: 'latency' }],
  [
    'by verb and resource',
    { filter: { verb: ['get', 'list'], resource: [{ resource: 'pods' }] }, limit: 50 },
  ],
  ['a subresource', { filter: { resource: [{ resource: 'pods', subresource: 'exec' }] }, limit: 50 }],
  [
    'every subresource',
    { filter: { resource: [{ resource: 'pods', subresource: '*' }] }, limit: 30, sort: 'time_asc' },
  ],
  ['denied', { filter: { denied: true }, limit: 100 }],
  [
    'forbid, annotated or derived',
    { filter: { decision: ['forbid'] }, limit: 100, columns: ['audit_id', 'decision', 'decision_source'] },
  ],
  [
    'code ranges',
    {
      filter: {
        code: [
          { min: 400, max: 499 },
          { min: 500, max: 599 },
        ],
      },
      limit: 100,
    },
  ],
  ['user agent and text', { filter: { userAgent: 'KUBECTL', text: 'namespaces/' }, limit: 100 }],
  ['latency and long running', { filter: { minLatencyMs: 100, longRunning: false }, limit: 100 }],
  ['non-resource', { filter: { nonResource: true }, limit: 40 }],
  [
    'no namespace, not resourceVersion',
    { filter: { noNamespace: true, textExcludes: 'resourceVersion=' }, limit: 40 },
  ],
  [
    'groups and source IPs',
    { filter: { userGroup: ['system:nodes'], sourceIp: ['10.0.0.10', '10.0.1.11'] }, limit: 40 },
  ],
  [
    'time window and cluster',
    {
      filter: { cluster: ['prod'], since: '2026-01-15T09:00:10Z', until: '2026-01-15T09:00:20Z' },
      limit: 500,
    },
  ],
  ['stage and level', { filter: { stage: ['ResponseStarted'], level: ['Metadata'] }, limit: 40 }],
  ['every column', { filter: { cluster: ['demo'] }, limit: 5, columns: undefined as never }],
];

const AGGREGATES: [string, AggregateQuery][] = [
  ['count', { filter: {}, groupBy: [], measures: { n: { fn: 'count' } } }],
  [
    'request shapes by user and groups (RBAC from the store)',
    {
      filter: { stage: ['ResponseComplete'] },
      groupBy: ['username', 'groups', 'verb', 'resource', 'namespace'],
      measures: { n: { fn: 'count' }, first: { fn: 'min', column: 'ts' }, last: { fn: 'max', column: 'ts' } },
    },
  ],
  ['count over nothing', { filter: { verb: ['nosuchverb'] }, groupBy: [], measures: { n: { fn: 'count' } } }],
  [
    'percentiles by verb and resource',
    {
      filter: { longRunning: false, stage: ['ResponseComplete'] },
      groupBy: ['verb', 'resource', 'subresource'],
      measures: {
        n: { fn: 'count' },
        p50: { fn: 'quantile', column: 'latency_ms', q: 0.5 },
        p99: { fn: 'quantile', column: 'latency_ms', q: 0.99 },
        max: { fn: 'max', column: 'latency_ms' },
        total: { fn: 'sum', column: 'latency_ms' },
      },
      orderBy: [{ key: 'p99', desc: true }],
      limit: 15,
    },
  ],
  [
    'quantiles of two columns, one of them a time, ordered by a quantile',
    {
      filter: {},
      groupBy: ['verb'],
      measures: {
        p90: { fn: 'quantile', column: 'latency_ms', q: 0.9 },
        firstQuarter: { fn: 'quantile', column: 'ts', q: 0.25 },
        p10: { fn: 'quantile', column: 'latency_ms', q: 0.1 },
        median: { fn: 'quantile', column: 'ts', q: 0.5 },
        n: { fn: 'count' },
      },
      orderBy: [{ key: 'p10', desc: true }],
    },
  ],
  [
    'time buckets by response class',
    {
      filter: {},
      groupBy: [{ bucket: 'ts', everyMs: 10_000 }, 'code_class'],
      measures: { n: { fn: 'count' } },
      orderBy: [{ key: 'bucket' }],
    },
  ],
  [
    'first seen and distinct counts',
    {
      filter: {},
      groupBy: ['subject'],
      measures: {
        first: { fn: 'min', column: 'ts' },
        last: { fn: 'max', column: 'ts' },
        verbs: { fn: 'countDistinct', column: 'verb' },
        some: { fn: 'distinct', column: 'namespace', limit: 3 },
      },
      orderBy: [{ key: 'first', desc: true }],
      limit: 20,
    },
  ],
  [
    'ties broken by the group keys',
    {
      filter: {},
      groupBy: ['cluster', 'long_running'],
      measures: { n: { fn: 'count' } },
      orderBy: [{ key: 'n' }],
    },
  ],
];

describe.each(BACKENDS)('store contract: %s', (_name, open) => {
  let backend: OpenedBackend;
  let store: Store;

  beforeAll(async () => {
    backend = await open();
    store = backend.store;
    const a = await store.write({ events: simulated, cluster: 'prod' });
    expect(a.rejected).toEqual([]);
    await store.write({ events: demo, cluster: 'demo' });
  }, 120_000);
  afterAll(() => backend?.close());

  it('stores each (cluster, auditID, stage) once: a second write adds nothing; another cluster is another event', async () => {
    const again = await store.write({ events: demo, cluster: 'demo' });
    expect(again.stored).toBe(0);
    expect(again.duplicates).toBe(demo.length);
    expect(await store.count({ cluster: ['demo'] })).toBe(await reference.count({ cluster: ['demo'] }));
    const mine = (await store.info()).clusters.filter((c) => c.cluster !== 'reject-test');
    const want = (await reference.info()).clusters.filter((c) => c.cluster !== 'reject-test');
    expect(mine.map((c) => [c.cluster, c.rows, c.oldest, c.newest])).toEqual(
      want.map((c) => [c.cluster, c.rows, c.oldest, c.newest]),
    );
  });

  it('gives back what is not an audit event, with its bytes, and stores the rest', async () => {
    const bad = [Buffer.from('{"not":"an event"}'), Buffer.from('not json')];
    const good = demo.slice(0, 1);
    const r = await store.write({
      events: [bad[0] as Buffer, ...good, bad[1] as Buffer],
      cluster: 'reject-test',
    });
    await reference.write({ events: good, cluster: 'reject-test' });
    expect(r.stored).toBe(1);
    expect(r.rejected.map((x) => x.index)).toEqual([0, 2]);
    expect(r.rejected.map((x) => x.data.toString())).toEqual(['{"not":"an event"}', 'not json']);
  });

  it.each(SEARCHES)('search: %s', async (_what, q) => {
    const query = { ...q, filter: { ...q.filter, cluster: q.filter.cluster ?? ['prod', 'demo'] } };
    expect(await store.search(query)).toMatchObject({ rows: (await reference.search(query)).rows });
  });

  it('pages through a search with its cursor: every row once, in order', async () => {
    const filter: EventFilter = { cluster: ['prod'], verb: ['get'] };
    const all = (await reference.search({ filter, limit: 100_000, columns: ['audit_id', 'stage'] })).rows;
    const seen: unknown[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.search({
        filter,
        limit: 97,
        columns: ['audit_id', 'stage'],
        ...(cursor ? { cursor } : {}),
      });
      seen.push(...page.rows);
      cursor = page.next;
    } while (cursor !== undefined);
    expect(seen).toEqual(all);
  });

  it('scans every matching row oldest first, a page at a time', async () => {
    const filter: EventFilter = { cluster: ['prod'], verb: ['update', 'patch'] };
    const pages: number[] = [];
    const rows: unknown[] = [];
    for await (const page of store.scan({ filter, columns: ['audit_id', 'stage', 'ts'], pageRows: 50 })) {
      pages.push(page.length);
      rows.push(...page);
    }
    const expected: unknown[] = [];
    for await (const page of reference.scan({ filter, columns: ['audit_id', 'stage', 'ts'] }))
      expected.push(...page);
    expect(rows).toEqual(expected);
    expect(Math.max(...pages)).toBeLessThanOrEqual(50);
  });

  it.each(AGGREGATES)('aggregate: %s', async (_what, q) => {
    const got = await store.aggregate(q);
    const want = await reference.aggregate(q);
    expect(got.length).toBe(want.length);
    got.forEach((row, i) => {
      for (const [k, v] of Object.entries(want[i] ?? {})) {
        if (typeof v === 'number' && !Number.isInteger(v)) expect(row[k]).toBeCloseTo(v, 6);
        else expect(row[k]).toEqual(v);
      }
    });
  });

  it('aggregateSets: each set the rows aggregate() gives for it', async () => {
    const measures = {
      n: { fn: 'count' },
      p50: { fn: 'quantile', column: 'latency_ms', q: 0.5 },
      p99: { fn: 'quantile', column: 'latency_ms', q: 0.99 },
      max: { fn: 'max', column: 'latency_ms' },
      total: { fn: 'sum', column: 'latency_ms' },
    } as const;
    const sets = [
      { groupBy: [] },
      { groupBy: ['verb', 'resource', 'subresource'], orderBy: [{ key: 'p99', desc: true }], limit: 7 },
      { groupBy: ['subject'], orderBy: [{ key: 'p99', desc: true }], limit: 5 },
      { groupBy: ['subject', 'user_agent'], orderBy: [{ key: 'total', desc: true }], limit: 5 },
      { groupBy: [{ bucket: 'ts', everyMs: 60_000 }], orderBy: [{ key: 'bucket' }] },
      { groupBy: [{ bucket: 'ts', everyMs: 60_000 }, 'code_class'], orderBy: [{ key: 'bucket' }] },
      // The same grouping twice, and one over nothing.
      { groupBy: ['subject'], orderBy: [{ key: 'n', desc: true }] },
    ] as const;
    for (const filter of [{ longRunning: false, stage: ['ResponseComplete'] }, { verb: ['nosuchverb'] }]) {
      const got = await aggregateSets(store, { filter, measures, sets });
      expect(got).toHaveLength(sets.length);
      for (const [i, set] of sets.entries()) {
        const want = await reference.aggregate({ filter, measures, ...set });
        expect(got[i]?.length).toBe(want.length);
        got[i]?.forEach((row, j) => {
          expect(Object.keys(row).sort()).toEqual(Object.keys(want[j] ?? {}).sort());
          for (const [k, v] of Object.entries(want[j] ?? {})) {
            if (typeof v === 'number' && !Number.isInteger(v)) expect(row[k]).toBeCloseTo(v, 6);
            else expect(row[k]).toEqual(v);
          }
        });
      }
    }
  });

  it('finds all 11 denials of audit2rbac demo log without decision annotations', async () => {
    const page = await store.search({
      filter: { cluster: ['demo'], decision: ['forbid'] },
      limit: 100,
      columns: ['audit_id', 'decision', 'decision_source'],
    });
    expect(page.rows).toHaveLength(11);
    expect(new Set(page.rows.map((r) => r.decision_source))).toEqual(new Set(['response']));
  });

  it('returns nothing, not everything, for hostile filter values', async () => {
    for (const v of ["a' OR 1=1 --", 'x\\', '\u0000', "'; DROP TABLE audit_events; --", 'ユーザー'])
      expect(await store.count({ user: [v] })).toBe(0);
    expect(await store.count({})).toBeGreaterThan(0);
  });

  // Last: it adds rows (in a cluster of its own) that the reference does not have.
  it('scans in ingest order: commit after commit, resumable after any row', async () => {
    const commits = [simulated.slice(0, 200), simulated.slice(150, 400), demo];
    const cluster = 'ingest-order';
    const filter: EventFilter = { cluster: [cluster] };
    const commitOf = new Map<string, number>();
    const keyOf = (e: Buffer) => {
      const v = JSON.parse(e.toString('utf8')) as { auditID: string; stage: string };
      return `${v.auditID}/${v.stage}`;
    };
    for (const [i, events] of commits.entries()) {
      await store.write({ events, cluster });
      for (const e of events) if (!commitOf.has(keyOf(e))) commitOf.set(keyOf(e), i);
    }
    const scanAll = async (after?: string) => {
      const out: Row[] = [];
      for await (const page of store.scan({
        filter: after === undefined ? filter : { ...filter, ingestedAfter: after },
        columns: ['audit_id', 'stage', 'cluster'],
        order: 'ingested',
        pageRows: 37,
      })) {
        expect(page.length).toBeLessThanOrEqual(37);
        out.push(...page);
      }
      return out;
    };
    const rows = await scanAll();
    expect(rows).toHaveLength(commitOf.size);
    const keys = rows.map((r) => `${String(r.audit_id)}/${String(r.stage)}`);
    expect(new Set(keys).size).toBe(keys.length);
    // Every row of a commit before every row of the next one.
    const order = keys.map((k) => commitOf.get(k));
    expect(order).toEqual([...order].sort((a, b) => (a ?? -1) - (b ?? -1)));
    expect(new Set(order)).toEqual(new Set([0, 1, 2]));
    const positions = rows.map((r) => decodeIngestCursor(String(r[INGEST_CURSOR_COLUMN])));
    for (let i = 1; i < positions.length; i++)
      expect(compareIngestPositions(positions[i - 1] as IngestPosition, positions[i] as IngestPosition)).toBe(
        -1,
      );
    for (const k of [0, 199, 200, rows.length - 2, rows.length - 1]) {
      const after = String(rows[k]?.[INGEST_CURSOR_COLUMN]);
      const rest = await scanAll(after);
      expect(rest).toEqual(rows.slice(k + 1));
      // What a follower has left to read, counted without reading it.
      expect(await store.count({ ...filter, ingestedAfter: after })).toBe(rows.length - k - 1);
    }
    // A later commit comes after every earlier row, even one with older events.
    const last = String(rows.at(-1)?.[INGEST_CURSOR_COLUMN]);
    const later = simulated.slice(390, 450);
    await store.write({ events: later, cluster });
    const added = await scanAll(last);
    expect(added.map((r) => `${String(r.audit_id)}/${String(r.stage)}`).sort()).toEqual(
      [...new Set(later.map(keyOf))].filter((k) => !commitOf.has(k)).sort(),
    );
  });
});
