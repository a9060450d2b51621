import { STAGING_ROW } from '../../model/event-scan.js';

/**
 * DuckDB schema. `audit_events` is the physical table (internal, may change); `events` is the
 * documented public view users query with SQL.
 */

/**
 * The layout of a file's audit_events table (kaudit_meta schema_version):
 * - 3: `decision` holds the derived decision (the annotation, else read from an authorizer's 403
 *   message) beside `decision_source`, and `long_running` is stored: reports filter and group on
 *   them, and computing them in the view read every stored event's text (the decision) or
 *   compared strings row by row where a stored column is filtered inside the scan. The text of
 *   events answered 400 or more is in `raw_failed`, the rest in `raw`: DuckDB decompresses a
 *   column a vector at a time, and failures are spread over every vector, so reading the text of
 *   1,136 failures among 1M events decompressed all of `raw` (190 ms); `raw_failed` takes ~15 ms.
 *   Filling them at insert costs next to nothing.
 * - 2: `raw` is a BLOB (the event's UTF-8 bytes, checked before staging), so DuckDB does not scan
 *   every stored event again for non-ASCII text; `audit_id` is stored uncompressed (unique values:
 *   compressing them cost more than the bytes saved); `subject`, `source_ip`, `long_running` and
 *   `latency_ms` are computed by the view from other columns.
 * - 1: all columns stored, `raw` VARCHAR.
 * A file of layout 1 is migrated when opened for writing (migrate.ts) and read as it is when opened
 * read-only. Measured in instructions per import (callgrind): the BLOB took 10% off and the rest
 * another 6%.
 */
export const SCHEMA_VERSION = 3;

export const CREATE_META = 'CREATE TABLE IF NOT EXISTS kaudit_meta (key VARCHAR PRIMARY KEY, value VARCHAR);';

/** The table's columns, in order, with their types: what insertList() fills. */
const TABLE: readonly (readonly [string, string])[] = [
  ['ts', 'TIMESTAMP NOT NULL'],
  ['stage_ts', 'TIMESTAMP'],
  ['audit_id', 'VARCHAR NOT NULL USING COMPRESSION uncompressed'],
  ['stage', 'VARCHAR NOT NULL'],
  ['level', 'VARCHAR'],
  ['verb', 'VARCHAR'],
  ['username', 'VARCHAR'],
  ['user_uid', 'VARCHAR'],
  ['groups', 'VARCHAR[]'],
  ['impersonated_user', 'VARCHAR'],
  ['source_ips', 'VARCHAR[]'],
  ['user_agent', 'VARCHAR'],
  ['api_group', 'VARCHAR'],
  ['api_version', 'VARCHAR'],
  ['resource', 'VARCHAR'],
  ['subresource', 'VARCHAR'],
  ['namespace', 'VARCHAR'],
  ['name', 'VARCHAR'],
  ['request_uri', 'VARCHAR'],
  ['code', 'INTEGER'],
  ['decision', 'VARCHAR'],
  ['decision_source', 'VARCHAR'],
  ['reason', 'VARCHAR'],
  ['long_running', 'BOOLEAN'],
  ['latency_breakdown', 'MAP(VARCHAR, DOUBLE)'],
  ['truncated', 'BOOLEAN'],
  ['cluster', 'VARCHAR NOT NULL'],
  ['ingested_at', 'TIMESTAMP NOT NULL'],
  ['raw', 'BLOB USING COMPRESSION zstd'],
  ['raw_failed', 'BLOB USING COMPRESSION zstd'],
];

export const TABLE_COLUMNS: readonly string[] = TABLE.map(([name]) => name);

export function createTable(name: string): string {
  return `CREATE TABLE ${name} (\n${TABLE.map(([c, type]) => `  ${c} ${type}`).join(',\n')}\n);`;
}

/** What a file's audit_events table holds, read from its columns (a development build's may mix). */
export interface TableShape {
  /** raw is a BLOB (layout 2), not VARCHAR. */
  rawIsBlob: boolean;
  /** subject, source_ip, long_running and latency_ms are stored (layout 1), not computed. */
  storesDerived: boolean;
  /** decision_source is stored and decision is the derived one (layout 3). */
  storesDecisionSource: boolean;
  /** The text of failed requests is in raw_failed (layout 3). */
  splitsRaw: boolean;
}

