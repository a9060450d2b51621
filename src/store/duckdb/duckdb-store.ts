/**
 * The embedded store: one DuckDB file, `<data dir>/kaudit.duckdb`. Opening (read-write, or
 * read-only writing nothing), closing, what it holds and retention; writes are write.ts's, reads
 * read.ts's, user SQL sandbox.ts's, the table's layout schema.ts's and migrate.ts's.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { DuckDBConnection, DuckDBInstance as Instance } from '@duckdb/node-api';
import { UserError } from '../../model/errors.js';
import type {
  EventBatch,
  HeldBatch,
  Row,
  SqlOptions,
  SqlResult,
  Store,
  StoreCapabilities,
  StoreInfo,
  WriteResult,
} from '../contract.js';
import type {
  AggregateQuery,
  AggregateRow,
  AggregateSetsQuery,
  EventFilter,
  ScanQuery,
  SearchPage,
  SearchQuery,
} from '../query.js';
import { CATALOG, prepareTable, readOnlyViews } from './migrate.js';
import { DuckDBInstance } from './node-api.js';
import { aggregate, aggregateSets, count, isoExpr, scan, search } from './read.js';
import { lockDown, SandboxedSql } from './sandbox.js';
import { CREATE_MACROS, SCHEMA_VERSION, sqlString } from './schema.js';
import { StagingFiles } from './staging.js';
import { DuckDBWriter, type FaultPoint } from './write.js';

export const DUCKDB_FILE = 'kaudit.duckdb';

export interface DuckDBStoreOptions {
  dataDir: string;
  /**
   * Open without writing anything (read commands): no directory, table, view, metadata, WAL or
   * staging directory is made, an older layout is read as it is, and a missing store is a UserError.
   */
  readOnly?: boolean;
  /** DuckDB worker threads; default: all cores. */
  threads?: number;
  memoryLimit?: string;
  /**
   * Imports that may run at once, each on its own connection; default 2. One import of a batch of
   * row-group size compresses on one thread, so two writers keep two cores busy.
   */
  writers?: number;
  /** (auditID, stage) keys kept in memory per cluster to de-duplicate without reading the table; default 131,072. */
  dedupeWindow?: number;
  /** WAL size that triggers a checkpoint; default 256MB. Smaller means shorter pauses, more often. */
  checkpointThreshold?: string;
  /**
   * Return freed memory to the system after each import instead of keeping it for the next one
   * (DuckDB's allocator_bulk_deallocation_flush_threshold at 4 MiB instead of 512 MiB; at 8 MiB it
   * had no effect, so some bulk frees are exactly that size). Measured on the agent catching up:
   * ~60-100 MB less peak RSS, ~15% fewer events per second.
   */
  trimMemory?: boolean;
  /** Tests: an error to throw at a point of every import (undefined: none). */
  fault?: (point: FaultPoint) => Error | undefined;
}

const DEFAULT_WRITERS = 2;
/** Scans that may stream at once; more wait for one to end. */
const SCAN_CONNECTIONS = 2;
const CHECKPOINT_THRESHOLD = '256MB';
/** Spill files of queries larger than the memory limit, made only when one spills. */
const SPILL_DIR = '.tmp';
/**
 * Rows per DuckDB row group: an import of a whole number of them is written compressed straight to
 * the file, while a smaller one goes through the WAL and is compressed again at the next
 * checkpoint, its rows held in memory until then. DuckDB's default (122,880) made every agent batch
 * the slow kind and each ingest import hold ~200 MB; at 16,384 (measured over 1M events, two
 * writers) imports ran 1.4x faster in under half the memory, for a file 15% larger.
 */
export const ROW_GROUP_ROWS = 16_384;
// 131,072 keys: eight ingest batches back, a ~5 MB table that stays in cache. A repeat from further
// back is still found, by a table check.
const DEFAULT_DEDUPE_WINDOW = 1 << 17;

/** Translates DuckDB's lock error into something the user can act on. */
function openError(file: string, err: unknown): Error {
  const msg = err instanceof Error ? err.message : String(err);
  if (/Could not set lock|Conflicting lock/i.test(msg)) {
    const pid = /PID (\d+)/.exec(msg)?.[1];
    return new UserError(
      'KAUDIT_STORE_LOCKED',
      `the store ${file} is held by another process${pid ? ` (PID ${pid})` : ''}; DuckDB allows one process per file`,
      {
        hint: 'if that is a running `kaudit agent`, commands such as search and query reach it through its local API; otherwise stop the other process or use another --data directory',
        cause: err,
      },
    );
  }
  return new UserError('KAUDIT_STORE_OPEN', `cannot open the store ${file}: ${msg}`, { cause: err });
}

/** Per cluster, the newest stage time stored (ms): the key windows' floors. */
async function newestStageTimes(conn: DuckDBConnection): Promise<Map<string, number>> {
  const newest = await conn.runAndReadAll(
    'SELECT cluster, epoch_us(max(stage_ts)) FROM audit_events GROUP BY cluster',
  );
  const floors = new Map<string, number>();
  for (const [cluster, us] of newest.getRows())
    if (us !== null && us !== undefined) floors.set(String(cluster), Math.ceil(Number(us) / 1000));
  return floors;
}

