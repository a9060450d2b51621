/**
 * The read side of every Store, described once and compiled per backend (store/<backend>/): which
 * events (EventFilter), which rows (SearchQuery, ScanQuery) and which aggregates (AggregateQuery).
 * The memory store evaluates them in JS from model/derive.ts and is the reference the other
 * backends are tested against (the store contract suite).
 */

/** The columns of the `events` view, in order: the same names and meaning on every backend. */
export const EVENT_COLUMNS = [
  'ts',
  'stage_ts',
  'audit_id',
  'stage',
  'level',
  'verb',
  'username',
  'user_uid',
  'groups',
  'impersonated_user',
  'subject',
  'source_ip',
  'source_ips',
  'user_agent',
  'api_group',
  'api_version',
  'resource',
  'subresource',
  'namespace',
  'name',
  'request_uri',
  'code',
  'decision',
  'decision_source',
  'reason',
  'latency_ms',
  'long_running',
  'latency_breakdown',
  'truncated',
  'cluster',
  'ingested_at',
  'raw',
] as const;

export type EventColumn = (typeof EVENT_COLUMNS)[number];

/**
 * Columns a query may group by or count distinct values of: single values (lists and the raw
 * event are not groupable). `code_class` is `code / 100` (2, 4, 5) and `hour`/`day` are not here:
 * time buckets are a GroupKey of their own.
 */
export const GROUP_COLUMNS = [
  'audit_id',
  'stage',
  'level',
  'verb',
  'username',
  /** A list: groups compare element by element. */
  'groups',
  'impersonated_user',
  'subject',
  'source_ip',
  'user_agent',
  'api_group',
  'api_version',
  'resource',
  'subresource',
  'namespace',
  'name',
  'request_uri',
  'code',
  'code_class',
  'decision',
  'decision_source',
  'long_running',
  'truncated',
  'cluster',
] as const;

export type GroupColumn = (typeof GROUP_COLUMNS)[number];

/** Numeric or time columns a measure may take the min/max/sum/quantile of. */
export const MEASURE_COLUMNS = ['ts', 'stage_ts', 'latency_ms', 'code', 'ingested_at'] as const;
export type MeasureColumn = (typeof MEASURE_COLUMNS)[number];

/** An inclusive range of response codes; `{min: 400, max: 499}` is "4xx". */
export interface CodeRange {
  min: number;
  max: number;
}

/**
 * Which events. Every field is optional; present fields are ANDed, the values of one list field
 * ORed. Strings match exactly unless the field says otherwise.
 */
export interface EventFilter {
  /** Inclusive, RFC3339 UTC, on `ts` (requestReceivedTimestamp). */
  since?: string;
  /** Exclusive, RFC3339 UTC. */
  until?: string;
  cluster?: string[];
  /** user.username */
  user?: string[];
  /** The impersonated user when present, else the user. */
  subject?: string[];
  /** A member of user.groups. */
  userGroup?: string[];
  verb?: string[];
  /**
   * `{resource: 'pods'}` is pods itself (no subresource); `{resource: 'pods', subresource: 'exec'}`
   * is pods/exec; `{resource: 'pods', subresource: '*'}` is pods and every subresource of it.
   */
  resource?: { resource: string; subresource?: string }[];
  /** objectRef.apiGroup; '' is the core group. */
  apiGroup?: string[];
  namespace?: string[];
  name?: string[];
  stage?: string[];
  level?: string[];
  auditId?: string[];
  code?: CodeRange[];
  /** 401 and 403. */
  denied?: boolean;
  /** `allow` or `forbid` (the annotation, else derived from the response: see model/derive.ts). */
  decision?: string[];
  /** Substring of user_agent. */
  userAgent?: string;
  /** Exact source IP (any of sourceIPs). */
  sourceIp?: string[];
  /** Substring of request_uri. */
  text?: string;
  minLatencyMs?: number;
  longRunning?: boolean;
  /** Requests with no objectRef (non-resource URLs such as /healthz) when true; resource requests when false. */
  nonResource?: boolean;
  /** Requests without a namespace (cluster-scoped objects, or lists across all namespaces) when true. */
  noNamespace?: boolean;
  /** request_uri does not contain this substring. */
  textExcludes?: string;
  /**
   * Events stored after this position in ingest order (an INGEST_CURSOR_COLUMN value of an
   * ingest-order scan): what a reader that follows the store has not read yet.
   */
  ingestedAfter?: string;
}

export type SortOrder = 'time' | 'time_asc' | 'latency';

export interface SearchQuery {
  filter: EventFilter;
  /** Columns of EVENT_COLUMNS; default SEARCH_DEFAULT_COLUMNS. */
  columns?: readonly EventColumn[];
  /** `time`: newest first (default); `time_asc`: oldest first; `latency`: slowest first. */
  sort?: SortOrder;
  limit: number;
  /** The `next` of the previous page. */
  cursor?: string;
}

