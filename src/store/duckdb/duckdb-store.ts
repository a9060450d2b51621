import { accessSync, constants, mkdirSync } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type DuckDBConnection,
  DuckDBInstance,
  type DuckDBResultReader,
  DuckDBTypeId,
  StatementType,
} from '@duckdb/node-api';
import { UserError } from '../../model/errors.js';
import type { SearchFilter } from '../search-filter.js';
import type {
  EventBatch,
  QueryResult,
  RejectedEvent,
  Row,
  Store,
  StoreCapabilities,
  StoreStats,
  WriteResult,
} from '../store.js';
import { CREATE_MACROS, CREATE_TABLES, INSERT_LIST, SCHEMA_VERSION, stagingSelect } from './schema.js';
import { buildSearchSql } from './search-sql.js';

export const DUCKDB_FILE = 'kaudit.duckdb';

export interface DuckDBStoreOptions {
  dataDir: string;
  /** DuckDB worker threads; default: all cores. */
  threads?: number;
  memoryLimit?: string;
}

const US = 0x1f;
const NL = 0x0a;
const NEWLINE = Buffer.from('\n');
const WRITEV_MAX = 1023;
const CHECKPOINT_THRESHOLD = '256MB';

interface Staged {
  /** The staging file, or null when nothing was left to import. */
  path: string | null;
  staged: number;
  longest: number;
  batchDuplicates: number;
  early: RejectedEvent[];
  minTs: number;
  maxTs: number;
}

const SHM_DIR = '/dev/shm';

/**
 * Staging files go to a RAM-backed directory when the system has one: they are written once,
 * read once by DuckDB and deleted, so they need not touch the disk.
 */
function defaultStagingDir(dataDir: string): string {
  try {
    accessSync(SHM_DIR, constants.W_OK);
    return SHM_DIR;
  } catch {
    return dataDir;
  }
}
const AUDIT_ID = Buffer.from('"auditID":"');
const STAGE = Buffer.from('"stage":"');
const RECEIVED = Buffer.from('"requestReceivedTimestamp":"');

function stringAfter(ev: Buffer, mark: Buffer): string | null {
  const at = ev.indexOf(mark);
  if (at < 0) return null;
  const start = at + mark.length;
  const end = ev.indexOf(0x22, start);
  if (end < 0 || ev[end - 1] === 0x5c) return null;
  return ev.toString('latin1', start, end);
}

/**
 * (auditID, stage) and the receive time found by byte search, for de-duplicating within a batch
 * and bounding the anti-join. kube-apiserver (and JSON.stringify of a normalised event) writes
 * these fields before any body, so the first match is the event's own. Null when not found: the
 * event is then left to the SQL checks.
 */
function eventKey(ev: Buffer): { id: string; tsMs: number } | null {
  const id = stringAfter(ev, AUDIT_ID);
  const stage = stringAfter(ev, STAGE);
  const ts = stringAfter(ev, RECEIVED);
  if (id === null || stage === null || ts === null) return null;
  const tsMs = Date.parse(ts);
  return Number.isNaN(tsMs) ? null : { id: `${id}\u0000${stage}`, tsMs };
}

const INTEGER_TYPES = new Set([
  DuckDBTypeId.BIGINT,
  DuckDBTypeId.UBIGINT,
  DuckDBTypeId.HUGEINT,
  DuckDBTypeId.UHUGEINT,
]);

/** JSON-ready rows; 64-bit integers (count(*), sums) become numbers when they fit exactly. */
function toQueryResult(reader: DuckDBResultReader): QueryResult {
  const columns = reader.columnNames();
  const types = reader.columnTypes();
  const big = columns.filter((_c, i) => INTEGER_TYPES.has(types[i]?.typeId ?? DuckDBTypeId.INVALID));
  const rows = reader.getRowObjectsJson() as Row[];
  if (big.length > 0) {
    for (const row of rows) {
      for (const c of big) {
        const v = row[c];
        if (typeof v === 'string' && Number.isSafeInteger(Number(v))) row[c] = Number(v);
      }
    }
  }
  return { columns, rows };
}