export class DuckDBStore implements Store {
  readonly backend = 'duckdb';
  readonly capabilities: StoreCapabilities;
  readonly location: string;
  private closing = false;
  private readonly userSql: SandboxedSql;
  private readonly scanWaiters: ((conn: DuckDBConnection) => void)[] = [];

  private constructor(
    private readonly instance: Instance,
    /** Every connection it keeps, closed at close(). */
    private readonly connections: readonly DuckDBConnection[],
    private readonly conn: DuckDBConnection,
    sqlConn: DuckDBConnection,
    /** Connections kept for scans, each held by one scan while it streams. */
    private readonly scanConns: DuckDBConnection[],
    /** Null when opened read-only. */
    private readonly writer: DuckDBWriter | null,
    private readonly staging: StagingFiles | null,
    /** The layout the file had: an older one was migrated (read-write) or is read as it is (read-only). */
    private readonly fileLayout: number,
    dataDir: string,
    writers: number,
  ) {
    this.location = join(dataDir, DUCKDB_FILE);
    this.userSql = new SandboxedSql(sqlConn, conn);
    this.capabilities = {
      sql: true,
      parallelWrites: Math.max(1, writers),
      batchEvents: ROW_GROUP_ROWS,
      // Commits become visible in the order of their ingest stamps.
      settleMs: 0,
    };
  }

  static async open(options: DuckDBStoreOptions): Promise<DuckDBStore> {
    // Absolute: allowed_directories and the paths DuckDB opens must name the same places.
    const opts = { ...options, dataDir: resolve(options.dataDir) };
    const file = join(opts.dataDir, DUCKDB_FILE);
    const readOnly = opts.readOnly === true;
    if (readOnly && !existsSync(file))
      throw new UserError('KAUDIT_STORE_MISSING', `no store at ${file}`, {
        hint: 'load events with `kaudit ingest PATH...` or run `kaudit agent`; or point --data (KAUDIT_DATA) at an existing data directory',
      });
    // Audit events are sensitive: a data directory kaudit creates is its user's alone.
    if (!readOnly) mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    const config: Record<string, string> = {};
    if (opts.threads !== undefined) config.threads = String(opts.threads);
    if (opts.memoryLimit !== undefined) config.memory_limit = opts.memoryLimit;
    if (opts.trimMemory === true) config.allocator_bulk_deallocation_flush_threshold = '4MiB';
    const instance = await DuckDBInstance.create(':memory:', config);
    const connections: DuckDBConnection[] = [];
    let staging: StagingFiles | null = null;
    try {
      const setup = await instance.connect();
      connections.push(setup);
      // Attached rather than opened, for ROW_GROUP_SIZE (an attach option); compression needs the
      // latest storage version (else the file is ~8x larger).
      try {
        await setup.run(
          readOnly
            ? `ATTACH ${sqlString(file)} AS ${CATALOG} (READ_ONLY)`
            : `ATTACH ${sqlString(file)} AS ${CATALOG} (STORAGE_VERSION 'latest', ROW_GROUP_SIZE ${ROW_GROUP_ROWS})`,
        );
      } catch (err) {
        throw openError(file, err);
      }
      await setup.run(`USE ${CATALOG}`);
      let layout = SCHEMA_VERSION;
      let perConnection: string[] = [];
      if (readOnly) ({ layout, perConnection } = await readOnlyViews(setup));
      else {
        // The default (16 MB of WAL) checkpoints after nearly every batch, recompressing the last,
        // partly filled row group each time; 256 MB lets row groups fill first. Commits stay durable
        // in the WAL either way.
        await setup.run(`SET checkpoint_threshold = '${opts.checkpointThreshold ?? CHECKPOINT_THRESHOLD}'`);
        layout = (await prepareTable(setup)).openedLayout;
      }
      // Every connection is made before the configuration is locked (lockDown): each sets its time
      // zone and makes kaudit's macros, which are per connection.
      const connect = async (): Promise<DuckDBConnection> => {
        const c = await instance.connect();
        connections.push(c);
        await c.run(`USE ${CATALOG}`);
        await c.run("SET TimeZone = 'UTC'");
        await c.run(CREATE_MACROS);
        for (const sql of perConnection) await c.run(sql);
        return c;
      };
      const conn = await connect();
      const sqlConn = await connect();
      const scanConns: DuckDBConnection[] = [];
      for (let i = 0; i < SCAN_CONNECTIONS; i++) scanConns.push(await connect());
      const writerCount = readOnly ? 0 : Math.max(1, opts.writers ?? DEFAULT_WRITERS);
      const writers: DuckDBConnection[] = [];
      for (let i = 0; i < writerCount; i++) writers.push(await connect());
      if (!readOnly) staging = new StagingFiles(opts.dataDir, writerCount + 2);
      await lockDown(setup, join(opts.dataDir, SPILL_DIR), staging?.dir ?? null);
      setup.closeSync();
      connections.splice(connections.indexOf(setup), 1);
      const writer =
        staging === null
          ? null
          : new DuckDBWriter(
              file,
              writers,
              staging,
              await newestStageTimes(conn),
              opts.dedupeWindow ?? DEFAULT_DEDUPE_WINDOW,
              opts.fault,
            );
      return new DuckDBStore(
        instance,
        connections,
        conn,
        sqlConn,
        scanConns,
        writer,
        staging,
        layout,
        opts.dataDir,
        writerCount,
      );
    } catch (err) {
      for (const c of connections) c.closeSync();
      staging?.close();
      instance.closeSync();
      throw err;
    }
  }

