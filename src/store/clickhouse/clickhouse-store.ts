import { Readable } from 'node:stream';
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from '@clickhouse/client';
import { UserError } from '../../model/errors.js';
import {
  commitOnce,
  type EventBatch,
  type HeldBatch,
  type Row,
  type SqlOptions,
  type SqlResult,
  type Store,
  type StoreCapabilities,
  type StoreInfo,
  type WriteResult,
} from '../contract.js';
import { nextIngestedUs } from '../ingest-clock.js';
import type {
  AggregateQuery,
  AggregateRow,
  EventFilter,
  ScanQuery,
  SearchPage,
  SearchQuery,
} from '../query.js';
import { EncodePool } from './encode-pool.js';
import { type EncodedBatch, ROW_COLUMNS } from './event-row.js';
import { InsertedWindow, timeIntervals } from './inserted-window.js';
import { aggregate, count, isoOfUs, type QueryRunner, scan, search } from './read.js';
import {
  createDistributedTable,
  createLocalTable,
  createMetaTable,
  createView,
  metaVersionQuery,
  quoted,
  SCHEMA_VERSION,
  type TableNames,
  tableNames,
} from './schema.js';
import { sqlIdentifier, sqlNumber, sqlString, sqlStringList } from './sql-literal.js';
import { checkUserSql } from './sql-sandbox.js';

export interface ClickHouseStoreOptions {
  /** The HTTP interface, `http://host:8123`; never with a password in it. */
  url: string;
  database: string;
  username: string;
  password: string;
  /** Default `audit_events`. */
  table?: string;
  /** The remote_servers cluster of a Distributed table over shards (see docs/clickhouse.md). */
  distributed?: string;
  /** Per request; default 300 s (a scan streams within one request). */
  requestTimeoutMs?: number;
}

/**
 * Events per insert: ClickHouse writes one part per insert (up to max_insert_block_size rows), and
 * fewer, larger parts are what MergeTree wants (its docs: "insert data in batches of at least
 * 1,000 rows"). On 18.16 an insert has a large fixed cost: the server spent 3.3 s of CPU on 200,000
 * rows sent as 20 inserts of 10,000 (and more merging them), 1.9 s as 4 of 50,000, 1.65 s as one.
 * 50,000 events of ~1.5 KB is ~75 MB a request; ingest holds a few batches per write in flight, so
 * this also sets its memory.
 */
const BATCH_EVENTS = 50_000;
/** Keys per duplicate check: bounds the query text (max_query_size is raised to fit). */
const CHECK_KEYS = 20_000;
const CHECK_MAX_QUERY_BYTES = 64 << 20;
/** Up to this many stored rows in a batch's time range are read whole rather than looked up by ID. */
const CHECK_SCAN_ROWS = 20_000;
/** A batch's times are checked in intervals cut at gaps of more than this (see timeIntervals). */
const CHECK_GAP_US = 5_000_000;
const CHECK_MAX_INTERVALS = 32;
/** Rows of its own inserts a store remembers per cluster, to match keys without reading them back. */
const WINDOW_ROWS = 200_000;

interface Encoded extends EncodedBatch {
  cluster: string;
}

/** A password never shows: what a URL says when printed. */
function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, (m) => (m.includes(':') ? `//${m.slice(2).split(':')[0]}@` : m));
}

/**
 * A Store on ClickHouse (18.16 and later) over its HTTP interface. Idempotence is kept at insert:
 * each commit looks up which of its (cluster, auditID, stage) keys are stored already (within the
 * batch's time range, on the sorting key) and inserts the rest, one commit per cluster at a time,
 * so every read counts an event once without FINAL. See docs/clickhouse.md for the limits.
 */
export class ClickHouseStore implements Store {
  readonly backend = 'clickhouse';
  readonly location: string;
  private readonly pool = new EncodePool();
  /**
   * A cluster's commits run one at a time (the duplicate check and its insert), so more writes in
   * flight only encode ahead: one per encode thread, while one inserts. More would only hold memory.
   */
  readonly capabilities: StoreCapabilities = {
    sql: true,
    parallelWrites: Math.max(1, this.pool.threads),
    batchEvents: BATCH_EVENTS,
    // Inserts run side by side, so one stamped earlier can become visible after a later one; 10 s
    // is well beyond an insert of one batch.
    settleMs: 10_000,
  };
  /** Lookups of already stored keys, and how many they found. */
  duplicateChecks = 0;
  /** Checks that had to look the batch's IDs up (stored rows in its time range). */
  keyLookups = 0;
  duplicatesFound = 0;
  /** Time spent in those lookups and in inserts, for the cost of de-duplication (bench:clickhouse). */
  checkMs = 0;
  insertMs = 0;
  private readonly table: string;
  private readonly turns = new Map<string, Promise<void>>();
  private readonly windows = new Map<string, InsertedWindow>();
  private readonly runner: QueryRunner;

