/**
 * The portable read primitive (store/query.ts) compiled to DuckDB SQL over the `events` view: every
 * value a parameter, times as RFC3339 UTC with milliseconds, numbers as numbers, the same answers as
 * the memory store's reference (store/memory/evaluate.ts) on the same events.
 */
import { createRequire } from 'node:module';
import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api';
import type { Row } from '../contract.js';
import { type Cursor, cursorAfter, decodeCursor } from '../cursor.js';
import { orderRows } from '../order-rows.js';
import {
  type AggregateQuery,
  type AggregateRow,
  type AggregateSetsQuery,
  decodeIngestCursor,
  EVENT_COLUMNS,
  type EventColumn,
  type EventFilter,
  encodeIngestCursor,
  GROUP_COLUMNS,
  type GroupColumn,
  type GroupKey,
  INGEST_CURSOR_COLUMN,
  MEASURE_COLUMNS,
  type Measure,
  type ScanQuery,
  SEARCH_DEFAULT_COLUMNS,
  type SearchPage,
  type SearchQuery,
  type SortOrder,
} from '../query.js';
import { FAILED_EVENTS_VIEW, LATENCY_US } from './schema.js';

// Loaded with require(), as duckdb-store.ts does: an ES import of the CommonJS package is slow to start.
const { JsonDuckDBValueConverter } = createRequire(import.meta.url)(
  '@duckdb/node-api',
) as typeof import('@duckdb/node-api');

type Params = Record<string, DuckDBValue>;

const TIME_COLUMNS = new Set(['ts', 'stage_ts', 'ingested_at']);
const ISO = (expr: string) => `strftime(${expr}, '%Y-%m-%dT%H:%M:%S.%gZ')`;

class Sql {
  readonly params: Params = {};
  private n = 0;
  /** A new parameter holding `v`; returns its placeholder. */
  p(v: DuckDBValue): string {
    const name = `p${this.n++}`;
    this.params[name] = v;
    return `$${name}`;
  }
  list(values: readonly DuckDBValue[]): string {
    return `(${values.map((v) => this.p(v)).join(', ')})`;
  }
}

/**
 * The relation a read of events goes to, named `events`: a read of failed requests only (every
 * code range at 400 or more) goes to the view that takes their text from the column holding just
 * theirs, which spares decompressing every stored event's text (schema.ts, layout 3).
 */
function eventsFor(f: EventFilter): string {
  const failedOnly = f.code !== undefined && f.code.length > 0 && f.code.every((c) => c.min >= 400);
  return failedOnly ? `${FAILED_EVENTS_VIEW} AS events` : 'events';
}

