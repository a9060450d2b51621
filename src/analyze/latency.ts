/**
 * Slow requests and the clients that load the API server: percentiles by verb and resource, by
 * subject and by user agent, the slowest requests with where their time went, a p99 series, and
 * the expensive patterns (cluster-wide LISTs without resourceVersion, 429s from API Priority and
 * Fairness, 5xx). Long-running requests (watch, exec, attach, log, proxy, portforward) are left
 * out: their latency is the session's length, not the server's work.
 */
import { aggregateSets } from '../store/aggregate-sets.js';
import type { EventReader } from '../store/contract.js';
import type { AggregateRow, EventFilter, GroupKey, Measure } from '../store/query.js';
import { inRange, type ReportRange, resolveRange } from './report-range.js';

export interface LatencyOptions {
  filter: EventFilter;
  /** Rows per table; default 20. */
  limit?: number;
}

export interface LatencyStats {
  count: number;
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  /** Request time summed: the client's share of the server's work. */
  totalMs: number | null;
}

export interface SlowRequest {
  ts: string;
  auditId: string;
  subject: string | null;
  userAgent: string | null;
  verb: string;
  resource: string | null;
  namespace: string | null;
  name: string | null;
  code: number | null;
  latencyMs: number;
  /** `apiserver.latency.k8s.io/*` annotations in ms (etcd, apf-queue-wait, webhooks...), when logged. */
  breakdown: Record<string, number> | null;
}

export interface LatencyReport {
  range: ReportRange;
  overall: LatencyStats;
  byVerbResource: (LatencyStats & { verb: string; resource: string | null; subresource: string | null })[];
  bySubject: (LatencyStats & { subject: string | null })[];
  byUserAgent: (LatencyStats & { userAgent: string | null })[];
  /** Subjects by total request time: who costs the server most. */
  heaviestClients: (LatencyStats & { subject: string | null; userAgent: string | null })[];
  slowest: SlowRequest[];
  /** Where the time of the slowest requests went, summed over those that carry the annotations. */
  breakdownOfSlowest: Record<string, number>;
  p99Series: { bucket: string; count: number; p99Ms: number | null }[];
  /** LISTs of a whole resource across namespaces without resourceVersion: read from etcd every time. */
  expensiveLists: {
    subject: string | null;
    userAgent: string | null;
    resource: string | null;
    count: number;
    p99Ms: number | null;
  }[];
  /** 429 Too Many Requests (API Priority and Fairness), by who got them. */
  throttled: { subject: string | null; userAgent: string | null; count: number }[];
  serverErrors: { resource: string | null; verb: string; code: number | null; count: number }[];
}

const MEASURES: Record<string, Measure> = {
  count: { fn: 'count' },
  p50: { fn: 'quantile', column: 'latency_ms', q: 0.5 },
  p90: { fn: 'quantile', column: 'latency_ms', q: 0.9 },
  p99: { fn: 'quantile', column: 'latency_ms', q: 0.99 },
  max: { fn: 'max', column: 'latency_ms' },
  total: { fn: 'sum', column: 'latency_ms' },
};

