/**
 * The portable read primitive (store/query.ts) compiled to ClickHouse SQL over the physical table:
 * every value through sql-literal.ts (18.16 has no query parameters), times from the integer
 * microseconds, and results turned into the contract's format here, so that the answers equal the
 * memory store's reference (store/memory/evaluate.ts) and the embedded store's on the same events.
 */

import { parseTimestampMicros } from '../../model/derive.js';
import type { Row } from '../contract.js';
import { type Cursor, cursorAfter, decodeCursor } from '../cursor.js';
import {
  type AggregateQuery,
  type AggregateRow,
  decodeIngestCursor,
  EVENT_COLUMNS,
  type EventColumn,
  type EventFilter,
  encodeIngestCursor,
  GROUP_COLUMNS,
  type GroupKey,
  INGEST_CURSOR_COLUMN,
  type IngestPosition,
  MEASURE_COLUMNS,
  type Measure,
  type ScanQuery,
  SEARCH_DEFAULT_COLUMNS,
  type SearchPage,
  type SearchQuery,
  type SortOrder,
} from '../query.js';
import { sqlNumber, sqlString, sqlStringList } from './sql-literal.js';

/** How read.ts runs a query: rows as JSON objects, all at once or streamed. */
export interface QueryRunner {
  rows(sql: string): Promise<Row[]>;
  stream(sql: string): AsyncIterable<Row>;
}

/** Microseconds of a contract time (RFC3339). */
function usOf(t: string): number {
  const us = parseTimestampMicros(t);
  if (us !== null) return us;
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) throw new Error(`not a time: ${t}`);
  return ms * 1000;
}

/** RFC3339 UTC with milliseconds, as every backend returns times. */
export function isoOfUs(us: number): string {
  return new Date(Math.floor(us / 1000)).toISOString();
}

/** The WHERE clause of a filter (`1` when empty). */
export function whereOf(f: EventFilter): string {
  const w: string[] = [];
  const inList = (col: string, values: readonly string[] | undefined) => {
    if (values !== undefined) w.push(values.length === 0 ? '0' : `${col} IN ${sqlStringList(values)}`);
  };
  // ts (seconds, in the sorting key) narrows the parts read; ts_us decides.
  if (f.since !== undefined) {
    const us = usOf(f.since);
    w.push(`ts >= toDateTime(${sqlNumber(Math.floor(us / 1e6))}, 'UTC') AND ts_us >= ${sqlNumber(us)}`);
  }
  if (f.until !== undefined) {
    const us = usOf(f.until);
    w.push(`ts <= toDateTime(${sqlNumber(Math.floor(us / 1e6))}, 'UTC') AND ts_us < ${sqlNumber(us)}`);
  }
  inList('cluster', f.cluster);
  inList('username', f.user);
  inList('subject', f.subject);
  if (f.userGroup !== undefined)
    w.push(f.userGroup.length === 0 ? '0' : `hasAny(groups, [${f.userGroup.map(sqlString).join(', ')}])`);
  inList('verb', f.verb);
  if (f.resource !== undefined) {
    const alts = f.resource.map((r) => {
      const res = `resource = ${sqlString(r.resource)}`;
      if (r.subresource === '*') return `(${res})`;
      if (r.subresource === undefined) return `(${res} AND isNull(subresource))`;
      return `(${res} AND subresource = ${sqlString(r.subresource)})`;
    });
    w.push(alts.length === 0 ? '0' : `(${alts.join(' OR ')})`);
  }
  inList('api_group', f.apiGroup);
  inList('namespace', f.namespace);
  inList('name', f.name);
  inList('stage', f.stage);
  inList('level', f.level);
  inList('audit_id', f.auditId);
  if (f.code !== undefined)
    w.push(
      f.code.length === 0
        ? '0'
        : `(${f.code.map((c) => `(code >= ${sqlNumber(c.min)} AND code <= ${sqlNumber(c.max)})`).join(' OR ')})`,
    );
  if (f.denied !== undefined) w.push(`(ifNull(code, 0) IN (401, 403)) = ${f.denied ? 1 : 0}`);
  inList('decision', f.decision);
  if (f.userAgent !== undefined)
    w.push(
      `(isNotNull(user_agent) AND position(lowerUTF8(ifNull(user_agent, '')), lowerUTF8(${sqlString(f.userAgent)})) > 0)`,
    );
  if (f.sourceIp !== undefined)
    w.push(f.sourceIp.length === 0 ? '0' : `hasAny(source_ips, [${f.sourceIp.map(sqlString).join(', ')}])`);
  if (f.text !== undefined) w.push(`position(ifNull(request_uri, ''), ${sqlString(f.text)}) > 0`);
  if (f.textExcludes !== undefined)
    w.push(`position(ifNull(request_uri, ''), ${sqlString(f.textExcludes)}) = 0`);
  if (f.minLatencyMs !== undefined)
    w.push(`ifNull(latency_us >= ${sqlNumber(minLatencyUs(f.minLatencyMs))}, 0) = 1`);
  if (f.longRunning !== undefined) w.push(`long_running = ${f.longRunning ? 1 : 0}`);
  if (f.nonResource !== undefined) w.push(`isNull(resource) = ${f.nonResource ? 1 : 0}`);
  if (f.noNamespace !== undefined) w.push(`(ifNull(namespace, '') = '') = ${f.noNamespace ? 1 : 0}`);
  if (f.ingestedAfter !== undefined) w.push(afterIngestPosition(decodeIngestCursor(f.ingestedAfter)));
  return w.length === 0 ? '1' : w.join(' AND ');
}