/** The WHERE clause of a filter (`TRUE` when empty). */
export function whereOf(f: EventFilter, q: Sql): string {
  const w: string[] = [];
  const inList = (col: string, values: readonly string[] | undefined) => {
    if (values !== undefined) w.push(values.length === 0 ? 'FALSE' : `${col} IN ${q.list(values)}`);
  };
  if (f.since !== undefined) w.push(`ts >= CAST(${q.p(f.since)} AS TIMESTAMPTZ)::TIMESTAMP`);
  if (f.until !== undefined) w.push(`ts < CAST(${q.p(f.until)} AS TIMESTAMPTZ)::TIMESTAMP`);
  inList('cluster', f.cluster);
  inList('username', f.user);
  inList('subject', f.subject);
  if (f.userGroup !== undefined)
    w.push(`list_has_any(groups, [${f.userGroup.map((g) => q.p(g)).join(', ')}]::VARCHAR[])`);
  inList('verb', f.verb);
  if (f.resource !== undefined) {
    const alts = f.resource.map((r) => {
      const res = `resource = ${q.p(r.resource)}`;
      if (r.subresource === '*') return `(${res})`;
      if (r.subresource === undefined) return `(${res} AND subresource IS NULL)`;
      return `(${res} AND subresource = ${q.p(r.subresource)})`;
    });
    w.push(alts.length === 0 ? 'FALSE' : `(${alts.join(' OR ')})`);
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
        ? 'FALSE'
        : `(${f.code.map((c) => `code BETWEEN ${q.p(c.min)} AND ${q.p(c.max)}`).join(' OR ')})`,
    );
  if (f.denied !== undefined) w.push(`${f.denied ? '' : 'NOT '}coalesce(code IN (401, 403), false)`);
  inList('decision', f.decision);
  if (f.userAgent !== undefined) w.push(`contains(lower(user_agent), lower(${q.p(f.userAgent)}))`);
  if (f.sourceIp !== undefined)
    w.push(`list_has_any(source_ips, [${f.sourceIp.map((s) => q.p(s)).join(', ')}]::VARCHAR[])`);
  if (f.text !== undefined) w.push(`contains(coalesce(request_uri, ''), ${q.p(f.text)})`);
  if (f.textExcludes !== undefined) w.push(`NOT contains(coalesce(request_uri, ''), ${q.p(f.textExcludes)})`);
  if (f.minLatencyMs !== undefined) w.push(`latency_ms >= ${q.p(f.minLatencyMs)}`);
  if (f.longRunning !== undefined) w.push(`long_running = ${q.p(f.longRunning)}`);
  if (f.nonResource !== undefined) w.push(`(resource IS NULL) = ${q.p(f.nonResource)}`);
  if (f.noNamespace !== undefined) w.push(`(namespace IS NULL OR namespace = '') = ${q.p(f.noNamespace)}`);
  if (f.ingestedAfter !== undefined) {
    const at = decodeIngestCursor(f.ingestedAfter);
    // The plain comparison first lets the zone maps of ingested_at skip the row groups before it.
    // Qualified: a select list may format ingested_at as text under the same name.
    const t = `make_timestamp(${q.p(at.us)}::BIGINT)`;
    w.push(
      `events.ingested_at >= ${t} AND (events.ingested_at > ${t} OR (events.cluster, events.audit_id, events.stage) > (${q.p(at.cluster)}, ${q.p(at.auditId)}, ${q.p(at.stage)}))`,
    );
  }
  return w.length === 0 ? 'TRUE' : w.join(' AND ');
}

function selectColumn(c: EventColumn): string {
  if (TIME_COLUMNS.has(c)) return `${ISO(c)} AS ${c}`;
  return c;
}

/** Rows as the contract returns them: JSON-ready, numbers as numbers, the breakdown as an object. */
export function normalizeRow(row: Row): Row {
  for (const [k, v] of Object.entries(row)) {
    if (typeof v === 'string' && (k === 'code' || k === 'latency_ms' || k === 'code_class'))
      row[k] = Number(v);
    else if (k === 'latency_breakdown') {
      if (Array.isArray(v)) {
        const o: Record<string, number> = {};
        for (const e of v as { key: string; value: unknown }[]) o[e.key] = Number(e.value);
        row[k] = Object.keys(o).length === 0 ? null : o;
      }
    }
  }
  return row;
}

// Qualified: the select list formats `ts` as text under the same name.
const ORDER: Record<SortOrder, string> = {
  time: 'events.ts DESC, events.audit_id, events.stage, events.cluster',
  time_asc: 'events.ts, events.audit_id, events.stage, events.cluster',
  latency: 'events.latency_ms DESC NULLS LAST, events.ts DESC, events.audit_id, events.stage, events.cluster',
};

// Ingest order: commits in the order the store took them, each commit's rows by their identity.
const INGEST_ORDER = 'events.ingested_at, events.cluster, events.audit_id, events.stage';