  /** Imports that had to look their rows up in the table (the key window could not vouch for them). */
  get tableChecks(): number {
    return this.writer?.tableChecks ?? 0;
  }

  private get activeWriter(): DuckDBWriter {
    if (this.writer === null)
      throw new UserError('KAUDIT_STORE_READ_ONLY', `the store ${this.location} was opened read-only`, {
        hint: 'write with `kaudit ingest` or the agent',
      });
    return this.writer;
  }

  hold(batch: EventBatch): HeldBatch {
    return this.activeWriter.hold(batch);
  }

  write(batch: EventBatch): Promise<WriteResult> {
    return this.activeWriter.write(batch);
  }

  sql(text: string, options: SqlOptions): Promise<SqlResult> {
    return this.userSql.run(text, options);
  }

  search(query: SearchQuery): Promise<SearchPage> {
    return search(this.conn, query);
  }

  /**
   * A streamed scan holds its connection until it ends (a second query on it would cut the stream),
   * so each scan takes one of the connections kept for them, or waits for one.
   */
  async *scan(query: ScanQuery): AsyncIterable<Row[]> {
    const conn =
      this.scanConns.pop() ??
      (await new Promise<DuckDBConnection>((resolve) => this.scanWaiters.push(resolve)));
    try {
      yield* scan(conn, query.filter, query.columns, query.pageRows ?? 10_000, query);
    } finally {
      const next = this.scanWaiters.shift();
      if (next !== undefined) next(conn);
      else this.scanConns.push(conn);
    }
  }

  aggregate(query: AggregateQuery): Promise<AggregateRow[]> {
    return aggregate(this.conn, query);
  }

  aggregateSets(query: AggregateSetsQuery): Promise<AggregateRow[][]> {
    return aggregateSets(this.conn, query);
  }

  count(filter: EventFilter): Promise<number> {
    return count(this.conn, filter);
  }

  async info(): Promise<StoreInfo> {
    const r = await this.conn.runAndReadAll(
      `SELECT cluster, count(*) AS n, ${isoExpr('min(ts)')} AS oldest, ${isoExpr('max(ts)')} AS newest FROM audit_events GROUP BY cluster ORDER BY cluster`,
    );
    const clusters = (r.getRowObjectsJson() as Row[]).map((row) => ({
      cluster: String(row.cluster),
      rows: Number(row.n ?? 0),
      oldest: (row.oldest as string | null) ?? null,
      newest: (row.newest as string | null) ?? null,
    }));
    let bytes: number | null = null;
    for (const f of [this.location, `${this.location}.wal`]) {
      try {
        bytes = (bytes ?? 0) + (await stat(f)).size;
      } catch {
        // no WAL after a checkpoint
      }
    }
    const times = clusters
      .flatMap((c) => [c.oldest, c.newest])
      .filter((t): t is string => t !== null)
      .sort();
    const details: Record<string, number | string> = {
      tableChecks: this.tableChecks,
      mode: this.writer === null ? 'read-only' : 'read-write',
    };
    if (this.fileLayout !== SCHEMA_VERSION)
      details[this.writer === null ? 'fileLayout' : 'migratedFromLayout'] = this.fileLayout;
    return {
      backend: this.backend,
      location: this.location,
      // What the reader sees: an older layout opened read-only is shown in the current one.
      schemaVersion: SCHEMA_VERSION,
      rows: clusters.reduce((a, c) => a + c.rows, 0),
      bytes,
      oldest: times[0] ?? null,
      newest: times.at(-1) ?? null,
      clusters,
      details,
    };
  }

  async deleteOlderThan(days: number): Promise<number> {
    if (!(days > 0))
      throw new UserError(
        'KAUDIT_RETENTION_INVALID',
        `retention must be a positive number of days, got ${days}`,
      );
    // Alone: an import's anti-join must not see rows vanish between its plan and its insert.
    return this.activeWriter.alone(async () => {
      const r = await this.conn.run(
        `DELETE FROM audit_events WHERE ts < now()::TIMESTAMP - to_microseconds(CAST(${Math.round(days * 86_400e6)} AS BIGINT))`,
      );
      return r.rowsChanged;
    });
  }

  async checkpoint(): Promise<void> {
    await this.conn.run('CHECKPOINT');
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.writer !== null) {
      await this.writer.close();
      try {
        await this.conn.run('CHECKPOINT');
      } catch {
        // closing anyway; the WAL is replayed at the next open
      }
    }
    this.staging?.close();
    for (const c of this.connections) c.closeSync();
    this.instance.closeSync();
  }
}