  private constructor(
    private readonly client: ClickHouseClient,
    private readonly names: TableNames,
    private readonly opts: ClickHouseStoreOptions,
    readonly schemaVersion: number,
    readonly serverVersion: string,
  ) {
    this.location = `${redactUrl(opts.url)}/${opts.database}`;
    this.table = quoted(names.database, names.table);
    this.runner = {
      rows: async (sql) => {
        const r = await this.client.query({ query: sql, format: 'JSONEachRow' });
        return (await r.json()) as Row[];
      },
      stream: (sql) => this.streamRows(sql),
    };
  }

  static client(opts: ClickHouseStoreOptions): ClickHouseClient {
    return createClient({
      url: opts.url,
      username: opts.username,
      password: opts.password,
      database: opts.database,
      request_timeout: opts.requestTimeoutMs ?? 300_000,
      application: 'kaudit',
      // The store reports its own errors; the client's logger would print them to stderr too.
      log: { level: ClickHouseLogLevel.OFF },
    });
  }

  /** Opens an existing store; a missing or older schema is a UserError that says what to run. */
  static async open(opts: ClickHouseStoreOptions): Promise<ClickHouseStore> {
    const client = ClickHouseStore.client(opts);
    const where = `${redactUrl(opts.url)}/${opts.database}`;
    try {
      const serverVersion = await serverVersionOf(client, where);
      const names = tableNames(opts.database, opts.table ?? 'audit_events', opts.distributed !== undefined);
      let version: number | undefined;
      try {
        const r = await client.query({ query: metaVersionQuery(names), format: 'JSONEachRow' });
        const rows = (await r.json()) as { n: string; value: number }[];
        version = Number(rows[0]?.n ?? 0) === 0 ? undefined : Number(rows[0]?.value);
      } catch (err) {
        if (!/doesn't exist|does not exist|UNKNOWN_TABLE|UNKNOWN_DATABASE|Code: (60|81)\b/.test(String(err)))
          throw err;
      }
      const init = `kaudit store init --store ${storeSpec(opts)}`;
      if (version === undefined)
        throw new UserError('KAUDIT_STORE_MISSING', `no kaudit store at ${where} (table ${names.table})`, {
          hint: `create it with \`${init}\``,
        });
      if (version < SCHEMA_VERSION)
        throw new UserError(
          'KAUDIT_STORE_SCHEMA_OLD',
          `the store at ${where} has schema version ${version}; this kaudit needs ${SCHEMA_VERSION}`,
          { hint: `upgrade it with \`${init}\`` },
        );
      if (version > SCHEMA_VERSION)
        throw new UserError(
          'KAUDIT_STORE_SCHEMA_NEW',
          `the store at ${where} has schema version ${version}, newer than this kaudit knows (${SCHEMA_VERSION})`,
          { hint: 'upgrade kaudit' },
        );
      return new ClickHouseStore(client, names, opts, version, serverVersion);
    } catch (err) {
      await client.close();
      throw err;
    }
  }

  /**
   * Creates the database, tables and view (what `kaudit store init` runs); safe to run again. With
   * `distributed`, `shards` are the HTTP URLs of every shard's server: each gets the local table.
   */
  static async init(
    opts: ClickHouseStoreOptions,
    shards: readonly string[] = [],
  ): Promise<{ created: string[]; schemaVersion: number }> {
    const names = tableNames(opts.database, opts.table ?? 'audit_events', opts.distributed !== undefined);
    const created: string[] = [];
    const onServer = async (url: string, statements: string[]) => {
      const client = ClickHouseStore.client({ ...opts, url, database: 'default' });
      try {
        await serverVersionOf(client, redactUrl(url));
        for (const query of statements) await client.command({ query });
      } finally {
        await client.close();
      }
    };
    const db = `CREATE DATABASE IF NOT EXISTS ${sqlIdentifier(opts.database)}`;
    const local = createLocalTable(names);
    if (opts.distributed !== undefined) {
      for (const url of shards) {
        await onServer(url, [db, local]);
        created.push(`${redactUrl(url)}: ${names.database}.${names.local}`);
      }
    }
    const main = [db];
    if (opts.distributed === undefined || !shards.includes(opts.url)) main.push(local);
    if (opts.distributed !== undefined) main.push(createDistributedTable(names, opts.distributed));
    main.push(createMetaTable(names), createView(names));
    await onServer(opts.url, main);
    const client = ClickHouseStore.client(opts);
    try {
      const r = await client.query({ query: metaVersionQuery(names), format: 'JSONEachRow' });
      const rows = (await r.json()) as { value: number }[];
      if (Number(rows[0]?.value ?? 0) < SCHEMA_VERSION)
        await client.command({
          query: `INSERT INTO ${quoted(names.database, names.meta)} VALUES (${sqlString('schema_version')}, ${sqlString(String(SCHEMA_VERSION))}, now())`,
        });
    } finally {
      await client.close();
    }
    created.push(
      `${redactUrl(opts.url)}: ${names.database}.${names.table}${opts.distributed !== undefined ? ` (Distributed over ${opts.distributed})` : ''}, ${names.database}.${names.view}, ${names.database}.${names.meta}`,
    );
    return { created, schemaVersion: SCHEMA_VERSION };
  }

  hold(batch: EventBatch): HeldBatch {
    const cluster = batch.cluster;
    // Encoded off the calling thread; held until committed or discarded.
    const copy = this.pool.copy(batch.events);
    let encoding: Promise<Encoded> = this.pool
      .encode(copy, cluster, nextIngestedUs())
      .then((b) => ({ ...b, cluster }));
    // A failure is seen by commit(), not as an unhandled rejection meanwhile.
    encoding.catch(() => undefined);
    let state: 'ready' | 'writing' | 'done' = 'ready';
    return {
      commit: async () => {
        if (state !== 'ready') throw new Error(`ClickHouseStore: commit() of a batch that is ${state}`);
        state = 'writing';
        try {
          const enc = await encoding;
          const r = await this.inTurn(cluster, () => this.commitEncoded(enc));
          state = 'done';
          return r;
        } catch (err) {
          state = 'ready';
          throw err;
        }
      },
      discard: async () => {
        if (state === 'writing') throw new Error('ClickHouseStore: discard() while the batch is committed');
        state = 'done';
        encoding = Promise.reject(new Error('discarded'));
        encoding.catch(() => undefined);
      },
    };
  }

  write(batch: EventBatch): Promise<WriteResult> {
    return commitOnce(this.hold(batch));
  }

  /** Runs `fn` after the commits of the same cluster before it: a check and its insert are not interleaved. */
  private async inTurn<T>(cluster: string, fn: () => Promise<T>): Promise<T> {
    const before = this.turns.get(cluster) ?? Promise.resolve();
    let done: () => void = () => undefined;
    const mine = new Promise<void>((r) => {
      done = r;
    });
    const tail = before.then(() => mine);
    this.turns.set(cluster, tail);
    await before;
    try {
      return await fn();
    } finally {
      done();
      if (this.turns.get(cluster) === tail) this.turns.delete(cluster);
    }
  }

  /** Which of the batch's rows are stored already (by row). */
  private async storedRows(enc: Encoded): Promise<boolean[]> {
    this.duplicateChecks++;
    const started = performance.now();
    const rows = enc.auditIds.length;
    const stored = new Array<boolean>(rows).fill(false);
    // A repeat carries its event's requestReceivedTimestamp: the cluster and the batch's time
    // intervals select the sorting key's granules (by hour), and the count reads two time columns.
    const intervals = timeIntervals(enc.tsUs, CHECK_GAP_US, CHECK_MAX_INTERVALS);
    const inIntervals = intervals
      .map(
        ([from, to]) =>
          `(ts >= toDateTime(${sqlNumber(Math.floor(from / 1e6))}, 'UTC') AND ts <= toDateTime(${sqlNumber(Math.floor(to / 1e6))}, 'UTC') AND ts_us >= ${sqlNumber(from)} AND ts_us <= ${sqlNumber(to)})`,
      )
      .join(' OR ');
    const where = `cluster = ${sqlString(enc.cluster)} AND (${inIntervals})`;
    const inRange = Number(
      (await this.runner.rows(`SELECT count() AS n FROM ${this.table} WHERE ${where}`))[0]?.n ?? 0,
    );
    const window = this.windows.get(enc.cluster);
    if (inRange === 0) {
      // New events at the live edge: nothing stored where they fall.
    } else if (window !== undefined && window.countIn(intervals) === inRange) {
      // Every stored row there is one this store inserted: its keys are known here.
      for (let i = 0; i < rows; i++)
        stored[i] = window.has(enc.auditIds[i] as string, enc.stages[i] as string);
    } else {
      this.keyLookups++;
      const found = new Set<string>();
      const ids = [...new Set(enc.auditIds)];
      // Few stored rows there (a batch overlapping one of another writer): their keys are read and
      // matched here. Many (a re-delivery): the batch's IDs are looked up, a bounded list at a time.
      const lists =
        inRange > CHECK_SCAN_ROWS
          ? chunks(ids, CHECK_KEYS).map((l) => ` AND audit_id IN ${sqlStringList(l)}`)
          : [''];
      const batchIds = new Set(ids);
      for (const byId of lists) {
        const r = await this.client.query({
          query: `SELECT audit_id, stage FROM ${this.table} WHERE ${where}${byId}`,
          format: 'JSONEachRow',
          clickhouse_settings: { max_query_size: String(CHECK_MAX_QUERY_BYTES) } as never,
        });
        for (const row of (await r.json()) as { audit_id: string; stage: string }[])
          if (batchIds.has(row.audit_id)) found.add(`${row.audit_id}\0${row.stage}`);
      }
      for (let i = 0; i < rows; i++) stored[i] = found.has(`${enc.auditIds[i]}\0${enc.stages[i]}`);
    }
    this.checkMs += performance.now() - started;
    return stored;
  }

  private async commitEncoded(enc: Encoded): Promise<WriteResult> {
    const duplicateIndexes = [...enc.repeats];
    const rows = enc.auditIds.length;
    let stored = 0;
    if (rows > 0) {
      const existing = await this.storedRows(enc);
      // The fresh rows, as runs of the encoded bytes (no copy).
      const chunks: Buffer[] = [];
      const freshIds: string[] = [];
      const freshStages: string[] = [];
      const freshTs: number[] = [];
      const d = enc.data;
      const cut = (from: number, to: number) => {
        const start = enc.starts[from] as number;
        chunks.push(Buffer.from(d.buffer, d.byteOffset + start, (enc.starts[to] as number) - start));
      };
      let run = -1;
      for (let i = 0; i < rows; i++) {
        if (existing[i]) {
          this.duplicatesFound++;
          duplicateIndexes.push(enc.indexes[i] as number);
          if (run >= 0) cut(run, i);
          run = -1;
        } else {
          if (run < 0) run = i;
          freshIds.push(enc.auditIds[i] as string);
          freshStages.push(enc.stages[i] as string);
          freshTs.push(enc.tsUs[i] as number);
        }
      }
      if (run >= 0) cut(run, rows);
      stored = freshIds.length;
      if (stored > 0) {
        const started = performance.now();
        const r = await this.client.exec({
          query: `INSERT INTO ${this.table} (${ROW_COLUMNS.map(sqlIdentifier).join(', ')}) FORMAT RowBinary`,
          values: Readable.from(chunks, { objectMode: false }),
          // A retry of a batch whose first insert still runs on the server is refused rather than
          // run beside it: the check would not see the rows in flight.
          query_id: enc.queryId,
          clickhouse_settings: (this.opts.distributed !== undefined
            ? { insert_distributed_sync: 1 }
            : {}) as never,
        });
        await drain(r.stream);
        this.insertMs += performance.now() - started;
        let window = this.windows.get(enc.cluster);
        if (window === undefined) {
          window = new InsertedWindow(WINDOW_ROWS);
          this.windows.set(enc.cluster, window);
        }
        window.add(freshTs, freshIds, freshStages);
      }
    }
    // The rows were sent (or none needed sending): their memory goes to a later batch.
    this.pool.recycle(enc.data);
    duplicateIndexes.sort((a, b) => a - b);
    return { stored, duplicates: duplicateIndexes.length, duplicateIndexes, rejected: enc.rejected };
  }

  private async *streamRows(sql: string): AsyncIterable<Row> {
    const r = await this.client.query({ query: sql, format: 'JSONEachRow' });
    const stream = r.stream();
    try {
      for await (const chunk of stream as AsyncIterable<{ json(): Row }[]>)
        for (const row of chunk) yield row.json();
    } finally {
      stream.destroy();
    }
  }

  search(query: SearchQuery): Promise<SearchPage> {
    return search(this.runner, this.table, query);
  }

  scan(query: ScanQuery): AsyncIterable<Row[]> {
    return scan(this.runner, this.table, query.filter, query.columns, query.pageRows ?? 10_000, query);
  }

  aggregate(query: AggregateQuery): Promise<AggregateRow[]> {
    return aggregate(this.runner, this.table, query);
  }

  count(filter: EventFilter): Promise<number> {
    return count(this.runner, this.table, filter);
  }

  async info(): Promise<StoreInfo> {
    const rows = await this.runner.rows(
      `SELECT cluster, count() AS n, min(ts_us) AS oldest, max(ts_us) AS newest FROM ${this.table} GROUP BY cluster ORDER BY cluster`,
    );
    const clusters = rows.map((r) => ({
      cluster: String(r.cluster),
      rows: Number(r.n),
      oldest: isoOfUs(Number(r.oldest)),
      newest: isoOfUs(Number(r.newest)),
    }));
    let bytes: number | null = null;
    if (this.opts.distributed === undefined) {
      const b = await this.runner.rows(
        `SELECT sum(bytes_on_disk) AS b FROM system.parts WHERE database = ${sqlString(this.names.database)} AND table = ${sqlString(this.names.local)} AND active`,
      );
      bytes = Number(b[0]?.b ?? 0);
    }
    const times = clusters.flatMap((c) => [c.oldest, c.newest]).sort();
    const details: Record<string, number | string> = {
      server: this.serverVersion,
      table: `${this.names.database}.${this.names.table}`,
      duplicateChecks: this.duplicateChecks,
      keyLookups: this.keyLookups,
      duplicatesFound: this.duplicatesFound,
      encodeThreads: this.pool.threads,
      checkMs: Math.round(this.checkMs),
      insertMs: Math.round(this.insertMs),
    };
    if (this.opts.distributed !== undefined) details.distributed = this.opts.distributed;
    return {
      backend: this.backend,
      location: this.location,
      schemaVersion: this.schemaVersion,
      rows: clusters.reduce((a, c) => a + c.rows, 0),
      bytes,
      oldest: times[0] ?? null,
      newest: times.at(-1) ?? null,
      clusters,
      details,
    };
  }

  /**
   * User SQL over the `events` view: readonly=1 on the query (no writes, no settings changes, no
   * table functions), only the view named (sql-sandbox.ts), rows, bytes and time capped.
   */
  async sql(text: string, options: SqlOptions): Promise<SqlResult> {
    const body = text.trim().replace(/;\s*$/, '');
    checkUserSql(body, this.names.database, this.names.view);
    const maxRows = Math.max(0, Math.floor(options.maxRows));
    try {
      const r = await this.client.query({
        query: `SELECT * FROM (${body}) LIMIT ${maxRows + 1}`,
        format: 'JSON',
        clickhouse_settings: {
          readonly: '1',
          max_execution_time: Math.max(1, Math.ceil(options.timeoutMs / 1000)),
          max_result_bytes: String(256 << 20),
          max_memory_usage: String(2 * 1024 ** 3),
        } as never,
      });
      const json = (await r.json()) as { meta: { name: string; type: string }[]; data: Row[] };
      const columns = json.meta.map((m) => m.name);
      const big = json.meta.filter((m) => /^(Nullable\()?U?Int64\)?$/.test(m.type)).map((m) => m.name);
      for (const row of json.data)
        for (const c of big) {
          const v = row[c];
          if (typeof v === 'string' && Number.isSafeInteger(Number(v))) row[c] = Number(v);
        }
      const truncated = json.data.length > maxRows;
      return { columns, rows: truncated ? json.data.slice(0, maxRows) : json.data, truncated };
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (/TIMEOUT_EXCEEDED|Timeout exceeded|Code: 159\b/.test(msg))
        throw new UserError(
          'KAUDIT_QUERY_TIMEOUT',
          `the query ran longer than ${options.timeoutMs} ms and was stopped`,
          { hint: 'narrow it with WHERE ts >= ..., or aggregate' },
        );
      throw new UserError('KAUDIT_QUERY_FAILED', `query failed: ${msg.split('\n')[0] ?? msg}`, {
        cause: err,
      });
    }
  }

  /**
   * Drops the days (partitions) wholly older than `days` days: retention works a day at a time, so
   * an event goes at most a day later than asked (18.16 has no TTL, and ALTER DELETE rewrites
   * whole parts). On a Distributed store, run it against each shard's own table.
   */
  async deleteOlderThan(days: number): Promise<number> {
    if (!(days > 0))
      throw new UserError(
        'KAUDIT_RETENTION_INVALID',
        `retention must be a positive number of days, got ${days}`,
      );
    if (this.opts.distributed !== undefined)
      throw new UserError(
        'KAUDIT_STORE_UNSUPPORTED',
        'retention of a Distributed ClickHouse store is run on each shard',
        {
          hint: 'open each shard as its own store (clickhouse://host:8123/db?table=<table>_local) to apply retention',
        },
      );
    const cutDay = new Date(Date.now() - days * 86_400_000).toISOString().slice(0, 10).replaceAll('-', '');
    const local = quoted(this.names.database, this.names.local);
    const parts = (await this.runner.rows(
      `SELECT partition, sum(rows) AS n FROM system.parts WHERE database = ${sqlString(this.names.database)} AND table = ${sqlString(this.names.local)} AND active GROUP BY partition ORDER BY partition`,
    )) as { partition: string; n: string }[];
    let removed = 0;
    for (const p of parts) {
      if (!/^\d{8}$/.test(p.partition) || p.partition >= cutDay) continue;
      removed += Number(p.n);
      await this.client.command({
        query: `ALTER TABLE ${local} DROP PARTITION ${sqlNumber(Number(p.partition))}`,
      });
    }
    return removed;
  }

  async close(): Promise<void> {
    await Promise.all([...this.turns.values()]);
    await this.pool.close();
    await this.client.close();
  }
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function drain(stream: Readable): Promise<void> {
  for await (const _chunk of stream) {
    // the answer to an INSERT is empty; read to the end so the socket is reused
  }
}

async function serverVersionOf(client: ClickHouseClient, where: string): Promise<string> {
  try {
    const r = await client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' });
    const rows = (await r.json()) as { v: string }[];
    return rows[0]?.v ?? 'unknown';
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (/Code: 81\b|UNKNOWN_DATABASE/.test(msg))
      throw new UserError(
        'KAUDIT_STORE_MISSING',
        `no kaudit store at ${where}: the database does not exist`,
        {
          hint: 'create it with `kaudit store init --store <the same URL>`',
          cause: err,
        },
      );
    if (/Authentication failed|Code: 19[23]\b|password is incorrect/i.test(msg))
      throw new UserError('KAUDIT_STORE_AUTH', `ClickHouse at ${where} refused the user or password`, {
        hint: 'set the password in KAUDIT_CLICKHOUSE_PASSWORD or the config password_file',
        cause: err,
      });
    throw new UserError('KAUDIT_STORE_OPEN', `cannot reach ClickHouse at ${where}: ${msg.split('\n')[0]}`, {
      hint: 'check that clickhouse-server runs and its HTTP port (8123) is reachable',
      cause: err,
    });
  }
}

/** The --store value of a store, for messages. */
export function storeSpec(opts: ClickHouseStoreOptions): string {
  const u = new URL(opts.url);
  const params = new URLSearchParams();
  if (opts.table !== undefined && opts.table !== 'audit_events') params.set('table', opts.table);
  if (opts.distributed !== undefined) params.set('distributed', opts.distributed);
  const query = params.size > 0 ? `?${params}` : '';
  const scheme = u.protocol === 'https:' ? 'clickhouses' : 'clickhouse';
  return `${scheme}://${encodeURIComponent(opts.username)}@${u.host}/${opts.database}${query}`;
}
