import { mkdirSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance, StatementType } from '@duckdb/node-api';
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
import { CREATE_MACROS, CREATE_TABLES, SCHEMA_VERSION, stagingSelect } from './schema.js';
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

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
    private readonly dataDir: string,
  ) {
    this.location = join(dataDir, DUCKDB_FILE);
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
    await conn.run(CREATE_TABLES);
    await conn.run(CREATE_MACROS);
    await conn.run(
      `INSERT INTO kaudit_meta VALUES ('schema_version', '${SCHEMA_VERSION}') ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    );
    return new DuckDBStore(instance, conn, opts.dataDir);
  }

  /** Writes are serialised: one staging file and one transaction at a time. */
  write(batch: EventBatch): Promise<WriteResult> {
    const run = this.writing.then(() => this.writeNow(batch));
    this.writing = run.catch(() => undefined);
    return run;
  }

  private async writeNow(batch: EventBatch): Promise<WriteResult> {
    if (batch.events.length === 0) return { stored: 0, duplicates: 0, rejected: [] };
    const rejected: RejectedEvent[] = [];
    // A raw unit separator or newline cannot occur in valid JSON; such a line is malformed anyway.
    const staging = join(this.dataDir, `.staging-${process.pid}-${this.stagingSeq++}.tsv`);
    const fh = await open(staging, 'w');
    try {
      const parts: Buffer[] = [];
      let size = 0;
      const flush = async () => {
        if (parts.length === 0) return;
        await fh.write(Buffer.concat(parts, size));
        parts.length = 0;
        size = 0;
      };
      for (let i = 0; i < batch.events.length; i++) {
        const ev = batch.events[i] as Buffer;
        if (ev.indexOf(US) >= 0 || ev.indexOf(NL) >= 0) {
          rejected.push({ index: i, reason: 'not JSON: raw control character in the event' });
          continue;
        }
        const head = Buffer.from(`${i}\x1f`);
        parts.push(head, ev, Buffer.from('\n'));
        size += head.length + ev.length + 1;
        if (size > 8 << 20) await flush();
      }
      await flush();
    } finally {
      await fh.close();
    }
    try {
      return await this.importStaging(staging, batch, rejected);
    } finally {
      await rm(staging, { force: true });
    }
  }

  private async importStaging(
    staging: string,
    batch: EventBatch,
    rejected: RejectedEvent[],
  ): Promise<WriteResult> {
    const conn = this.conn;
    await conn.run('BEGIN TRANSACTION');
    try {
      await conn.run(
        `CREATE OR REPLACE TEMP TABLE kaudit_staged AS ${stagingSelect(staging, batch.cluster)}`,
      );
      const bad = await conn.runAndReadAll(
        'SELECT i, reject FROM kaudit_staged WHERE reject IS NOT NULL ORDER BY i',
      );
      for (const [i, reason] of bad.getRows()) rejected.push({ index: Number(i), reason: String(reason) });
      const valid = batch.events.length - rejected.length;
      // Idempotence on (auditID, stage): every stage of a request shares requestReceivedTimestamp,
      // so the anti-join only looks at stored rows within the batch's time range (zone maps skip the rest).
      const inserted = await conn.run(`
        INSERT INTO audit_events
        SELECT ts, stage_ts, audit_id, stage, level, verb, username, user_uid, groups, impersonated_user, subject,
          source_ip, source_ips, user_agent, api_group, api_version, resource, subresource, namespace, name,
          request_uri, code, decision, reason, latency_ms, long_running, latency_breakdown, truncated, cluster,
          now()::TIMESTAMP, raw
        FROM kaudit_staged s
        WHERE reject IS NULL
          AND NOT EXISTS (
            SELECT 1 FROM audit_events t
            WHERE t.audit_id = s.audit_id AND t.stage = s.stage
              AND t.ts BETWEEN (SELECT min(ts) FROM kaudit_staged) AND (SELECT max(ts) FROM kaudit_staged))
        QUALIFY row_number() OVER (PARTITION BY audit_id, stage ORDER BY i) = 1`);
      const stored = inserted.rowsChanged;
      await conn.run('DROP TABLE kaudit_staged');
      await conn.run('COMMIT');
      return { stored, duplicates: valid - stored, rejected: rejected.sort((a, b) => a.index - b.index) };
    } catch (err) {
      await conn.run('ROLLBACK').catch(() => undefined);
      throw err;
    }
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
      const reader = await prepared.runAndReadAll();
      return { columns: reader.columnNames(), rows: reader.getRowObjectsJson() as Row[] };
    } catch (err) {
      throw new UserError('KAUDIT_QUERY_FAILED', `query failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async search(filter: SearchFilter): Promise<QueryResult> {
    const { sql, params } = buildSearchSql(filter);
    const reader = await this.conn.runAndReadAll(sql, params);
    return { columns: reader.columnNames(), rows: reader.getRowObjectsJson() as Row[] };
  }

  async stats(): Promise<StoreStats> {
    const r = await this.conn.runAndReadAll(
      "SELECT count(*) AS n, strftime(min(ts), '%Y-%m-%dT%H:%M:%S.%fZ') AS oldest, strftime(max(ts), '%Y-%m-%dT%H:%M:%S.%fZ') AS newest FROM audit_events",
    );
    const row = r.getRowObjectsJson()[0] ?? {};
    const size = await this.conn.runAndReadAll(
      'SELECT sum(total_blocks * block_size) AS b FROM pragma_database_size()',
    );
    const bytes = size.getRowObjectsJson()[0]?.b;
    return {
      rows: Number(row.n ?? 0),
      bytes: bytes === null || bytes === undefined ? null : Number(bytes),
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