const TIME_COLUMNS: Record<string, string> = {
  ts: 'ts_us',
  stage_ts: 'ifNull(stage_ts_us, ts_us)',
  ingested_at: 'ingested_us',
};

/** Columns kept in other units: times in microseconds, the latency in microseconds. */
const COMPUTED: Record<string, string> = { ...TIME_COLUMNS, latency_ms: 'latency_us' };

/**
 * A selected event column, as ClickHouse returns it before convert(). A computed one takes a name
 * of its own: ClickHouse lets a SELECT alias shadow the column in WHERE, and `ts` must stay the
 * DateTime there.
 */
function selectColumn(c: EventColumn): string {
  const expr = COMPUTED[c];
  return expr === undefined ? c : `${expr} AS __${c}`;
}

const BOOLEAN_COLUMNS = new Set(['long_running', 'truncated']);
const NUMBER_COLUMNS = new Set(['code', 'code_class']);

/** A value as the contract returns it (memory store's project()). */
function convert(c: string, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (c in TIME_COLUMNS) return isoOfUs(Number(v));
  // The same division as model/derive.ts: the microseconds are exact, a Float64 column was not.
  if (c === 'latency_ms') return Number(v) / 1000;
  if (BOOLEAN_COLUMNS.has(c)) return Number(v) === 1;
  if (NUMBER_COLUMNS.has(c)) return Number(v);
  if (c === 'latency_breakdown') return v === '' ? null : (JSON.parse(String(v)) as unknown);
  return v;
}

function project(r: Row, columns: readonly EventColumn[]): Row {
  const out: Row = {};
  for (const c of columns) out[c] = convert(c, r[c in COMPUTED ? `__${c}` : c]);
  return out;
}

/** The smallest whole number of microseconds n with n / 1000 >= ms: `latency_ms >= ms` exactly. */
function minLatencyUs(ms: number): number {
  let n = Math.ceil(ms * 1000);
  while ((n - 1) / 1000 >= ms) n--;
  while (n / 1000 < ms) n++;
  return n;
}

// Ties broken by auditID, stage and cluster, as the memory store's sortKey().
const ORDER: Record<SortOrder, string> = {
  time: 'ts_us DESC, audit_id, stage, cluster',
  time_asc: 'ts_us, audit_id, stage, cluster',
  latency: 'latency_us DESC NULLS LAST, ts_us DESC, audit_id, stage, cluster',
};

/** Rows after the cursor's in the sort order (tuples compared by hand: 18.16 has no tuple `>`). */
function afterCursor(sort: SortOrder, cur: Cursor): string {
  const a = sqlString(String(cur.a));
  const s = sqlString(String(cur.s));
  const c = sqlString(String(cur.c));
  const rest = `(audit_id > ${a} OR (audit_id = ${a} AND (stage > ${s} OR (stage = ${s} AND cluster > ${c}))))`;
  const t = sqlNumber(Number(cur.t));
  const byTime =
    sort === 'time_asc'
      ? `(ts_us > ${t} OR (ts_us = ${t} AND ${rest}))`
      : `(ts_us < ${t} OR (ts_us = ${t} AND ${rest}))`;
  if (sort !== 'latency') return byTime;
  if (cur.l === null || cur.l === undefined) return `(isNull(latency_us) AND ${byTime})`;
  const l = sqlNumber(Number(cur.l));
  return `(isNull(latency_us) OR latency_us < ${l} OR (latency_us = ${l} AND ${byTime}))`;
}

