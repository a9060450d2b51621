/**
 * One answer on every backend: the same events loaded into DuckDB, single-node ClickHouse and the
 * two-shard Distributed setup give the same searches and the same reports (latency, activity,
 * object history, denials, RBAC from use), each event counted once though every batch is written
 * twice. DuckDB is the reference here: it is the backend users already have.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activityReport } from '../../src/analyze/activity.js';
import { denialsFromStore } from '../../src/analyze/denials/denials-from-store.js';
import { reportDenials } from '../../src/analyze/denials/denials-report.js';
import { objectHistory } from '../../src/analyze/history.js';
import { latencyReport } from '../../src/analyze/latency.js';
import { generateRbac } from '../../src/analyze/rbac/generate.js';
import { requestRecords } from '../../src/analyze/request-record.js';
import { prepareLine } from '../../src/model/prepare.js';
import { generateLines } from '../../src/simulate/generator.js';
import type { Store } from '../../src/store/contract.js';
import type { EventFilter, SearchQuery } from '../../src/store/query.js';
import { storedEvents } from '../../src/store/stored-events.js';
import { BACKENDS, type OpenedBackend } from '../helpers/store-backends.js';

const SAMPLES = new URL('../fixtures/third-party/samples/', import.meta.url);
const NAMES = ['duckdb', 'clickhouse', 'clickhouse-distributed'];
const chosen = BACKENDS.filter(([name]) => NAMES.includes(name));

function prepared(lines: Iterable<string>): Buffer[] {
  const out: Buffer[] = [];
  for (const line of lines) out.push(...prepareLine(Buffer.from(line)).events);
  return out;
}

/** Every third-party sample: line-per-event logs, and single pretty-printed events. */
function samples(): Buffer[] {
  const lines: string[] = [];
  for (const name of readdirSync(SAMPLES).sort()) {
    const text = readFileSync(new URL(name, SAMPLES), 'utf8');
    if (name.endsWith('.json')) lines.push(JSON.stringify(JSON.parse(text)));
    else lines.push(...text.split('\n').filter((l) => l.trim() !== ''));
  }
  return prepared(lines);
}

const CLUSTERS: [string, Buffer[]][] = [
  ['prod', prepared(generateLines({ seed: 21, count: 6000 }))],
  ['staging', prepared(generateLines({ seed: 22, count: 1500 }))],
  ['samples', samples()],
];

const SEARCHES: [string, SearchQuery][] = [
  ['newest first, every column', { filter: {}, limit: 40, columns: undefined as never }],
  ['oldest first in one cluster', { filter: { cluster: ['staging'] }, limit: 60, sort: 'time_asc' }],
  ['slowest first', { filter: { longRunning: false }, limit: 40, sort: 'latency' }],
  ['denied by subject', { filter: { denied: true }, limit: 200, columns: ['audit_id', 'subject', 'code'] }],
  [
    'writes to secrets',
    {
      filter: { verb: ['create', 'update', 'patch', 'delete'], resource: [{ resource: 'secrets' }] },
      limit: 100,
    },
  ],
  [
    'exec and friends',
    {
      filter: { resource: [{ resource: 'pods', subresource: '*' }], namespace: ['kube-system', 'default'] },
      limit: 100,
    },
  ],
  ['text and agent', { filter: { text: '/api/', userAgent: 'kubectl' }, limit: 100 }],
  ['groups', { filter: { userGroup: ['system:masters', 'system:serviceaccounts'] }, limit: 50 }],
];

/** Values that would match everything if they reached the SQL unescaped. */
const HOSTILE = ["a' OR 1=1 --", "' OR ''='", 'x\\', "\\' OR 1=1 --", '\u0000', "prod' --", '%', 'ユーザー'];

function comparable(v: unknown): unknown {
  if (typeof v === 'number' && !Number.isInteger(v)) return Number(v.toPrecision(12));
  if (Array.isArray(v)) return v.map(comparable);
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [
        k,
        k === 'next' && typeof x === 'string' ? 'a cursor' : comparable(x),
      ]),
    );
  return v;
}