/** The layout number kaudit_meta records for a table of this shape. */
export function layoutOf(shape: TableShape): number {
  if (!shape.rawIsBlob || shape.storesDerived) return 1;
  return shape.storesDecisionSource && shape.splitsRaw ? 3 : 2;
}

/**
 * Where an event's bytes are stored: in `raw_failed` for a failed request (code 400 or more), else
 * in `raw`; the other is NULL.
 */
const FAILED = 'code >= 400';
function splitRaw(bytes: string): { raw: string; failed: string } {
  return {
    raw: `CASE WHEN ${FAILED} THEN NULL ELSE ${bytes} END`,
    failed: `CASE WHEN ${FAILED} THEN ${bytes} END`,
  };
}

/**
 * The current table's columns read from a table of an older shape: the event's bytes split between
 * raw and raw_failed (a VARCHAR raw becomes its bytes: encode() keeps them as they are, where a cast
 * to BLOB would read backslash escapes in the text), the decision derived where only the annotation
 * was stored, and long_running computed where it was not stored. Layout 1's other stored derived
 * columns are left out (the view computes them).
 */
export function currentColumnsFrom(shape: TableShape): string {
  if (layoutOf(shape) === SCHEMA_VERSION) return TABLE_COLUMNS.join(', ');
  const bytes = shape.splitsRaw ? 'coalesce(raw, raw_failed)' : shape.rawIsBlob ? 'raw' : 'encode(raw)';
  const text = shape.rawIsBlob ? `decode(${bytes})` : 'raw';
  const split = shape.splitsRaw ? { raw: 'raw', failed: 'raw_failed' } : splitRaw(bytes);
  const derived = derivedDecision(
    'decision',
    'code',
    `json_extract_string(${text}, '$.responseStatus.message')`,
  );
  return TABLE_COLUMNS.map((c) => {
    if (c === 'raw') return `${split.raw} AS raw`;
    if (c === 'raw_failed') return `${split.failed} AS raw_failed`;
    if (c === 'decision' && !shape.storesDecisionSource) return `${derived.decision} AS decision`;
    if (c === 'decision_source' && !shape.storesDecisionSource) return `${derived.source} AS decision_source`;
    if (c === 'long_running' && !shape.storesDerived)
      return `${longRunning('verb', 'subresource')} AS long_running`;
    return c;
  }).join(', ');
}

/**
 * kube-apiserver's BasicLongRunningRequestCheck: verbs watch, proxy; subresources attach, exec,
 * proxy, log, portforward.
 */
function longRunning(verb: string, subresource: string): string {
  return `coalesce(${verb} IN ('watch', 'proxy') OR ${subresource} IN ('attach', 'exec', 'proxy', 'log', 'portforward'), false)`;
}
/**
 * An event's latency in integer microseconds; none when the event has no stage time of its own
 * (stored as its receive time). The view's latency_ms is this / 1000.0; min, max and quantiles are
 * computed over it and divided after (read.ts), the same values, sorted twice as fast as doubles.
 */
export const LATENCY_US = 'CASE WHEN stage_ts = ts THEN NULL ELSE epoch_us(stage_ts) - epoch_us(ts) END';
const LATENCY_MS = `(${LATENCY_US}) / 1000.0`;

/**
 * model/derive.ts decisionOf: the annotation, else `forbid` for a 403 carrying the authorizer's own
 * message (events older than the annotation). CASE evaluates `message` only for 403s without the
 * annotation.
 */
function derivedDecision(
  annotation: string,
  code: string,
  message: string,
): { decision: string; source: string } {
  const fromResponse = `(${code} = 403 AND regexp_matches(coalesce(${message}, ''), 'forbidden: User "[^"]*" cannot \\S+ '))`;
  return {
    decision: `CASE WHEN ${annotation} IS NOT NULL THEN ${annotation} WHEN ${fromResponse} THEN 'forbid' END`,
    source: `CASE WHEN ${annotation} IS NOT NULL THEN 'annotation' WHEN ${fromResponse} THEN 'response' END`,
  };
}

/** The internal view read.ts uses for reads of failed requests only: `events`' columns, the text read from raw_failed alone. */
export const FAILED_EVENTS_VIEW = 'failed_events';