function afterCursor(sort: SortOrder, cur: Cursor, q: Sql): string {
  const rest = `(events.audit_id, events.stage, events.cluster) > (${q.p(cur.a)}, ${q.p(cur.s)}, ${q.p(cur.c)})`;
  const t = `epoch_us(events.ts)`;
  const byTime =
    sort === 'time_asc'
      ? `(${t} > ${q.p(cur.t)} OR (${t} = ${q.p(cur.t)} AND ${rest}))`
      : `(${t} < ${q.p(cur.t)} OR (${t} = ${q.p(cur.t)} AND ${rest}))`;
  if (sort !== 'latency') return byTime;
  const l = 'events.latency_ms';
  if (cur.l === null || cur.l === undefined) return `(${l} IS NULL AND ${byTime})`;
  return `(${l} < ${q.p(cur.l)} OR ${l} IS NULL OR (${l} = ${q.p(cur.l)} AND ${byTime}))`;
}

/** KAUDIT_TRACE_SQL=1: each read's SQL and time (to its first rows) on stderr, to find what makes a report slow. */
function trace(started: number, sql: string): void {
  if (process.env.KAUDIT_TRACE_SQL === '1')
    process.stderr.write(
      `kaudit: ${(performance.now() - started).toFixed(0)} ms: ${sql.replace(/\s+/g, ' ')}\n`,
    );
}

async function rowsOf(conn: DuckDBConnection, sql: string, params: Params): Promise<Row[]> {
  const started = performance.now();
  const r = await conn.runAndReadAll(sql, params);
  trace(started, sql);
  return (r.getRowObjectsJson() as Row[]).map(normalizeRow);
}

/**
 * The rows of one page, in two steps: the page's keys first (a top-N over a few plain columns),
 * then its rows by those keys, their times narrowing the scan through the zone maps of `ts`. In one
 * step DuckDB computes every selected column for every matching row before keeping the first N:
 * over 1M events, the explore page's 100 newest took 1.25 s against 0.17 s, the latency report's
 * 21 slowest 70 ms against 36 ms.
 */
async function pageRows(
  conn: DuckDBConnection,
  columns: readonly EventColumn[],
  keys: string,
  from: string,
  where: string,
  q: Sql,
  sort: SortOrder,
  n: number,
): Promise<Row[]> {
  const select = [...columns.map(selectColumn), keys].join(', ');
  const top = await rowsOf(
    conn,
    `SELECT epoch_us(ts) AS "__t", audit_id AS "__a", stage AS "__s", cluster AS "__c" FROM events WHERE ${where} ORDER BY ${ORDER[sort]} LIMIT ${n}`,
    q.params,
  );
  if (top.length === 0) return [];
  const k = new Sql();
  const times = [...new Set(top.map((r) => Number(r.__t)))].map((t) => `make_timestamp(${k.p(t)}::BIGINT)`);
  const tuples = top.map((r) => `(${k.p(String(r.__a))}, ${k.p(String(r.__s))}, ${k.p(String(r.__c))})`);
  const sql = `SELECT ${select} FROM ${from} WHERE ts IN (${times.join(', ')}) AND (audit_id, stage, cluster) IN (${tuples.join(', ')}) ORDER BY ${ORDER[sort]}`;
  return rowsOf(conn, sql, k.params);
}

export async function search(conn: DuckDBConnection, query: SearchQuery): Promise<SearchPage> {
  const q = new Sql();
  const sort = query.sort ?? 'time';
  const columns = (query.columns ?? SEARCH_DEFAULT_COLUMNS).filter((c) =>
    (EVENT_COLUMNS as readonly string[]).includes(c),
  );
  let where = whereOf(query.filter, q);
  if (query.cursor !== undefined) {
    where = `${where} AND ${afterCursor(sort, decodeCursor(query.cursor), q)}`;
  }
  const limit = Math.max(0, Math.floor(query.limit));
  const keys = `epoch_us(ts) AS "__t", latency_ms AS "__l", audit_id AS "__a", stage AS "__s", cluster AS "__c"`;
  const rows = await pageRows(conn, columns, keys, eventsFor(query.filter), where, q, sort, limit + 1);
  const more = rows.length > limit;
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  const out: SearchPage = {
    rows: page.map((r) => {
      const o: Row = {};
      for (const c of columns) o[c] = r[c] ?? null;
      return o;
    }),
  };
  if (more && last !== undefined) {
    out.next = cursorAfter(last);
  }
  return out;
}