/** Rows after a position in ingest order (tuples compared by hand, as afterCursor does). */
function afterIngestPosition(at: IngestPosition): string {
  const u = sqlNumber(at.us);
  const c = sqlString(at.cluster);
  const a = sqlString(at.auditId);
  const s = sqlString(at.stage);
  const rest = `(cluster > ${c} OR (cluster = ${c} AND (audit_id > ${a} OR (audit_id = ${a} AND stage > ${s}))))`;
  return `ingested_us >= ${u} AND (ingested_us > ${u} OR ${rest})`;
}

function checkedColumns(columns: readonly EventColumn[]): EventColumn[] {
  return columns.filter((c) => (EVENT_COLUMNS as readonly string[]).includes(c));
}

export async function search(run: QueryRunner, table: string, query: SearchQuery): Promise<SearchPage> {
  const sort = query.sort ?? 'time';
  const columns = checkedColumns(query.columns ?? SEARCH_DEFAULT_COLUMNS);
  let where = whereOf(query.filter);
  if (query.cursor !== undefined) {
    where = `${where} AND ${afterCursor(sort, decodeCursor(query.cursor))}`;
  }
  const limit = Math.max(0, Math.floor(query.limit));
  const keys = 'ts_us AS __t, latency_us AS __l, audit_id AS __a, stage AS __s, cluster AS __c';
  const select = [...columns.map(selectColumn), keys].join(', ');
  const rows = await run.rows(
    `SELECT ${select} FROM ${table} WHERE ${where} ORDER BY ${ORDER[sort]} LIMIT ${limit + 1}`,
  );
  const page = rows.slice(0, limit);
  const out: SearchPage = { rows: page.map((r) => project(r, columns)) };
  const last = page.at(-1);
  if (rows.length > limit && last !== undefined) {
    out.next = cursorAfter(last);
  }
  return out;
}

/** One ordered query, streamed and handed out in pages: memory stays bounded by a page. */
export async function* scan(
  run: QueryRunner,
  table: string,
  filter: EventFilter,
  columns: readonly EventColumn[],
  pageRows: number,
  order: Pick<ScanQuery, 'order'> = {},
): AsyncIterable<Row[]> {
  const cols = checkedColumns(columns);
  const byIngest = order.order === 'ingested';
  if (cols.length === 0 && !byIngest) return;
  const where = whereOf(filter);
  const select = cols.map(selectColumn);
  if (byIngest) select.push('ingested_us AS __iu', 'cluster AS __ic', 'audit_id AS __ia', 'stage AS __is');
  const sql = `SELECT ${select.join(', ')} FROM ${table} WHERE ${where} ORDER BY ${byIngest ? 'ingested_us, cluster, audit_id, stage' : ORDER.time_asc}`;
  let page: Row[] = [];
  for await (const row of run.stream(sql)) {
    const out = project(row, cols);
    if (byIngest)
      out[INGEST_CURSOR_COLUMN] = encodeIngestCursor({
        us: Number(row.__iu),
        cluster: String(row.__ic),
        auditId: String(row.__ia),
        stage: String(row.__is),
      });
    page.push(out);
    if (page.length >= pageRows) {
      yield page;
      page = [];
    }
  }
  if (page.length > 0) yield page;
}

/** A group column's expression; booleans and code_class as numbers, converted back in Node. */
function columnExpr(c: string): string {
  if (!(GROUP_COLUMNS as readonly string[]).includes(c)) throw new Error(`not a group column: ${c}`);
  return c === 'code_class' ? 'intDiv(code, 100)' : c;
}

/** A measure column's value: times in milliseconds (what the memory store compares and sums). */
function measureValue(c: string): string {
  if (!(MEASURE_COLUMNS as readonly string[]).includes(c)) throw new Error(`not a measure column: ${c}`);
  const time = TIME_COLUMNS[c];
  if (c === 'latency_ms') return 'latency_us';
  return time === undefined ? c : `intDiv(${time}, 1000)`;
}