/**
 * The public view `events` over `from`, a relation with the current table's columns: the table
 * itself, or an older layout's table seen through currentColumnsFrom() (a read-only open), and
 * beside it the internal FAILED_EVENTS_VIEW. `temp`: temporary views of one connection, which
 * write nothing to the file.
 */
export function createView(from = 'audit_events', temp = false): string {
  const view = (
    name: string,
    raw: string,
    where: string,
  ) => `CREATE OR REPLACE ${temp ? 'TEMP ' : ''}VIEW ${name} AS SELECT
  ts, stage_ts, audit_id, stage, level, verb, username, user_uid, groups, impersonated_user,
  coalesce(impersonated_user, username) AS subject, source_ips[1] AS source_ip, source_ips, user_agent, api_group,
  api_version, resource, subresource, namespace, name, request_uri, code, decision, decision_source, reason,
  ${LATENCY_MS} AS latency_ms, long_running, latency_breakdown, truncated,
  cluster, ingested_at, ${raw} AS raw
FROM ${from}${where};`;
  return `${view('events', 'decode(coalesce(raw, raw_failed))', '')}\n${view(FAILED_EVENTS_VIEW, 'decode(raw_failed)', ` WHERE ${FAILED}`)}`;
}

/** The JSON structure json_transform extracts; unknown or mistyped fields become NULL, never errors. */
const EVENT_STRUCTURE = JSON.stringify({
  auditID: 'VARCHAR',
  stage: 'VARCHAR',
  level: 'VARCHAR',
  verb: 'VARCHAR',
  requestURI: 'VARCHAR',
  user: { username: 'VARCHAR', uid: 'VARCHAR', groups: ['VARCHAR'] },
  impersonatedUser: { username: 'VARCHAR' },
  sourceIPs: ['VARCHAR'],
  userAgent: 'VARCHAR',
  objectRef: {
    resource: 'VARCHAR',
    namespace: 'VARCHAR',
    name: 'VARCHAR',
    apiGroup: 'VARCHAR',
    apiVersion: 'VARCHAR',
    subresource: 'VARCHAR',
  },
  // As JSON, so that kaudit_status_code sees the token's type: an INTEGER extraction would round
  // 200.5 and read "200" and true as codes.
  responseStatus: { code: 'JSON' },
  requestReceivedTimestamp: 'VARCHAR',
  stageTimestamp: 'VARCHAR',
  // audit2rbac-era v1 events and v1beta1 carry only `timestamp`.
  timestamp: 'VARCHAR',
  // Only the annotations every row needs, as struct fields: cheaper than a MAP per row.
  annotations: {
    'authorization.k8s.io/decision': 'VARCHAR',
    'authorization.k8s.io/reason': 'VARCHAR',
    'audit.k8s.io/truncated': 'VARCHAR',
  },
});

/**
 * The macros the extraction uses, each the SQL twin of a reference in model/derive.ts:
 * - kaudit_go_duration_ms: parseGoDurationMs, Go duration text (`2m3.5s`, `350.1µs`) to
 *   milliseconds. Only text wholly made of `<number><unit>` parts counts (a cast would also take
 *   `1e3`, `1.` or ` 1`), each part is multiplied by its unit's factor and the parts are added left
 *   to right as the reference does (so the doubles are equal, not close), and a sum past the float
 *   range (a duration written with hundreds of digits) is no duration.
 * - kaudit_ts: parseTimestampMicros, RFC 3339 with a four-digit year only (a cast alone would take
 *   year 12026, a space for the T, no offset at all).
 * - kaudit_status_code: statusCodeOf, a JSON number (not a string, not a boolean) whose value is
 *   an integer in int32 range, as JSON.parse reads it (so 2e2 and 200.0 are 200, 200.5 is none).
 */