describe.skipIf(chosen.length < NAMES.length)(
  'conformance: DuckDB, ClickHouse, Distributed ClickHouse',
  () => {
    const opened: [string, OpenedBackend][] = [];
    const stores = () => opened.map(([name, b]) => [name, b.store] as [string, Store]);

    /**
     * `fn` on every backend; each answer must equal DuckDB's. Sums of fractional milliseconds are
     * compared to 12 significant digits: each engine adds in its own order (DuckDB's 10565.600000000002
     * is ClickHouse's 10565.6). A search cursor is opaque, its own to each backend: only whether there is
     * one is compared (the paging test follows them).
     */
    async function same<T>(fn: (store: Store) => Promise<T>): Promise<T> {
      const answers: [string, T][] = [];
      for (const [name, store] of stores()) answers.push([name, await fn(store)]);
      const [, reference] = answers[0] as [string, T];
      for (const [name, answer] of answers.slice(1))
        expect({ [name]: comparable(answer) }).toEqual({ [name]: comparable(reference) });
      return reference;
    }

    beforeAll(async () => {
      for (const [name, open] of chosen) {
        const backend = await open();
        opened.push([name, backend]);
        for (const [cluster, events] of CLUSTERS) {
          // In batches, and every batch twice: a re-delivery must count once.
          for (let i = 0; i < events.length; i += 2500) {
            const batch = { events: events.slice(i, i + 2500), cluster };
            await backend.store.write(batch);
            const again = await backend.store.write(batch);
            expect(again.stored).toBe(0);
          }
        }
      }
    }, 180_000);
    afterAll(async () => {
      for (const [, b] of opened) await b.close();
    });

    it('holds each event once, with the same rows per cluster', async () => {
      const counts = await same(async (s) => {
        const info = await s.info();
        return info.clusters.map((c) => [c.cluster, c.rows, c.oldest, c.newest]);
      });
      expect(counts.map((c) => c[0])).toEqual(['prod', 'samples', 'staging']);
      const total = CLUSTERS.reduce((n, [, e]) => n + e.length, 0);
      expect(counts.reduce((n, c) => n + Number(c[1]), 0)).toBeLessThanOrEqual(total);
    });

    it.each(SEARCHES)('search: %s', async (_what, q) => {
      const page = await same((s) => s.search(q));
      expect(page.rows.length).toBeGreaterThan(0);
    });

    it('pages through every row of a cluster with the cursor', async () => {
      await same(async (s) => {
        const ids: unknown[] = [];
        let cursor: string | undefined;
        do {
          const page = await s.search({
            filter: { cluster: ['staging'] },
            limit: 500,
            sort: 'latency',
            columns: ['audit_id', 'stage'],
            ...(cursor ? { cursor } : {}),
          });
          ids.push(...page.rows);
          cursor = page.next;
        } while (cursor !== undefined);
        return ids;
      });
    });

    it('latency report', async () => {
      const r = await same((s) => latencyReport(s, { filter: { cluster: ['prod'] }, limit: 15 }));
      expect(JSON.stringify(r)).toContain('p99');
    });

    it('activity report, and --cluster sees only its cluster', async () => {
      const all = await same((s) => activityReport(s, { filter: {}, limit: 15 }));
      const staging = await same((s) => activityReport(s, { filter: { cluster: ['staging'] }, limit: 15 }));
      expect(staging.requests).toBeGreaterThan(0);
      expect(staging.requests).toBeLessThan(all.requests);
      await same((s) => s.count({ cluster: ['staging'] }));
    });

    it('object history of the most changed object', async () => {
      const [top] = await (opened[0] as [string, OpenedBackend])[1].store.aggregate({
        filter: { verb: ['update', 'patch'], noNamespace: false, cluster: ['prod'] },
        groupBy: ['resource', 'namespace', 'name'],
        measures: { n: { fn: 'count' } },
        orderBy: [{ key: 'n', desc: true }],
        limit: 1,
      });
      expect(top).toBeDefined();
      const target = {
        resource: String(top?.resource),
        namespace: String(top?.namespace),
        name: String(top?.name),
      };
      const h = await same((s) => objectHistory(s, { target, filter: { cluster: ['prod'] } }));
      expect(h.changes.length).toBeGreaterThan(0);
    });

    it('denials: from the store, and over every stored event', async () => {
      const filter: EventFilter = { cluster: ['prod'] };
      const fast = await same((s) => denialsFromStore(s, filter));
      expect(fast.denied).toBeGreaterThan(0);
      await same(async (s) =>
        reportDenials(
          requestRecords(
            (async function* () {
              for await (const { event } of storedEvents(s, { cluster: ['samples'] })) yield event;
            })(),
          ),
        ),
      );
    });

    it('RBAC generated from use', async () => {
      await same(async (s) => {
        const r = await generateRbac(
          requestRecords(
            (async function* () {
              for await (const { event } of storedEvents(s, { cluster: ['samples'] })) yield event;
            })(),
          ),
          { select: { all: true } },
        );
        return r;
      });
    });

    it('returns nothing, not everything, for hostile values in every filter', async () => {
      const filters: EventFilter[] = HOSTILE.flatMap((v) => [
        { user: [v] },
        { subject: [v] },
        { cluster: [v] },
        { userGroup: [v] },
        { verb: [v] },
        { resource: [{ resource: v }] },
        { resource: [{ resource: 'pods', subresource: v }] },
        { apiGroup: [v] },
        { namespace: [v] },
        { name: [v] },
        { stage: [v] },
        { level: [v] },
        { auditId: [v] },
        { decision: [v] },
        { sourceIp: [v] },
        { userAgent: `${v}-no-such-agent` },
        { text: `${v}-no-such-uri` },
      ]);
      for (const [name, s] of stores()) {
        for (const f of filters) expect({ name, f, n: await s.count(f) }).toEqual({ name, f, n: 0 });
        expect(await s.count({})).toBeGreaterThan(0);
      }
    });
  },
);
