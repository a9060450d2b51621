/**
 * The read primitive in plain JS over derived fields (model/derive.ts): the reference meaning of
 * every EventFilter field, search order, cursor, aggregate and measure. Obviously correct and slow;
 * the other backends are tested against it.
 */
import type { DerivedFields } from '../../model/derive.js';
import { orderRows } from '../order-rows.js';
import type {
  AggregateQuery,
  AggregateRow,
  EventColumn,
  EventFilter,
  GroupColumn,
  GroupKey,
  Measure,
  SortOrder,
} from '../query.js';
import { compareIngestPositions, decodeIngestCursor, type IngestPosition } from '../query.js';

/** A stored row: the derived columns, when it was stored, and the event's JSON. */
export interface MemoryRow extends DerivedFields {
  ingested_at: string;
  /** ingested_at in µs, the key of ingest order. */
  ingested_us: number;
  raw: string;
}

const lower = (v: string) => v.toLowerCase();
const ms = (t: string) => Date.parse(t);

export function matchesFilter(r: MemoryRow, f: EventFilter): boolean {
  const inList = (list: string[] | undefined, v: string | null) =>
    list === undefined || (v !== null && list.includes(v));
  if (f.since !== undefined && ms(r.ts) < ms(f.since)) return false;
  if (f.until !== undefined && ms(r.ts) >= ms(f.until)) return false;
  if (!inList(f.cluster, r.cluster)) return false;
  if (!inList(f.user, r.username)) return false;
  if (!inList(f.subject, r.subject)) return false;
  if (f.userGroup !== undefined && !r.groups.some((g) => f.userGroup?.includes(g))) return false;
  if (!inList(f.verb, r.verb)) return false;
  if (
    f.resource !== undefined &&
    !f.resource.some(
      (x) =>
        x.resource === r.resource &&
        (x.subresource === '*' ||
          (x.subresource === undefined ? r.subresource === null : x.subresource === r.subresource)),
    )
  )
    return false;
  if (!inList(f.apiGroup, r.api_group)) return false;
  if (!inList(f.namespace, r.namespace)) return false;
  if (!inList(f.name, r.name)) return false;
  if (!inList(f.stage, r.stage)) return false;
  if (!inList(f.level, r.level)) return false;
  if (!inList(f.auditId, r.audit_id)) return false;
  if (
    f.code !== undefined &&
    (r.code === null || !f.code.some((c) => (r.code as number) >= c.min && (r.code as number) <= c.max))
  )
    return false;
  if (f.denied !== undefined && (r.code === 401 || r.code === 403) !== f.denied) return false;
  if (!inList(f.decision, r.decision)) return false;
  if (
    f.userAgent !== undefined &&
    (r.user_agent === null || !lower(r.user_agent).includes(lower(f.userAgent)))
  )
    return false;
  if (f.sourceIp !== undefined && !r.source_ips.some((ip) => f.sourceIp?.includes(ip))) return false;
  if (f.text !== undefined && !r.request_uri.includes(f.text)) return false;
  if (f.textExcludes !== undefined && r.request_uri.includes(f.textExcludes)) return false;
  if (f.minLatencyMs !== undefined && (r.latency_ms === null || r.latency_ms < f.minLatencyMs)) return false;
  if (f.longRunning !== undefined && r.long_running !== f.longRunning) return false;
  if (f.nonResource !== undefined && (r.resource === null) !== f.nonResource) return false;
  if (f.noNamespace !== undefined && (r.namespace === null || r.namespace === '') !== f.noNamespace)
    return false;
  if (
    f.ingestedAfter !== undefined &&
    compareIngestPositions(ingestPosition(r), decodeIngestCursor(f.ingestedAfter)) <= 0
  )
    return false;
  return true;
}

/** A row's place in ingest order. */
export function ingestPosition(r: MemoryRow): IngestPosition {
  return { us: r.ingested_us, cluster: r.cluster, auditId: r.audit_id, stage: r.stage };
}

/** RFC3339 UTC with milliseconds: the one time format of every result. */
export function isoMs(t: string | number): string {
  return new Date(typeof t === 'number' ? t : ms(t)).toISOString();
}