export interface SearchPage {
  rows: Record<string, unknown>[];
  /** Present when more rows follow: pass it as `cursor` for the next page. */
  next?: string;
}

export const SEARCH_DEFAULT_COLUMNS: readonly EventColumn[] = [
  'ts',
  'cluster',
  'subject',
  'verb',
  'resource',
  'subresource',
  'namespace',
  'name',
  'code',
  'decision',
  'latency_ms',
  'source_ip',
  'user_agent',
  'audit_id',
  'stage',
  'username',
  'request_uri',
];

/**
 * Rows in pages, with bounded memory: for passes over events. In time order (oldest first) by
 * default; in ingest order with `order: 'ingested'`.
 */
export interface ScanQuery {
  filter: EventFilter;
  columns: readonly EventColumn[];
  /** Rows per page; default 10,000. */
  pageRows?: number;
  /**
   * `time` (default): by `ts`, ties by auditID, stage, cluster. `ingested`: the order the store took
   * the events in, by (ingested_at in µs, cluster, auditID, stage), for readers that follow the store
   * (forwarders): each row then also carries INGEST_CURSOR_COLUMN, its position, which
   * `filter.ingestedAfter` resumes after. A store's commits get strictly increasing ingested_at, so
   * rows stored later always come later.
   */
  order?: 'time' | 'ingested';
}

/** The extra column of an ingest-order scan: the row's position, to resume after it. */
export const INGEST_CURSOR_COLUMN = 'ingest_cursor';

/** A position in ingest order: (ingested_at in µs, cluster, auditID, stage). */
export interface IngestPosition {
  us: number;
  cluster: string;
  auditId: string;
  stage: string;
}

/** The opaque text of a position (base64url JSON), as rows and cursors carry it. */
export function encodeIngestCursor(p: IngestPosition): string {
  return Buffer.from(JSON.stringify([p.us, p.cluster, p.auditId, p.stage])).toString('base64url');
}

/** The position of a cursor; throws on text that is not one. */
export function decodeIngestCursor(text: string): IngestPosition {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw new Error(`bad ingest cursor: ${text.slice(0, 40)}`);
  }
  if (
    !Array.isArray(v) ||
    v.length !== 4 ||
    !Number.isSafeInteger(v[0]) ||
    typeof v[1] !== 'string' ||
    typeof v[2] !== 'string' ||
    typeof v[3] !== 'string'
  )
    throw new Error(`bad ingest cursor: ${text.slice(0, 40)}`);
  return { us: v[0] as number, cluster: v[1], auditId: v[2], stage: v[3] };
}

/** Orders positions as an ingest-order scan does. */
export function compareIngestPositions(a: IngestPosition, b: IngestPosition): number {
  if (a.us !== b.us) return a.us < b.us ? -1 : 1;
  for (const k of ['cluster', 'auditId', 'stage'] as const) if (a[k] !== b[k]) return a[k] < b[k] ? -1 : 1;
  return 0;
}

export type GroupKey = GroupColumn | { bucket: 'ts'; everyMs: number };

export type Measure =
  | { fn: 'count' }
  | { fn: 'countDistinct'; column: GroupColumn }
  | { fn: 'min' | 'max' | 'sum' | 'avg'; column: MeasureColumn }
  /**
   * Nearest-rank quantile (the value at rank ceil(q * n) of the sorted non-null values), exact on
   * every backend so that reports agree; 0 < q <= 1.
   */
  | { fn: 'quantile'; column: MeasureColumn; q: number }
  /** Any one value of the group (the same one on every call for the same data is not promised). */
  | { fn: 'any'; column: GroupColumn }
  /** Up to `limit` distinct values, sorted. */
  | { fn: 'distinct'; column: GroupColumn; limit: number };

export interface AggregateQuery {
  filter: EventFilter;
  groupBy: readonly GroupKey[];
  /** Result column name -> measure. */
  measures: Readonly<Record<string, Measure>>;
  /**
   * By a group column (its name; a time bucket is `bucket`) or a measure name. Ties are broken by
   * the group keys in order, ascending, so results are the same on every backend.
   */
  orderBy?: readonly { key: string; desc?: boolean }[];
  limit?: number;
}

/**
 * Several groupings of the same events with the same measures, each ordered and limited on its own
 * (read with store/aggregate-sets.ts aggregateSets): what a report asks in one go, which a backend
 * may compute in one pass.
 */
export interface AggregateSetsQuery {
  filter: EventFilter;
  measures: Readonly<Record<string, Measure>>;
  sets: readonly Pick<AggregateQuery, 'groupBy' | 'orderBy' | 'limit'>[];
}

/**
 * One row per group: the group columns (a time bucket as `bucket`, RFC3339 UTC of its start) and the
 * measures. Times are RFC3339 UTC strings with milliseconds; counts and numbers are numbers.
 */
export type AggregateRow = Record<string, string | number | boolean | null | string[]>;