function measureExpr(m: Measure): string {
  switch (m.fn) {
    case 'count':
      return 'count()';
    case 'countDistinct':
      // 18.16 gives NULL, not 0, for uniqExact over only NULLs.
      return `ifNull(uniqExact(${columnExpr(m.column)}), 0)`;
    case 'any':
      return `any(${columnExpr(m.column)})`;
    case 'distinct': {
      const c = columnExpr(m.column);
      const text = BOOLEAN_COLUMNS.has(m.column) ? `if(${c} = 1, 'true', 'false')` : `toString(${c})`;
      return `arraySlice(arraySort(groupUniqArray(${text})), 1, ${sqlNumber(Math.max(0, Math.floor(m.limit)))})`;
    }
    default: {
      const v = measureValue(m.column);
      // Over no values every measure is NULL, as in the reference (ClickHouse would give 0).
      const none = `count(${v}) = 0`;
      if (m.fn === 'quantile') {
        // The nearest rank, exactly as the contract defines it: the value at rank ceil(q * n) of
        // the sorted non-null values (quantileExact takes another rank, and 18.16 has no
        // quantileExactHigh/Low).
        const q = sqlNumber(Number(m.q));
        return `if(${none}, NULL, arrayElement(arraySort(groupArray(${v})), toUInt64(greatest(1, ceil(${q} * count(${v}))))))`;
      }
      const agg = m.fn === 'sum' || m.fn === 'avg' ? `toFloat64(${m.fn}(${v}))` : `${m.fn}(${v})`;
      return `if(${none}, NULL, ${agg})`;
    }
  }
}

function groupExpr(k: GroupKey): { expr: string; name: string } {
  if (typeof k !== 'string') {
    const every = sqlNumber(Math.max(1, Math.floor(k.everyMs)));
    return { expr: `intDiv(intDiv(ts_us, 1000), ${every}) * ${every}`, name: 'bucket' };
  }
  return { expr: columnExpr(k), name: k };
}

export async function aggregate(
  run: QueryRunner,
  table: string,
  query: AggregateQuery,
): Promise<AggregateRow[]> {
  const groups = query.groupBy.map(groupExpr);
  const measures = Object.entries(query.measures);
  // Measures take names of their own inside the query: a measure named like a column (`code`)
  // would otherwise shadow it in the other expressions.
  const select = [
    ...groups.map((g, i) => `${g.expr} AS __g${i}`),
    ...measures.map(([, m], i) => `${measureExpr(m)} AS __m${i}`),
  ].join(', ');
  const names = new Map<string, string>([
    ...groups.map((g, i) => [g.name, `__g${i}`] as [string, string]),
    ...measures.map(([n], i) => [n, `__m${i}`] as [string, string]),
  ]);
  const order = [
    ...(query.orderBy ?? []).map((o) => {
      const n = names.get(o.key);
      if (n === undefined) throw new Error(`orderBy ${o.key}: not a group or measure of the query`);
      return `${n} ${o.desc === true ? 'DESC' : 'ASC'} NULLS LAST`;
    }),
    ...groups.map((_g, i) => `__g${i} ASC NULLS LAST`),
  ];
  const sql = `SELECT ${select} FROM ${table} WHERE ${whereOf(query.filter)}${
    groups.length > 0 ? ` GROUP BY ${groups.map((_g, i) => `__g${i}`).join(', ')}` : ''
  }${order.length > 0 ? ` ORDER BY ${order.join(', ')}` : ''}${
    query.limit === undefined ? '' : ` LIMIT ${sqlNumber(Math.max(0, Math.floor(query.limit)))}`
  }`;
  const rows = await run.rows(sql);
  return rows.map((r) => {
    const out: AggregateRow = {};
    groups.forEach((g, i) => {
      const v = r[`__g${i}`];
      out[g.name] =
        g.name === 'bucket'
          ? new Date(Number(v)).toISOString()
          : (convert(g.name, v) as AggregateRow[string]);
    });
    measures.forEach(([name, m], i) => {
      out[name] = measureResult(m, r[`__m${i}`]);
    });
    return out;
  });
}

function measureResult(m: Measure, v: unknown): AggregateRow[string] {
  if (v === null || v === undefined) return null;
  switch (m.fn) {
    case 'count':
    case 'countDistinct':
      return Number(v);
    case 'any':
      return convert(m.column, v) as AggregateRow[string];
    case 'distinct':
      return (v as unknown[]).map(String);
    default: {
      const time = m.column in TIME_COLUMNS;
      if (time && m.fn !== 'sum' && m.fn !== 'avg') return new Date(Number(v)).toISOString();
      return m.column === 'latency_ms' ? Number(v) / 1000 : Number(v);
    }
  }
}

export async function count(run: QueryRunner, table: string, filter: EventFilter): Promise<number> {
  const rows = await run.rows(`SELECT count() AS n FROM ${table} WHERE ${whereOf(filter)}`);
  return Number(rows[0]?.n ?? 0);
}