export function columnValue(r: MemoryRow, c: EventColumn | GroupColumn): unknown {
  if (c === 'code_class') return r.code === null ? null : Math.floor(r.code / 100);
  if (c === 'ts' || c === 'stage_ts' || c === 'ingested_at') {
    const v = r[c];
    return v === null ? null : isoMs(v);
  }
  return r[c as keyof MemoryRow] ?? null;
}

/** The order of a search: newest first, oldest first, or slowest first; ties by auditID, stage, cluster. */
export function sortKey(r: MemoryRow, sort: SortOrder): (string | number)[] {
  const t = parseTsMicros(r.ts);
  if (sort === 'latency')
    return [-(r.latency_ms ?? Number.NEGATIVE_INFINITY), -t, r.audit_id, r.stage, r.cluster];
  return [sort === 'time_asc' ? t : -t, r.audit_id, r.stage, r.cluster];
}

function parseTsMicros(ts: string): number {
  const m = /\.(\d+)Z$/.exec(ts);
  const frac = Number(((m?.[1] ?? '') + '000000').slice(3, 6));
  return ms(ts) * 1000 + frac;
}

export function compareKeys(a: readonly (string | number)[], b: readonly (string | number)[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as string | number;
    const y = b[i] as string | number;
    if (x < y) return -1;
    if (x > y) return 1;
  }
  return 0;
}

function measure(rows: MemoryRow[], m: Measure): unknown {
  switch (m.fn) {
    case 'count':
      return rows.length;
    case 'countDistinct':
      return new Set(rows.map((r) => columnValue(r, m.column)).filter((v) => v !== null)).size;
    case 'any':
      return rows.map((r) => columnValue(r, m.column)).find((v) => v !== null) ?? null;
    case 'distinct':
      return [
        ...new Set(
          rows
            .map((r) => columnValue(r, m.column))
            .filter((v) => v !== null)
            .map(String),
        ),
      ]
        .sort()
        .slice(0, m.limit);
    default: {
      const time = m.column === 'ts' || m.column === 'stage_ts' || m.column === 'ingested_at';
      const values = rows
        .map((r) =>
          time
            ? r[m.column] === null
              ? null
              : ms(r[m.column] as string)
            : (r[m.column as keyof MemoryRow] as number | null),
        )
        .filter((v): v is number => v !== null && v !== undefined);
      if (values.length === 0) return m.fn === 'sum' ? null : null;
      let v: number;
      if (m.fn === 'min') v = Math.min(...values);
      else if (m.fn === 'max') v = Math.max(...values);
      else if (m.fn === 'sum') v = values.reduce((a, b) => a + b, 0);
      else if (m.fn === 'avg') v = values.reduce((a, b) => a + b, 0) / values.length;
      else {
        const q = m.fn === 'quantile' ? m.q : 0.5;
        values.sort((a, b) => a - b);
        v = values[Math.max(1, Math.ceil(q * values.length)) - 1] as number;
      }
      return time && m.fn !== 'sum' && m.fn !== 'avg' ? isoMs(v) : v;
    }
  }
}

function keyValue(r: MemoryRow, k: GroupKey): unknown {
  if (typeof k === 'string') return columnValue(r, k);
  const t = ms(r.ts);
  return isoMs(Math.floor(t / k.everyMs) * k.everyMs);
}

const keyName = (k: GroupKey) => (typeof k === 'string' ? k : 'bucket');

export function aggregateRows(all: readonly MemoryRow[], q: AggregateQuery): AggregateRow[] {
  const groups = new Map<string, { key: unknown[]; rows: MemoryRow[] }>();
  for (const r of all) {
    const key = q.groupBy.map((k) => keyValue(r, k));
    const id = JSON.stringify(key);
    let g = groups.get(id);
    if (g === undefined) {
      g = { key, rows: [] };
      groups.set(id, g);
    }
    g.rows.push(r);
  }
  // No group key: one row, even over no events (count 0).
  if (q.groupBy.length === 0 && groups.size === 0) groups.set('[]', { key: [], rows: [] });
  const out: AggregateRow[] = [];
  for (const g of groups.values()) {
    const row: AggregateRow = {};
    q.groupBy.forEach((k, i) => {
      row[keyName(k)] = g.key[i] as AggregateRow[string];
    });
    for (const [name, m] of Object.entries(q.measures))
      row[name] = measure(g.rows, m) as AggregateRow[string];
    out.push(row);
  }
  return orderRows(out, q);
}