function tsLiteral(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

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

export class DuckDBStore implements Store {
  readonly backend = 'duckdb';
  readonly capabilities: StoreCapabilities = { sql: true, concurrentProcesses: false, retention: true };
  readonly location: string;
  private stagingSeq = 0;
  private writing: Promise<unknown> = Promise.resolve();
  private readonly stagingDir: string;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
    private readonly dataDir: string,
  ) {
    this.location = join(dataDir, DUCKDB_FILE);
    this.stagingDir = defaultStagingDir(dataDir);
  }

  static async open(opts: DuckDBStoreOptions): Promise<DuckDBStore> {
    mkdirSync(opts.dataDir, { recursive: true });
    const file = join(opts.dataDir, DUCKDB_FILE);
    let instance: DuckDBInstance;
    try {
      const config: Record<string, string> = { storage_compatibility_version: 'latest' };
      if (opts.threads !== undefined) config.threads = String(opts.threads);
      if (opts.memoryLimit !== undefined) config.memory_limit = opts.memoryLimit;
      instance = await DuckDBInstance.create(file, config);
    } catch (err) {
      throw openError(file, err);
    }
    const conn = await instance.connect();
    await conn.run("SET TimeZone = 'UTC'");
    // The default (16 MB of WAL) checkpoints after nearly every batch, recompressing the last,
    // partly filled row group each time; 256 MB lets row groups fill first. Commits stay durable
    // in the WAL either way.
    await conn.run(`SET checkpoint_threshold = '${CHECKPOINT_THRESHOLD}'`);
    await conn.run(CREATE_TABLES);
    await conn.run(CREATE_MACROS);
    await conn.run(
      `INSERT INTO kaudit_meta VALUES ('schema_version', '${SCHEMA_VERSION}') ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    );
    return new DuckDBStore(instance, conn, opts.dataDir);
  }

  /**
   * Staging starts at once, so the next batch's file is written while the previous one is being
   * imported; imports run one at a time.
   */
  write(batch: EventBatch): Promise<WriteResult> {
    const staged = this.stage(batch);
    const run = this.writing.then(async () => {
      const s = await staged;
      try {
        return await this.importStaging(s, batch.cluster);
      } finally {
        if (s.path !== null) await rm(s.path, { force: true });
      }
    });
    this.writing = run.catch(() => undefined);
    return run;
  }

  private async stage(batch: EventBatch): Promise<Staged> {
    const s: Staged = {
      path: null,
      staged: 0,
      longest: 0,
      batchDuplicates: 0,
      early: [],
      minTs: Number.POSITIVE_INFINITY,
      maxTs: Number.NEGATIVE_INFINITY,
    };
    if (batch.events.length === 0) return s;
    const seen = new Set<string>();
    const parts: Buffer[] = [];
    for (let i = 0; i < batch.events.length; i++) {
      const ev = batch.events[i] as Buffer;
      // A raw unit separator or newline cannot occur in valid JSON; such a line is malformed anyway.
      if (ev.indexOf(US) >= 0 || ev.indexOf(NL) >= 0) {
        s.early.push({ index: i, reason: 'not JSON: raw control character in the event', data: ev });
        continue;
      }
      const key = eventKey(ev);
      if (key !== null) {
        if (seen.has(key.id)) {
          s.batchDuplicates++;
          continue;
        }
        seen.add(key.id);
        if (key.tsMs < s.minTs) s.minTs = key.tsMs;
        if (key.tsMs > s.maxTs) s.maxTs = key.tsMs;
      } else {
        s.minTs = Number.NaN;
      }
      parts.push(Buffer.from(`${i}\x1f`), ev, NEWLINE);
      s.staged++;
      if (ev.length > s.longest) s.longest = ev.length;
    }
    if (s.staged === 0) return s;
    const path = join(this.stagingDir, `.staging-${process.pid}-${this.stagingSeq++}.tsv`);
    const fh = await open(path, 'w');
    s.path = path;
    try {
      for (let k = 0; k < parts.length; k += WRITEV_MAX) await fh.writev(parts.slice(k, k + WRITEV_MAX));
    } catch (err) {
      await rm(path, { force: true });
      throw err;
    } finally {
      await fh.close();
    }
    return s;
  }

  private async importStaging(s: Staged, cluster: string): Promise<WriteResult> {
    if (s.path === null) return { stored: 0, duplicates: s.batchDuplicates, rejected: s.early };
    const select = stagingSelect(s.path, cluster, s.longest);
    // Idempotence on (auditID, stage): every stage of a request shares requestReceivedTimestamp, so
    // the anti-join only reads stored rows within the batch's time range (zone maps skip the rest).
    const range = Number.isFinite(s.minTs)
      ? ` AND t.ts BETWEEN TIMESTAMP '${tsLiteral(s.minTs - 1000)}' AND TIMESTAMP '${tsLiteral(s.maxTs + 1000)}'`
      : '';
    const inserted = await this.conn.run(`
      INSERT INTO audit_events
      SELECT ${INSERT_LIST}
      FROM (${select}) s
      WHERE reject IS NULL
        AND NOT EXISTS (SELECT 1 FROM audit_events t WHERE t.audit_id = s.audit_id AND t.stage = s.stage${range})`);
    const stored = inserted.rowsChanged;
    const rejected = [...s.early];
    // Only when rows are missing is it worth a second pass to tell rejects from stored duplicates.
    if (stored < s.staged) {
      const bad = await this.conn.runAndReadAll(
        `SELECT i, reject, raw FROM (${select}) WHERE reject IS NOT NULL`,
      );
      for (const [i, reason, raw] of bad.getRows()) {
        rejected.push({ index: Number(i), reason: String(reason), data: Buffer.from(String(raw)) });
      }
    }
    rejected.sort((a, b) => a.index - b.index);
    const duplicates = s.batchDuplicates + (s.staged - stored - (rejected.length - s.early.length));
    return { stored, duplicates, rejected };
  }

  async query(sql: string): Promise<QueryResult> {
    const text = sql.trim().replace(/;\s*$/, '');
    let prepared: Awaited<ReturnType<DuckDBConnection['prepare']>>;
    try {
      const stmts = await this.conn.extractStatements(text);
      if (stmts.count !== 1) {
        throw new UserError('KAUDIT_QUERY_INVALID', `expected one SQL statement, got ${stmts.count}`);
      }
      prepared = await stmts.prepare(0);
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError('KAUDIT_QUERY_INVALID', `SQL error: ${(err as Error).message}`, { cause: err });
    }
    const type = prepared.statementType;
    if (type !== StatementType.SELECT && type !== StatementType.EXPLAIN) {
      throw new UserError(
        'KAUDIT_QUERY_READONLY',
        `only read-only queries are allowed (got a ${StatementType[type]} statement)`,
        {
          hint: 'query the `events` view with SELECT',
        },
      );
    }
    try {
      return toQueryResult(await prepared.runAndReadAll());
    } catch (err) {
      throw new UserError('KAUDIT_QUERY_FAILED', `query failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async search(filter: SearchFilter): Promise<QueryResult> {
    const { sql, params } = buildSearchSql(filter);
    return toQueryResult(await this.conn.runAndReadAll(sql, params));
  }

  async stats(): Promise<StoreStats> {
    const r = await this.conn.runAndReadAll(
      "SELECT count(*) AS n, strftime(min(ts), '%Y-%m-%dT%H:%M:%S.%fZ') AS oldest, strftime(max(ts), '%Y-%m-%dT%H:%M:%S.%fZ') AS newest FROM audit_events",
    );
    const row = r.getRowObjectsJson()[0] ?? {};
    let bytes: number | null = null;
    for (const f of [this.location, `${this.location}.wal`]) {
      try {
        bytes = (bytes ?? 0) + (await stat(f)).size;
      } catch {
        // no WAL after a checkpoint
      }
    }
    return {
      rows: Number(row.n ?? 0),
      bytes,
      oldest: (row.oldest as string | null) ?? null,
      newest: (row.newest as string | null) ?? null,
    };
  }

  async deleteOlderThan(days: number): Promise<number> {
    if (!(days > 0))
      throw new UserError(
        'KAUDIT_RETENTION_INVALID',
        `retention must be a positive number of days, got ${days}`,
      );
    const r = await this.conn.run(
      `DELETE FROM audit_events WHERE ts < now()::TIMESTAMP - to_microseconds(CAST(${Math.round(days * 86_400e6)} AS BIGINT))`,
    );
    return r.rowsChanged;
  }

  async checkpoint(): Promise<void> {
    await this.conn.run('CHECKPOINT');
  }

  async close(): Promise<void> {
    await this.writing;
    try {
      await this.conn.run('CHECKPOINT');
    } catch {
      // closing anyway; the WAL is replayed at the next open
    }
    this.conn.closeSync();
    this.instance.closeSync();
  }
}