export const CREATE_MACROS = `
CREATE OR REPLACE TEMP MACRO kaudit_finite(v) AS CASE WHEN isfinite(v) THEN v END;
CREATE OR REPLACE TEMP MACRO kaudit_unit_ms(u) AS CASE u
  WHEN 'ns' THEN 1e-6 WHEN 'us' THEN 1e-3 WHEN 'µs' THEN 1e-3 WHEN 'μs' THEN 1e-3 WHEN 'ms' THEN 1.0
  WHEN 's' THEN 1000.0 WHEN 'm' THEN 60000.0 WHEN 'h' THEN 3600000.0 END;
CREATE OR REPLACE TEMP MACRO kaudit_go_duration_ms(s) AS (
  CASE WHEN s IN ('0', '0s') THEN 0.0
       WHEN NOT regexp_full_match(s, '-?([0-9]*\\.?[0-9]+(ns|us|µs|μs|ms|s|m|h))+') THEN NULL
       ELSE kaudit_finite((CASE WHEN starts_with(s, '-') THEN -1.0 ELSE 1.0 END) * list_reduce(list_transform(
         regexp_extract_all(s, '([0-9]*\\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)', 0),
         p -> CAST(regexp_extract(p, '^[0-9]*\\.?[0-9]+') AS DOUBLE) * kaudit_unit_ms(regexp_extract(p, '(ns|us|µs|μs|ms|s|m|h)$'))),
         (a, b) -> a + b))
  END
);
-- kube-apiserver writes UTC ('Z'): a plain cast; other offsets go through TIMESTAMPTZ to convert.
CREATE OR REPLACE TEMP MACRO kaudit_ts(s) AS
  CASE WHEN NOT regexp_full_match(s, '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})') THEN NULL
       WHEN suffix(s, 'Z') THEN try_cast(s AS TIMESTAMP) ELSE try_cast(try_cast(s AS TIMESTAMPTZ) AS TIMESTAMP) END;
-- try_cast throughout: DuckDB evaluates each condition for every row, not only where the ones
-- before it hold.
CREATE OR REPLACE TEMP MACRO kaudit_int32(d) AS
  CASE WHEN d = trunc(d) AND d BETWEEN -2147483648 AND 2147483647 THEN try_cast(d AS INTEGER) END;
CREATE OR REPLACE TEMP MACRO kaudit_status_code(c) AS
  CASE WHEN json_type(c) IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN kaudit_int32(try_cast(c AS DOUBLE)) END;
`;

/** The SQL literal for a string. */
export function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/**
 * Rows `(i, lat, j)` from a staging file (model/event-scan.ts STAGING_ROW defines its format): the
 * batch index, whether the event may carry apiserver.latency.k8s.io annotations, and its text.
 */
export function stagingSource(stagingPath: string, maxLineBytes: number): string {
  // DuckDB sizes its read buffers from max_line_size, so it follows the batch's longest line. Its
  // default buffer, 16 lines' worth (32 MB per import), held memory for nothing: a batch is read as
  // fast through two lines' worth.
  const maxLine = Math.max(2 << 20, maxLineBytes + 64);
  const buffer = 2 * maxLine;
  const step = STAGING_ROW.indexStep;
  // ignore_errors: lines are checked for UTF-8 and raw separators before staging, so none should be
  // skipped; should one be, the store finds its index missing and refuses it instead of failing the batch.
  return `SELECT n // ${step} AS i, n % ${step} = ${STAGING_ROW.latencyBit} AS lat, j FROM read_csv(${sqlString(stagingPath)},
    delim = ${sqlString(String.fromCharCode(STAGING_ROW.separator))}, quote = '', escape = '', header = false,
    columns = {'j': 'VARCHAR', 'n': 'BIGINT'}, auto_detect = false, max_line_size = ${maxLine},
    buffer_size = ${buffer}, ignore_errors = true)`;
}

export function stagingSelect(stagingPath: string, cluster: string, maxLineBytes: number): string {
  return eventsSelect(stagingSource(stagingPath, maxLineBytes), cluster, true);
}

/**
 * Extracts every column from rows `(i, j)` of event JSON text. Rows that are not valid audit
 * events keep their index and get a `reject` reason instead. Also used by the ingest benchmark,
 * with DuckDB reading the log itself, as the native baseline. With `staging` the rows are a staging
 * file's (stagingSource): `lat`, false where the event surely has no apiserver.latency.k8s.io
 * annotation, which saves searching its text.
 */