const num = (v: unknown): number | null =>
  typeof v === 'number' ? v : v === null || v === undefined ? null : Number(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function stats(r: AggregateRow): LatencyStats {
  return {
    count: num(r.count) ?? 0,
    p50Ms: num(r.p50),
    p90Ms: num(r.p90),
    p99Ms: num(r.p99),
    maxMs: num(r.max),
    totalMs: num(r.total),
  };
}

export async function latencyReport(reader: EventReader, opts: LatencyOptions): Promise<LatencyReport> {
  const range = await resolveRange(reader, opts.filter);
  const limit = opts.limit ?? 20;
  // Only completed requests carry the whole latency; RequestReceived has none.
  const base: EventFilter = {
    ...inRange(opts.filter, range),
    longRunning: false,
    stage: ['ResponseComplete'],
  };
  const top = (groupBy: GroupKey[], order = 'p99') => ({
    groupBy,
    orderBy: [{ key: order, desc: true }],
    limit,
  });

  // Every query at once: the store runs them side by side, and the groupings of the completed
  // requests in one pass where it can.
  const [[overall, vr, subj, ua, heavy, series], slow, lists, throttled, errors] = await Promise.all([
    aggregateSets(reader, {
      filter: base,
      measures: MEASURES,
      sets: [
        { groupBy: [] },
        top(['verb', 'resource', 'subresource']),
        top(['subject']),
        top(['user_agent']),
        top(['subject', 'user_agent'], 'total'),
        { groupBy: [{ bucket: 'ts', everyMs: range.bucketMs }], orderBy: [{ key: 'bucket' }] },
      ],
    }),
    reader.search({
      filter: base,
      sort: 'latency',
      limit,
      columns: [
        'ts',
        'audit_id',
        'subject',
        'user_agent',
        'verb',
        'resource',
        'namespace',
        'name',
        'code',
        'latency_ms',
        'latency_breakdown',
      ],
    }),
    reader.aggregate({
      filter: {
        ...base,
        verb: ['list'],
        noNamespace: true,
        nonResource: false,
        textExcludes: 'resourceVersion=',
      },
      groupBy: ['subject', 'user_agent', 'resource'],
      measures: { count: { fn: 'count' }, p99: MEASURES.p99 as Measure },
      orderBy: [{ key: 'count', desc: true }],
      limit,
    }),
    reader.aggregate({
      filter: { ...inRange(opts.filter, range), code: [{ min: 429, max: 429 }] },
      groupBy: ['subject', 'user_agent'],
      measures: { count: { fn: 'count' } },
      orderBy: [{ key: 'count', desc: true }],
      limit,
    }),
    reader.aggregate({
      filter: { ...inRange(opts.filter, range), code: [{ min: 500, max: 599 }] },
      groupBy: ['resource', 'verb', 'code'],
      measures: { count: { fn: 'count' } },
      orderBy: [{ key: 'count', desc: true }],
      limit,
    }),
  ]);

  const slowest: SlowRequest[] = slow.rows.map((r) => ({
    ts: String(r.ts),
    auditId: String(r.audit_id),
    subject: str(r.subject),
    userAgent: str(r.user_agent),
    verb: String(r.verb),
    resource: str(r.resource),
    namespace: str(r.namespace),
    name: str(r.name),
    code: num(r.code),
    latencyMs: num(r.latency_ms) ?? 0,
    breakdown: breakdownOf(r.latency_breakdown),
  }));
  const breakdownOfSlowest: Record<string, number> = {};
  for (const s of slowest)
    for (const [k, v] of Object.entries(s.breakdown ?? {}))
      breakdownOfSlowest[k] = (breakdownOfSlowest[k] ?? 0) + v;

  return {
    range,
    overall: overall[0] === undefined ? stats({}) : stats(overall[0]),
    byVerbResource: vr.map((r) => ({
      verb: String(r.verb),
      resource: str(r.resource),
      subresource: str(r.subresource),
      ...stats(r),
    })),
    bySubject: subj.map((r) => ({ subject: str(r.subject), ...stats(r) })),
    byUserAgent: ua.map((r) => ({ userAgent: str(r.user_agent), ...stats(r) })),
    heaviestClients: heavy.map((r) => ({
      subject: str(r.subject),
      userAgent: str(r.user_agent),
      ...stats(r),
    })),
    slowest,
    breakdownOfSlowest,
    p99Series: series.map((r) => ({ bucket: String(r.bucket), count: num(r.count) ?? 0, p99Ms: num(r.p99) })),
    expensiveLists: lists.map((r) => ({
      subject: str(r.subject),
      userAgent: str(r.user_agent),
      resource: str(r.resource),
      count: num(r.count) ?? 0,
      p99Ms: num(r.p99),
    })),
    throttled: throttled.map((r) => ({
      subject: str(r.subject),
      userAgent: str(r.user_agent),
      count: num(r.count) ?? 0,
    })),
    serverErrors: errors.map((r) => ({
      resource: str(r.resource),
      verb: String(r.verb),
      code: num(r.code),
      count: num(r.count) ?? 0,
    })),
  };
}

/** The breakdown column as the store returns it (an object, a map as entries, or JSON text). */
function breakdownOf(v: unknown): Record<string, number> | null {
  if (v === null || v === undefined) return null;
  let o: unknown = v;
  if (typeof v === 'string') {
    try {
      o = JSON.parse(v);
    } catch {
      return null;
    }
  }
  const out: Record<string, number> = {};
  if (Array.isArray(o)) {
    for (const e of o as { key?: unknown; value?: unknown }[])
      if (typeof e.key === 'string' && typeof e.value === 'number') out[e.key] = e.value;
  } else if (typeof o === 'object' && o !== null) {
    for (const [k, x] of Object.entries(o)) if (typeof x === 'number') out[k] = x;
  }
  return Object.keys(out).length === 0 ? null : out;
}