/**
 * One ordered query, streamed a chunk at a time (DuckDB's own 2,048-row vectors) and handed out in
 * pages: memory stays bounded by a page, and the sort runs once, not once a page.
 */
export async function* scan(
  conn: DuckDBConnection,
  filter: EventFilter,
  columns: readonly EventColumn[],
  pageRows: number,
  order: Pick<ScanQuery, 'order'> = {},
): AsyncIterable<Row[]> {
  const q = new Sql();
  const cols = columns.filter((c) => (EVENT_COLUMNS as readonly string[]).includes(c));
  if (order.order === 'ingested') {
    yield* scanIngested(conn, filter, cols, pageRows);
    return;
  }
  const sql = `SELECT ${cols.map(selectColumn).join(', ')} FROM ${eventsFor(filter)} WHERE ${whereOf(filter, q)} ORDER BY ${ORDER.time_asc}`;
  const started = performance.now();
  const result = await conn.stream(sql, q.params);
  trace(started, sql);
  const names = result.columnNames();
  let page: Row[] = [];
  for (
    let chunk = await result.fetchChunk();
    chunk !== null && chunk.rowCount > 0;
    chunk = await result.fetchChunk()
  ) {
    for (const values of chunk.convertRows(JsonDuckDBValueConverter)) {
      const row: Row = {};
      names.forEach((n, i) => {
        row[n] = values[i] ?? null;
      });
      page.push(normalizeRow(row));
      if (page.length >= pageRows) {
        yield page;
        page = [];
      }
    }
  }
  if (page.length > 0) yield page;
}

const INGEST_KEYS =
  'epoch_us(events.ingested_at) AS "__iu", events.cluster AS "__ic", events.audit_id AS "__ia", events.stage AS "__is"';

function ingestCursorOf(r: Row): string {
  return encodeIngestCursor({
    us: Number(r.__iu),
    cluster: String(r.__ic),
    auditId: String(r.__ia),
    stage: String(r.__is),
  });
}

/**
 * Ingest order, a page per query and in two steps: the page's keys first (a top-N over four small
 * columns), then its rows, the range between the cursor and the page's last key. One ordered query
 * over the whole rest would sort every remaining row with its raw JSON: a forwarder catching up
 * after an outage ran the agent's DuckDB out of memory (bench:agent).
 */
async function* scanIngested(
  conn: DuckDBConnection,
  filter: EventFilter,
  cols: readonly EventColumn[],
  pageRows: number,
): AsyncIterable<Row[]> {
  let after = filter.ingestedAfter;
  for (;;) {
    const rest: EventFilter = after === undefined ? filter : { ...filter, ingestedAfter: after };
    const q = new Sql();
    const keys = await rowsOf(
      conn,
      `SELECT ${INGEST_KEYS} FROM events WHERE ${whereOf(rest, q)} ORDER BY ${INGEST_ORDER} LIMIT ${Math.max(1, Math.floor(pageRows))}`,
      q.params,
    );
    const last = keys.at(-1);
    if (last === undefined) return;
    let page: Row[];
    if (cols.length === 0) page = keys.map((k) => ({ [INGEST_CURSOR_COLUMN]: ingestCursorOf(k) }));
    else {
      const r = new Sql();
      const t = `make_timestamp(${r.p(Number(last.__iu))}::BIGINT)`;
      const upTo = `events.ingested_at <= ${t} AND (events.ingested_at < ${t} OR (events.cluster, events.audit_id, events.stage) <= (${r.p(String(last.__ic))}, ${r.p(String(last.__ia))}, ${r.p(String(last.__is))}))`;
      const rows = await rowsOf(
        conn,
        `SELECT ${[...cols.map(selectColumn), INGEST_KEYS].join(', ')} FROM ${eventsFor(rest)} WHERE ${whereOf(rest, r)} AND ${upTo} ORDER BY ${INGEST_ORDER}`,
        r.params,
      );
      page = rows.map((row) => {
        const out: Row = {};
        for (const c of cols) out[c] = row[c] ?? null;
        out[INGEST_CURSOR_COLUMN] = ingestCursorOf(row);
        return out;
      });
    }
    yield page;
    if (keys.length < pageRows) return;
    after = ingestCursorOf(last);
  }
}