export function eventsSelect(source: string, cluster: string, staging = false): string {
  const pass = staging ? 'lat, ' : '';
  const decision = derivedDecision(
    'e.annotations."authorization.k8s.io/decision"',
    'kaudit_status_code(e.responseStatus.code)',
    "json_extract_string(j, '$.responseStatus.message')",
  );
  return `
WITH parsed AS (
  -- try(): malformed JSON gives NULL instead of failing the batch; one parse per row.
  SELECT i, j, ${pass}try(json_transform(j, '${EVENT_STRUCTURE}')) AS e FROM (${source})
), typed AS (
  SELECT i, j, ${pass}e, kaudit_ts(coalesce(e.requestReceivedTimestamp, e.timestamp)) AS ts,
    kaudit_ts(coalesce(e.stageTimestamp, e.requestReceivedTimestamp, e.timestamp)) AS stage_ts FROM parsed
)
SELECT
  i,
  CASE
    WHEN e IS NULL THEN 'not JSON'
    WHEN e.auditID IS NULL OR e.auditID = '' THEN 'not an audit Event: missing field auditID'
    WHEN e.stage IS NULL OR e.stage NOT IN ('RequestReceived', 'ResponseStarted', 'ResponseComplete', 'Panic')
      THEN 'not an audit Event: missing or unknown stage'
    WHEN e.verb IS NULL THEN 'not an audit Event: missing field verb'
    WHEN ts IS NULL THEN 'not an audit Event: field requestReceivedTimestamp missing or not a timestamp'
  END AS reject,
  ts,
  stage_ts,
  e.auditID AS audit_id,
  e.stage AS stage,
  e.level AS level,
  e.verb AS verb,
  e.user.username AS username,
  e.user.uid AS user_uid,
  coalesce(e.user.groups, []::VARCHAR[]) AS groups,
  e.impersonatedUser.username AS impersonated_user,
  coalesce(e.impersonatedUser.username, e.user.username) AS subject,
  e.sourceIPs[1] AS source_ip,
  coalesce(e.sourceIPs, []::VARCHAR[]) AS source_ips,
  e.userAgent AS user_agent,
  CASE WHEN e.objectRef IS NULL THEN NULL ELSE coalesce(e.objectRef.apiGroup, '') END AS api_group,
  e.objectRef.apiVersion AS api_version,
  e.objectRef.resource AS resource,
  e.objectRef.subresource AS subresource,
  e.objectRef.namespace AS namespace,
  e.objectRef.name AS name,
  e.requestURI AS request_uri,
  kaudit_status_code(e.responseStatus.code) AS code,
  ${decision.decision} AS decision,
  ${decision.source} AS decision_source,
  e.annotations."authorization.k8s.io/reason" AS reason,
  ${LATENCY_MS} AS latency_ms,
  ${longRunning('e.verb', 'e.objectRef.subresource')} AS long_running,
  CASE WHEN ${staging ? 'lat AND ' : ''}contains(j, '"apiserver.latency.k8s.io/') THEN map_from_entries(list_filter(list_transform(
    list_filter(map_entries(try(json_transform(json_extract(j, '$.annotations'), '"MAP(VARCHAR, VARCHAR)"'))),
      x -> starts_with(x.key, 'apiserver.latency.k8s.io/')),
    x -> {'key': substr(x.key, 26), 'value': kaudit_go_duration_ms(x.value)}), x -> x.value IS NOT NULL)) END AS latency_breakdown,
  coalesce(e.annotations."audit.k8s.io/truncated" = 'true', false) AS truncated,
  ${sqlString(cluster)} AS cluster,
  j AS raw
FROM typed`;
}

/**
 * Columns of audit_events in table order, as the SELECT list that fills them from eventsSelect(),
 * with `ingestedAtUs` (microseconds since the epoch) as every row's ingested_at. encode() keeps the
 * text's bytes as they are (a cast to BLOB would read backslash escapes in it).
 */
export function insertList(ingestedAtUs: number): string {
  const bytes = splitRaw('encode(raw)');
  return `ts, stage_ts, audit_id, stage, level, verb, username, user_uid, groups, impersonated_user, source_ips,
  user_agent, api_group, api_version, resource, subresource, namespace, name, request_uri, code, decision, decision_source,
  reason, long_running, latency_breakdown, truncated, cluster, make_timestamp(${Math.trunc(ingestedAtUs)}::BIGINT),
  ${bytes.raw}, ${bytes.failed}`;
}
