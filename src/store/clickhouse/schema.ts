/**
 * The ClickHouse schema, written for the oldest server kaudit supports (Debian's 18.16) and valid on
 * current ones: no DateTime64 (a DateTime for partitions and the sorting key, microseconds in an
 * Int64 beside it), no Map (the latency breakdown is JSON text), no codecs, no TTL, no Nullable in
 * the sorting key. `<table>` is the physical table (internal, may change); `events` is the view
 * users query with `kaudit query`.
 */
import { sqlIdentifier, sqlString } from './sql-literal.js';

/** The layout of the tables; recorded in `<table>_meta`. */
export const SCHEMA_VERSION = 1;

/** Columns of the physical table, in order, with their ClickHouse types. */
export const TABLE_COLUMNS: readonly (readonly [string, string])[] = [
  ['ts', "DateTime('UTC')"],
  ['ts_us', 'Int64'],
  ['stage_ts_us', 'Nullable(Int64)'],
  ['audit_id', 'String'],
  ['stage', 'String'],
  ['level', 'Nullable(String)'],
  ['verb', 'Nullable(String)'],
  ['username', 'Nullable(String)'],
  ['user_uid', 'Nullable(String)'],
  ['groups', 'Array(String)'],
  ['impersonated_user', 'Nullable(String)'],
  ['subject', 'Nullable(String)'],
  ['source_ip', 'Nullable(String)'],
  ['source_ips', 'Array(String)'],
  ['user_agent', 'Nullable(String)'],
  ['api_group', 'Nullable(String)'],
  ['api_version', 'Nullable(String)'],
  ['resource', 'Nullable(String)'],
  ['subresource', 'Nullable(String)'],
  ['namespace', 'Nullable(String)'],
  ['name', 'Nullable(String)'],
  ['request_uri', 'Nullable(String)'],
  ['code', 'Nullable(Int32)'],
  ['decision', 'Nullable(String)'],
  ['decision_source', 'Nullable(String)'],
  ['reason', 'Nullable(String)'],
  // Microseconds, exact: 18.16 reads Float64 text inexactly (1.582 came back 1.5819999999999999).
  ['latency_us', 'Nullable(Int64)'],
  ['long_running', 'UInt8'],
  // JSON object text of model/derive.ts latency_breakdown; '' when the event has none.
  ['latency_breakdown', 'String'],
  ['truncated', 'UInt8'],
  ['cluster', 'String'],
  ['ingested_us', 'Int64'],
  ['raw', 'String'],
];

/** Names of the tables of one store: `table` is what reads and writes address. */
export interface TableNames {
  database: string;
  /** The table read and written: the MergeTree itself, or the Distributed table over the shards. */
  table: string;
  /** The MergeTree on each server: `table` itself on a single node, `<table>_local` when distributed. */
  local: string;
  meta: string;
  view: string;
}

export function tableNames(database: string, table: string, distributed: boolean): TableNames {
  return {
    database,
    table,
    local: distributed ? `${table}_local` : table,
    meta: `${table}_meta`,
    view: table === 'audit_events' ? 'events' : `${table}_events`,
  };
}

const q = (db: string, t: string) => `${sqlIdentifier(db)}.${sqlIdentifier(t)}`;

/**
 * The MergeTree: one partition per day (retention drops whole days), sorted by cluster, hour,
 * subject and resource (the filters of searches and reports), then auditID and stage. Replacing on
 * the whole key: the store writes each event once (see clickhouse-store.ts), and should two writers
 * ever race on the same event, merges keep one copy.
 */
export function createLocalTable(n: TableNames): string {
  const cols = TABLE_COLUMNS.map(([c, t]) => `  ${sqlIdentifier(c)} ${t}`).join(',\n');
  return `CREATE TABLE IF NOT EXISTS ${q(n.database, n.local)} (
${cols}
) ENGINE = ReplacingMergeTree(ingested_us)
PARTITION BY toYYYYMMDD(ts)
ORDER BY (cluster, toStartOfHour(ts), ifNull(subject, ''), ifNull(resource, ''), audit_id, stage)`;
}

/**
 * The Distributed table over the shards of `cluster` (a remote_servers entry). The sharding key
 * puts every copy of an event on one shard, so each shard's de-duplication sees them all.
 */
export function createDistributedTable(n: TableNames, cluster: string): string {
  return `CREATE TABLE IF NOT EXISTS ${q(n.database, n.table)} AS ${q(n.database, n.local)}
ENGINE = Distributed(${sqlIdentifier(cluster)}, ${sqlIdentifier(n.database)}, ${sqlIdentifier(n.local)}, cityHash64(cluster, audit_id))`;
}

export function createMetaTable(n: TableNames): string {
  return `CREATE TABLE IF NOT EXISTS ${q(n.database, n.meta)} (key String, value String, at DateTime) ENGINE = TinyLog`;
}

/**
 * The public view: the columns of the embedded store's `events` view, in its order. ts, stage_ts and
 * ingested_at are DateTime (seconds): 18.16 has no sub-second time type; ts_us in the table has
 * the microseconds.
 */
export function createView(n: TableNames): string {
  return `CREATE VIEW IF NOT EXISTS ${q(n.database, n.view)} AS SELECT
  ts, toDateTime(intDiv(ifNull(stage_ts_us, ts_us), 1000000), 'UTC') AS stage_ts, audit_id, stage, level, verb,
  username, user_uid, groups, impersonated_user, subject, source_ip, source_ips, user_agent, api_group, api_version,
  resource, subresource, namespace, name, request_uri, code, decision, decision_source, reason, latency_us / 1000 AS latency_ms,
  long_running, latency_breakdown, truncated, cluster, toDateTime(intDiv(ingested_us, 1000000), 'UTC') AS ingested_at, raw
FROM ${q(n.database, n.table)}`;
}

/** The schema version recorded (the highest one: `store init` adds a row per upgrade); n = 0 when none. */
export function metaVersionQuery(n: TableNames): string {
  return `SELECT count() AS n, max(toUInt32OrZero(value)) AS value FROM ${q(n.database, n.meta)} WHERE key = ${sqlString('schema_version')}`;
}

export function quoted(database: string, table: string): string {
  return q(database, table);
}