/**
 * A group key as the grouping's expression and the value read back (`outer`, over the grouped
 * rows). A time bucket is grouped by its number and written as RFC3339 once per group: formatting
 * every row's bucket before grouping tripled the cost of a histogram over 1M events.
 */
function groupExpr(k: GroupKey, q: Sql): { expr: string; outer: string; name: string } {
  if (typeof k !== 'string') {
    const everyMs = Math.floor(k.everyMs);
    return {
      expr: `epoch_ms(ts) // ${q.p(everyMs)}`,
      outer: `${ISO(`make_timestamp("bucket" * ${q.p(everyMs)} * 1000)`)} AS "bucket"`,
      name: 'bucket',
    };
  }
  if (!(GROUP_COLUMNS as readonly string[]).includes(k)) throw new Error(`not a group column: ${k}`);
  return { expr: k === 'code_class' ? 'code // 100' : k, outer: quoteName(k), name: k };
}

const groupValue = (c: string) => (c === 'code_class' ? 'code // 100' : c);

function checkColumn(c: string, list: readonly string[]): void {
  if (!list.includes(c)) throw new Error(`not a column for this measure: ${c}`);
}

type ValueMeasure = Exclude<Measure, { column: GroupColumn } | { fn: 'count' }>;

/** Sums and averages add doubles, as the reference does; the rest pick one value. */
const picksValue = (m: ValueMeasure) => m.fn !== 'sum' && m.fn !== 'avg';

/**
 * What a measure aggregates: times as epoch milliseconds; latency_ms as integer microseconds where
 * the measure picks one value (min, max, quantiles), divided after (finish), which gives the same
 * double and sorts about twice as fast.
 */
function measureValue(m: ValueMeasure): string {
  if (TIME_COLUMNS.has(m.column)) return `epoch_ms(${m.column})`;
  return m.column === 'latency_ms' && picksValue(m) ? `(${LATENCY_US})` : m.column;
}

/** A measure's value as read back: time columns as RFC3339 text, sums and averages as doubles. */
function finish(m: ValueMeasure, agg: string): string {
  if (TIME_COLUMNS.has(m.column) && picksValue(m))
    return ISO(`make_timestamp(CAST(${agg} AS BIGINT) * 1000)`);
  if (m.column === 'latency_ms' && picksValue(m)) return `(${agg} / 1000.0)`;
  return picksValue(m) ? agg : `CAST(${agg} AS DOUBLE)`;
}

/** Every measure but quantiles, as one aggregate expression. */
function measureExpr(m: Exclude<Measure, { fn: 'quantile' }>): string {
  switch (m.fn) {
    case 'count':
      return 'count(*)';
    case 'countDistinct':
      checkColumn(m.column, GROUP_COLUMNS);
      return `count(DISTINCT ${groupValue(m.column)})`;
    case 'any':
      checkColumn(m.column, GROUP_COLUMNS);
      return `any_value(${groupValue(m.column)})`;
    case 'distinct':
      checkColumn(m.column, GROUP_COLUMNS);
      return `coalesce(list_sort(list(DISTINCT CAST(${groupValue(m.column)} AS VARCHAR)) FILTER (WHERE ${m.column === 'code_class' ? 'code' : m.column} IS NOT NULL))[1:${Math.max(0, Math.floor(m.limit))}], []::VARCHAR[])`;
    default:
      checkColumn(m.column, MEASURE_COLUMNS);
      return finish(m, `${m.fn}(${measureValue(m)})`);
  }
}

const quoteName = (n: string) => `"${n.replaceAll('"', '""')}"`;

/**
 * The measures as the grouped query's select list (`inner`) and the values read back over its rows
 * (`outer`). The quantiles of one column are computed together, by one quantile_disc over the list
 * of ranks: one sort per group instead of one per quantile (the latency report asks three).
 * DuckDB's quantile_disc is the nearest rank: the value at rank ceil(q * n) of the sorted non-null
 * values, as the contract defines it (the contract suite checks it against the memory store's
 * reference).
 */
function compileMeasures(measures: AggregateQuery['measures']): { inner: string[]; outer: string[] } {
  const quantiles = new Map<Extract<Measure, { fn: 'quantile' }>['column'], number[]>();
  const inner: string[] = [];
  const outer: string[] = [];
  for (const [name, m] of Object.entries(measures)) {
    if (m.fn !== 'quantile') {
      inner.push(`${measureExpr(m)} AS ${quoteName(name)}`);
      outer.push(quoteName(name));
      continue;
    }
    checkColumn(m.column, MEASURE_COLUMNS);
    const ranks = quantiles.get(m.column) ?? [];
    quantiles.set(m.column, ranks);
    ranks.push(Number(m.q));
    outer.push(`${finish(m, `${quoteName(`q:${m.column}`)}[${ranks.length}]`)} AS ${quoteName(name)}`);
  }
  for (const [column, ranks] of quantiles)
    inner.push(
      `quantile_disc(${measureValue({ fn: 'quantile', column, q: 0 })}, [${ranks.join(', ')}]) AS ${quoteName(`q:${column}`)}`,
    );
  return { inner, outer };
}

/** Numbers DuckDB hands back as text (BIGINT, HUGEINT, DECIMAL) as numbers. */
function numbersOf(rows: Row[], measures: AggregateQuery['measures']): AggregateRow[] {
  for (const r of rows)
    for (const [name, m] of Object.entries(measures)) {
      const v = r[name];
      if (
        typeof v === 'string' &&
        (m.fn === 'count' ||
          m.fn === 'countDistinct' ||
          ((m.fn === 'min' || m.fn === 'max' || m.fn === 'sum' || m.fn === 'avg' || m.fn === 'quantile') &&
            !TIME_COLUMNS.has(m.column)))
      )
        r[name] = Number(v);
    }
  return rows as AggregateRow[];
}

export async function aggregate(conn: DuckDBConnection, query: AggregateQuery): Promise<AggregateRow[]> {
  const q = new Sql();
  const groups = query.groupBy.map((k) => groupExpr(k, q));
  const measures = compileMeasures(query.measures);
  const inner = [...groups.map((g) => `${g.expr} AS ${quoteName(g.name)}`), ...measures.inner];
  const outer = [...groups.map((g) => g.outer), ...measures.outer];
  const where = whereOf(query.filter, q);
  const known = new Set([...groups.map((g) => g.name), ...Object.keys(query.measures)]);
  const order = [
    ...(query.orderBy ?? []).map((o) => {
      if (!known.has(o.key)) throw new Error(`orderBy ${o.key}: not a group or measure of the query`);
      return `${quoteName(o.key)} ${o.desc === true ? 'DESC' : 'ASC'} NULLS LAST`;
    }),
    ...groups.map((g) => `${quoteName(g.name)} ASC NULLS LAST`),
  ];
  const grouped = `SELECT ${inner.join(', ')} FROM events WHERE ${where}${groups.length > 0 ? ` GROUP BY ${groups.map((_, i) => i + 1).join(', ')}` : ''}`;
  const sql = `SELECT ${outer.join(', ')} FROM (${grouped})${order.length > 0 ? ` ORDER BY ${order.join(', ')}` : ''}${query.limit === undefined ? '' : ` LIMIT ${Math.max(0, Math.floor(query.limit))}`}`;
  return numbersOf(await rowsOf(conn, sql, q.params), query.measures);
}

/**
 * Several groupings in one pass (GROUPING SETS): the events are read and filtered once, not once
 * per grouping (the latency report's six groupings: ~200 ms of CPU against ~300 ms over 1M
 * events). Each set's rows are then ordered and cut in the contract's order (order-rows.ts).
 */
export async function aggregateSets(
  conn: DuckDBConnection,
  query: AggregateSetsQuery,
): Promise<AggregateRow[][]> {
  const q = new Sql();
  const keys = new Map<string, ReturnType<typeof groupExpr>>();
  const bucketSizes = new Set<number>();
  for (const set of query.sets)
    for (const k of set.groupBy) {
      if (typeof k !== 'string') bucketSizes.add(Math.floor(k.everyMs));
      // Each key compiled once: its parameters must all be used.
      const name = typeof k === 'string' ? k : 'bucket';
      if (!keys.has(name)) keys.set(name, groupExpr(k, q));
    }
  const names = [...keys.keys()];
  // Buckets of two sizes would share the name `bucket`; a query with none needs no sets.
  if (bucketSizes.size > 1 || names.length === 0)
    return Promise.all(
      query.sets.map((set) => aggregate(conn, { ...set, filter: query.filter, measures: query.measures })),
    );
  // GROUPING() sets the bit of each key a row is not grouped by, the first key's the highest.
  const maskOf = (groupBy: readonly GroupKey[]) => {
    const mine = new Set<string>(groupBy.map((k) => (typeof k === 'string' ? k : 'bucket')));
    return names.reduce((m, n, i) => (mine.has(n) ? m : m | (1 << (names.length - 1 - i))), 0);
  };
  const masks = [...new Set(query.sets.map((set) => maskOf(set.groupBy)))];
  const setSql = masks.map(
    (mask) =>
      `(${names
        .filter((_, i) => (mask & (1 << (names.length - 1 - i))) === 0)
        .map(quoteName)
        .join(', ')})`,
  );
  const measures = compileMeasures(query.measures);
  const groups = [...keys.values()];
  const inner = [
    ...groups.map((g) => `${g.expr} AS ${quoteName(g.name)}`),
    `GROUPING(${names.map(quoteName).join(', ')}) AS "__set"`,
    ...measures.inner,
  ];
  const grouped = `SELECT ${inner.join(', ')} FROM events WHERE ${whereOf(query.filter, q)} GROUP BY GROUPING SETS (${setSql.join(', ')})`;
  const sql = `SELECT ${[...groups.map((g) => g.outer), '"__set"', ...measures.outer].join(', ')} FROM (${grouped})`;
  const rows = numbersOf(await rowsOf(conn, sql, q.params), query.measures);
  return query.sets.map((set) => {
    const mask = maskOf(set.groupBy);
    const columns = [
      ...set.groupBy.map((k) => (typeof k === 'string' ? k : 'bucket')),
      ...Object.keys(query.measures),
    ];
    const known = new Set(columns);
    for (const o of set.orderBy ?? [])
      if (!known.has(o.key)) throw new Error(`orderBy ${o.key}: not a group or measure of the query`);
    const mine = rows
      .filter((r) => Number(r.__set) === mask)
      .map((r) => Object.fromEntries(columns.map((c) => [c, r[c] ?? null])) as AggregateRow);
    return orderRows(mine, set);
  });
}

export async function count(conn: DuckDBConnection, filter: EventFilter): Promise<number> {
  const q = new Sql();
  const rows = await rowsOf(conn, `SELECT count(*) AS n FROM events WHERE ${whereOf(filter, q)}`, q.params);
  return Number(rows[0]?.n ?? 0);
}

export type { GroupColumn };
export { ISO as isoExpr };
