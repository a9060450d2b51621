import { randomBytes } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  ftruncateSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statfsSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { DuckDBConnection, DuckDBResultReader, DuckDBInstance as Instance } from '@duckdb/node-api';
import { UserError } from '../../model/errors.js';
import { FACT_CONTROL, FACT_KEY, FACT_LATENCY, newEventScanner } from '../../model/event-scan.js';
import { processAlive } from '../../model/process.js';
import type {
  EventBatch,
  HeldBatch,
  RejectedEvent,
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
  EventFilter,
  ScanQuery,
  SearchPage,
  SearchQuery,
} from '../query.js';
import { eventKey } from './event-key.js';
import { Claim, KeyWindow, type WindowBatch } from './key-window.js';
import { aggregate, count, isoExpr, normalizeRow, scan, search } from './read.js';
import {
  CREATE_MACROS,
  CREATE_TABLES,
  createView,
  insertList,
  layoutOf,
  sqlString,
  stagingSelect,
  type TableShape,
} from './schema.js';
import { RestageError, type StagedBatch } from './staged.js';

// Loaded with require(): an ESM import of this CommonJS package has Node scan its sources for
// export names first, which doubled the time every `kaudit` command took to start (~0.2 s more).
const { DuckDBInstance, DuckDBTypeId, StatementType } = createRequire(import.meta.url)(
  '@duckdb/node-api',
) as typeof import('@duckdb/node-api');

export const DUCKDB_FILE = 'kaudit.duckdb';

export interface DuckDBStoreOptions {
  dataDir: string;
  /** DuckDB worker threads; default: all cores. */
  threads?: number;
  memoryLimit?: string;
  /**
   * Imports that may run at once, each on its own connection; default 2. One import of a batch of
   * row-group size compresses on one thread, so two writers keep two cores busy.
   */
  writers?: number;
  /** (auditID, stage) keys kept in memory to de-duplicate without reading the table; default 131,072. */
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
}

// Events scanned per call into the WebAssembly reader: its memory stays near twice this...
const SCAN_SLICE_BYTES = 2 << 20;
// ...unless one event is larger; a scanner that grew past this is dropped after the batch, since
// WebAssembly memory cannot shrink.
const SCANNER_MEMORY_MAX = 32 << 20;
// The store needs keys and control characters, not prepare.ts's redaction check.
const STORE_FACTS = { plain: false, maxEventBytes: 0, redact: false };
const CHECKPOINT_THRESHOLD = '256MB';

interface Staged {
  /** The staging file, or null when nothing was left to import. */
  path: string | null;
  staged: number;
  longest: number;
  batchDuplicates: number;
  early: RejectedEvent[];
  /** Range of the staged rows' stage times (NaN when a row has none), bounding the anti-join. */
  minStageMs: number;
  maxStageMs: number;
  /** Some row may already be in the table: the import must anti-join. */
  checkTable: boolean;
  /** An import of it failed, maybe after its commit. */
  failed: boolean;
  /**
   * The batches, not yet stored when this one was staged, that held keys this one counted as
   * duplicates (null if none): this one is stored only once they are, and fails if one is let go
   * or rejects its copy instead, since it holds no copy of those events.
   */
  after: Map<Staged, string[]> | null;
  /** Settles when a running import of this batch ends. */
  importing: Promise<void> | null;
  /** Keys (KeyWindow.keyName) of rows its import rejected and gave back; null if none. */
  givenBack: Set<string> | null;
  outcome: 'pending' | 'stored' | 'let go';
  /** The key window of the batch's cluster: an event's identity includes its cluster. */
  keys: KeyWindow;
  cluster: string;
  window: WindowBatch;
  /**
   * Repeats within the batch of a key it holds (KeyWindow.keyName -> their batch indexes, in order),
   * staged as spare rows: if the row holding the key is rejected, the first valid spare is stored
   * instead. Null if none.
   */
  spares: Map<string, number[]> | null;
  /** Batch index -> staged row (-1: not staged, SPARE_ROW: a spare), for giving back the keys of rejected rows. */
  rowOf: Int32Array;
  /** Batch indexes dropped at staging as duplicates of another batch's copies (stored by the time this one is). */
  knownDuplicates: number[];
  /** Batch index -> byte offset and length of the event in the staging file, to read back a row DuckDB skipped. */
  fileAt: Float64Array;
  lengths: Int32Array;
}

/** rowOf of a spare row (Staged.spares). */
const SPARE_ROW = -2;

/** Appends `value` to the list `map` holds for `key`. */
function heldKey(cluster: string, id: number): string {
  return `${cluster}\u0000${id}`;
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

const DEFAULT_WRITERS = 2;
/** Scans that may stream at once; more wait for one to end. */
const SCAN_CONNECTIONS = 2;
const CATALOG = 'kaudit';
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

const SHM_DIR = '/dev/shm';
const SHM_MIN_FREE_BYTES = 2 * 1024 ** 3;

/**
 * Staging files go to a RAM-backed directory when the system has one: they are written once,
 * read once by DuckDB and deleted, so they need not touch the disk.
 */
function stagingBase(dataDir: string): string {
  try {
    accessSync(SHM_DIR, constants.W_OK);
    // A container's /dev/shm is often 64 MB; a few batches in flight need far more.
    const fs = statfsSync(SHM_DIR);
    return fs.bavail * fs.bsize >= SHM_MIN_FREE_BYTES ? SHM_DIR : dataDir;
  } catch {
    return dataDir;
  }
}
/** Files of releases before staging had a directory of its own; directories of the staging now. */
const STAGING_FILE = /^\.kaudit-staging-(\d+)-\d+\.tsv$/;
const STAGING_DIR = /^kaudit-staging-(\d+)-[0-9a-f]+$/;

/**
 * The store's own staging directory (owner-only, in RAM when possible): the one directory user SQL
 * could name besides the spill directory, so it holds nothing but this store's batches.
 */
function makeStagingDir(dataDir: string): string {
  const dir = join(stagingBase(dataDir), `kaudit-staging-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}

function stagingName(pid: number, seq: number): string {
  return `.kaudit-staging-${pid}-${seq}.tsv`;
}

/**
 * Deletes staging files left by processes that died mid-import (kill -9, OOM): they would otherwise
 * stay in /dev/shm, in RAM, until reboot. Only regular files of processes no longer running.
 */
function removeStaleStaging(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const file = STAGING_FILE.exec(name);
    const folder = STAGING_DIR.exec(name);
    const pid = Number((file ?? folder)?.[1] ?? Number.NaN);
    if (!Number.isInteger(pid) || pid === process.pid || processAlive(pid)) continue;
    const path = join(dir, name);
    try {
      const st = lstatSync(path);
      if (file !== null && st.isFile()) unlinkSync(path);
      else if (folder !== null && st.isDirectory()) rmSync(path, { recursive: true, force: true });
    } catch {
      // gone already, or not ours to delete
    }
  }
}

const INTEGER_TYPES = new Set([
  DuckDBTypeId.BIGINT,
  DuckDBTypeId.UBIGINT,
  DuckDBTypeId.HUGEINT,
  DuckDBTypeId.UHUGEINT,
]);

/** JSON-ready rows; 64-bit integers (count(*), sums) become numbers when they fit exactly. */
function toQueryResult(reader: DuckDBResultReader): { columns: string[]; rows: Row[] } {
  const columns = reader.columnNames();
  const types = reader.columnTypes();
  const big = columns.filter((_c, i) => INTEGER_TYPES.has(types[i]?.typeId ?? DuckDBTypeId.INVALID));
  const rows = (reader.getRowObjectsJson() as Row[]).map(normalizeRow);
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

/**
 * Shuts the instance off from the host, for every connection and whatever SQL a user sends: no file
 * outside the staging directory (which imports read) and the spill directory, no extension
 * installed or loaded, and no setting changed afterwards (`lock_configuration`). These settings are
 * the instance's: set once, after the store file is attached.
 */
async function sandbox(conn: DuckDBConnection, dataDir: string, stagingDir: string): Promise<void> {
  const spill = join(dataDir, '.tmp');
  await conn.run(`SET temp_directory = ${sqlString(spill)}`);
  await conn.run(`SET allowed_directories = [${sqlString(`${stagingDir}/`)}, ${sqlString(`${spill}/`)}]`);
  await conn.run('SET enable_external_access = false');
  await conn.run('SET autoinstall_known_extensions = false');
  await conn.run('SET autoload_known_extensions = false');
  await conn.run('SET lock_configuration = true');
}

/** A connection to the store's catalog, in UTC, with kaudit's macros (they are per connection). */
async function connectTo(instance: Instance): Promise<DuckDBConnection> {
  const c = await instance.connect();
  try {
    await c.run(`USE ${CATALOG}`);
    await c.run("SET TimeZone = 'UTC'");
    await c.run(CREATE_MACROS);
    return c;
  } catch (err) {
    c.closeSync();
    throw err;
  }
}

export class DuckDBStore implements Store {
  readonly backend = 'duckdb';
  readonly capabilities: StoreCapabilities;
  readonly location: string;
  private stagingSeq = 0;
  /**
   * Staging files whose import is done, kept to be written over: tmpfs pages already allocated are
   * reused instead of zeroed afresh, which halves the cost of writing a batch. Deleted at close().
   */
  private readonly spareStaging: string[] = [];
  private closing = false;
  /** Imports that had to look their rows up in the table (the key window could not vouch for them). */
  tableChecks = 0;
  private readonly stagingDir: string;
  private readonly idleWriters: DuckDBConnection[];
  private readonly writerWaiters: ((conn: DuckDBConnection) => void)[] = [];
  private readonly imports = new Set<Promise<unknown>>();
  /**
   * Staged batches not yet stored, by their key-window id: their files and keys, let go at close()
   * if never written.
   */
  private readonly held = new Map<string, Staged>();
  /** A key window per cluster, made on first use. */
  private readonly windows = new Map<string, KeyWindow>();
  private scanner = newEventScanner();
  private sqlTurn: Promise<void> = Promise.resolve();
  private readonly scanWaiters: ((conn: DuckDBConnection) => void)[] = [];

  private constructor(
    private readonly instance: Instance,
    private readonly conn: DuckDBConnection,
    writers: DuckDBConnection[],
    /** The connection user SQL runs on (sql()), set up before the configuration was locked. */
    private readonly sqlConn: DuckDBConnection,
    /** Connections kept for scans, each held by one scan while it streams. */
    private readonly scanConns: DuckDBConnection[],
    /** Per cluster, the newest stage time stored when the file was opened (the key windows' floors). */
    private readonly floors: ReadonlyMap<string, number>,
    private readonly windowSize: number,
    dataDir: string,
    /** The SELECT list that fills audit_events (schema.ts insertList), for the file's table. */
    private readonly insertList: string,
    readonly schemaVersion: number,
    stagingDir: string,
  ) {
    this.location = join(dataDir, DUCKDB_FILE);
    this.stagingDir = stagingDir;
    this.idleWriters = writers;
    this.capabilities = {
      sql: true,
      parallelWrites: writers.length,
      batchEvents: ROW_GROUP_ROWS,
    };
  }

  static async open(opts: DuckDBStoreOptions): Promise<DuckDBStore> {
    // Audit events are sensitive: a data directory kaudit creates is its user's alone.
    mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    const file = join(opts.dataDir, DUCKDB_FILE);
    const config: Record<string, string> = {};
    if (opts.threads !== undefined) config.threads = String(opts.threads);
    if (opts.memoryLimit !== undefined) config.memory_limit = opts.memoryLimit;
    if (opts.trimMemory === true) config.allocator_bulk_deallocation_flush_threshold = '4MiB';
    const instance = await DuckDBInstance.create(':memory:', config);
    // Attached rather than opened, for ROW_GROUP_SIZE (an attach option); compression needs the
    // latest storage version (else the file is ~8x larger).
    try {
      const setup = await instance.connect();
      try {
        await setup.run(
          `ATTACH ${sqlString(file)} AS ${CATALOG} (STORAGE_VERSION 'latest', ROW_GROUP_SIZE ${ROW_GROUP_ROWS})`,
        );
      } finally {
        setup.closeSync();
      }
    } catch (err) {
      instance.closeSync();
      throw openError(file, err);
    }
    const writerCount = Math.max(1, opts.writers ?? DEFAULT_WRITERS);
    let conn: DuckDBConnection | undefined;
    let stagingDir: string | undefined;
    let sqlConn: DuckDBConnection | undefined;
    const scanConns: DuckDBConnection[] = [];
    const writers: DuckDBConnection[] = [];
    try {
      conn = await connectTo(instance);
      // The default (16 MB of WAL) checkpoints after nearly every batch, recompressing the last,
      // partly filled row group each time; 256 MB lets row groups fill first. Commits stay durable
      // in the WAL either way.
      await conn.run(`SET checkpoint_threshold = '${opts.checkpointThreshold ?? CHECKPOINT_THRESHOLD}'`);
      await conn.run(CREATE_TABLES);
      // A file made with layout 1 keeps it and says so: the view and the inserts follow its columns.
      const columns = await conn.runAndReadAll(
        `SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = '${CATALOG}' AND table_name = 'audit_events'`,
      );
      const types = new Map(columns.getRows().map(([name, type]) => [String(name), String(type)]));
      const shape: TableShape = {
        rawIsBlob: types.get('raw') === 'BLOB',
        storesDerived: types.has('subject'),
      };
      await conn.run(createView(shape));
      await conn.run(
        `INSERT INTO kaudit_meta VALUES ('schema_version', '${layoutOf(shape)}') ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      );
      for (let i = 0; i < writerCount; i++) writers.push(await connectTo(instance));
      sqlConn = await connectTo(instance);
      for (let i = 0; i < SCAN_CONNECTIONS; i++) scanConns.push(await connectTo(instance));
      for (const dir of new Set([stagingBase(opts.dataDir), opts.dataDir])) removeStaleStaging(dir);
      stagingDir = makeStagingDir(opts.dataDir);
      await sandbox(conn, opts.dataDir, stagingDir);
      const newest = await conn.runAndReadAll(
        'SELECT cluster, epoch_us(max(stage_ts)) FROM audit_events GROUP BY cluster',
      );
      const floors = new Map<string, number>();
      for (const [cluster, us] of newest.getRows())
        if (us !== null && us !== undefined) floors.set(String(cluster), Math.ceil(Number(us) / 1000));
      return new DuckDBStore(
        instance,
        conn,
        writers,
        sqlConn,
        scanConns,
        floors,
        opts.dedupeWindow ?? DEFAULT_DEDUPE_WINDOW,
        opts.dataDir,
        insertList(shape),
        layoutOf(shape),
        stagingDir,
      );
    } catch (err) {
      for (const c of [conn, sqlConn, ...scanConns, ...writers]) c?.closeSync();
      instance.closeSync();
      if (stagingDir !== undefined) rmSync(stagingDir, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Writes the batch's events to a staging file at once, so later batches are staged while earlier
   * ones are imported; up to `writers` imports run at once, each on its own connection. A failed
   * import keeps its file and its keys for the next write() of the batch.
   */
  /** DuckDB's own protocol under hold(): public for this folder's tests only. */
  stage(batch: EventBatch): StagedBatch {
    if (this.closing) throw new Error(`the store ${this.location} is closing`);
    const s = this.stageRows(batch);
    // Only the cluster outlives staging: the events' memory goes back as soon as they are in the file.
    const { cluster } = batch;
    this.held.set(heldKey(cluster, s.window.id), s);
    // Its state is the Staged's: being written while `importing` is set, done once not pending.
    return {
      selfContained: s.after === null,
      write: () => {
        if (s.outcome !== 'pending' || s.importing !== null)
          return Promise.reject(
            new Error(`write() of a staged batch that is ${s.importing === null ? 'done' : 'being written'}`),
          );
        const run = this.importStaged(s, cluster).then(
          (result) => {
            s.importing = null;
            s.outcome = 'stored';
            this.held.delete(heldKey(cluster, s.window.id));
            return result;
          },
          (err: unknown) => {
            s.importing = null;
            if (!(err instanceof RestageError)) {
              // The import may have failed after its commit: a retry must look its rows up, and
              // so must any later batch with the same keys if this one is let go.
              s.checkTable = true;
              s.failed = true;
            }
            throw err;
          },
        );
        const ended = run.then(
          () => undefined,
          () => undefined,
        );
        s.importing = ended;
        this.imports.add(ended);
        void ended.then(() => this.imports.delete(ended));
        return run;
      },
      discard: async () => {
        if (s.importing !== null) throw new Error('discard() of a staged batch being written');
        if (s.outcome !== 'pending') return;
        this.letGo(s);
        await this.recycle(s.path);
      },
    };
  }

  /**
   * The contract's hold(): stages the batch now. A batch that counted events as duplicates of a batch
   * still pending keeps its events, and if that batch's copies turn out not stored (RestageError)
   * it is staged again here: callers never see DuckDB's staging.
   */
  hold(batch: EventBatch): HeldBatch {
    const { cluster } = batch;
    let staged = this.stage(batch);
    let events: Buffer[] | null = staged.selfContained ? null : [...batch.events];
    return {
      commit: async () => {
        for (let attempt = 0; ; attempt++) {
          try {
            const r = await staged.write();
            events = null;
            return r;
          } catch (err) {
            // Each restage follows an earlier batch settling, so this ends; the cap is a guard.
            if (!(err instanceof RestageError) || events === null || attempt >= 1000) throw err;
            await staged.discard();
            staged = this.stage({ events, cluster });
            if (staged.selfContained) events = null;
          }
        }
      },
      discard: async () => {
        events = null;
        await staged.discard();
      },
    };
  }

  async write(batch: EventBatch): Promise<WriteResult> {
    const held = this.hold(batch);
    try {
      return await held.commit();
    } catch (err) {
      await held.discard();
      throw err;
    }
  }

  private async importStaged(s: Staged, cluster: string): Promise<WriteResult> {
    if (s.after !== null) {
      await this.awaitEarlier(s.after);
      // Not kept: a chain of batches each waiting for the one before would hold them all.
      s.after = null;
    }
    if (s.path === null) {
      s.keys.settle(s.window);
      return {
        stored: 0,
        duplicates: s.batchDuplicates,
        duplicateIndexes: s.knownDuplicates,
        rejected: s.early,
      };
    }
    const conn = await this.takeWriter();
    let result: WriteResult;
    try {
      result = await this.importStaging(conn, s, s.path, cluster);
    } finally {
      this.releaseWriter(conn);
    }
    s.keys.settle(s.window);
    await this.recycle(s.path);
    return result;
  }

  /**
   * Waits for the imports running of batches this one counted duplicates against; throws if one of
   * them is not stored after all (let go, or failed and waiting for its retry: waiting for that
   * could hold up the retry itself), or rejected its copy of one of those events.
   */
  private async awaitEarlier(earlier: ReadonlyMap<Staged, readonly string[]>): Promise<void> {
    for (const [e, keys] of earlier) {
      if (e.outcome === 'pending' && e.importing !== null) await e.importing;
      const given = e.givenBack;
      if (e.outcome !== 'stored' || (given !== null && keys.some((k) => given.has(k))))
        throw new RestageError(
          'some events of this batch were counted as duplicates of copies that were not stored; stage them again',
        );
    }
  }

  private windowOf(cluster: string): KeyWindow {
    let w = this.windows.get(cluster);
    if (w === undefined) {
      w = new KeyWindow(this.windowSize, this.floors.get(cluster) ?? Number.NEGATIVE_INFINITY);
      this.windows.set(cluster, w);
    }
    return w;
  }

  /** Gives back the keys of a batch that will not be imported (again). */
  private letGo(s: Staged): void {
    s.outcome = 'let go';
    s.after = null;
    this.held.delete(heldKey(s.cluster, s.window.id));
    s.keys.abandon(s.window, s.failed);
  }

  /**
   * A staging file that is done with: kept to be written over while there are few spares (as many
   * as can be staged or importing at once with the writers kept busy), else deleted; none once
   * close() has begun (it deletes the spares).
   */
  private async recycle(path: string | null): Promise<void> {
    if (path === null) return;
    if (!this.closing && this.spareStaging.length < this.capabilities.parallelWrites + 2)
      this.spareStaging.push(path);
    else await rm(path, { force: true }).catch(() => undefined);
  }

  private takeWriter(): Promise<DuckDBConnection> {
    const conn = this.idleWriters.pop();
    if (conn !== undefined) return Promise.resolve(conn);
    return new Promise((resolve) => this.writerWaiters.push(resolve));
  }

  private releaseWriter(conn: DuckDBConnection): void {
    const next = this.writerWaiters.shift();
    if (next !== undefined) next(conn);
    else this.idleWriters.push(conn);
  }

  /** Writes the batch's new events to a staging file, claiming their keys in hand-over order. */
  private stageRows(batch: EventBatch): Staged {
    const events = batch.events;
    const keys = this.windowOf(batch.cluster);
    const s: Staged = {
      path: null,
      staged: 0,
      longest: 0,
      batchDuplicates: 0,
      early: [],
      minStageMs: Number.POSITIVE_INFINITY,
      maxStageMs: Number.NEGATIVE_INFINITY,
      checkTable: false,
      failed: false,
      after: null,
      importing: null,
      givenBack: null,
      spares: null,
      outcome: 'pending',
      knownDuplicates: [],
      keys,
      cluster: batch.cluster,
      window: keys.begin(events.length),
      rowOf: new Int32Array(events.length).fill(-1),
      fileAt: new Float64Array(events.length),
      lengths: new Int32Array(events.length),
    };
    let fd = -1;
    let path = '';
    let fileBytes = 0;
    // The pending batches that hold keys this one counted as duplicates.
    const after = new Map<Staged, string[]>();
    const scan = this.scanner;
    try {
      // Slices bound the scanner's memory; one event larger than a slice is a slice of its own.
      for (let from = 0; from < events.length; ) {
        let to = from;
        let bytes = 0;
        while (
          to < events.length &&
          (to === from || bytes + (events[to] as Buffer).length <= SCAN_SLICE_BYTES)
        )
          bytes += (events[to++] as Buffer).length;
        scan.load(events, from, to);
        scan.readFacts(STORE_FACTS);
        let kept = 0;
        for (let i = from; i < to; i++) {
          const k = i - from;
          const ev = events[i] as Buffer;
          const flags = scan.flags(k);
          // The file's separators, raw, would split the row; kube-apiserver never writes them raw (a
          // CR is legal JSON white space, but no serializer puts one inside a line).
          if ((flags & FACT_CONTROL) !== 0) {
            // A copy: the caller may reuse its buffers once the batch is staged.
            s.early.push({
              index: i,
              reason: 'not JSON: raw control character in the event',
              data: Buffer.from(ev),
            });
            continue;
          }
          let claim: Claim;
          let stageMs: number;
          let latency: boolean;
          if ((flags & FACT_KEY) !== 0) {
            stageMs = scan.stageMs(k);
            latency = (flags & FACT_LATENCY) !== 0;
            claim = keys.claimWords(s.window, scan.u32, scan.wordsAt(k), stageMs);
          } else {
            const key = eventKey(ev);
            stageMs = key?.stageMs ?? Number.NaN;
            latency = key?.mayHaveLatency ?? true;
            claim = keys.claim(s.window, key?.id ?? null, key?.stageMs ?? 0);
          }
          let spare = false;
          if (claim === Claim.Duplicate) {
            s.batchDuplicates++;
            if (keys.duplicateOf === s.window.id) {
              // A repeat within this batch: kept as a spare, stored only if the copy that holds the
              // key is rejected (kube-apiserver writes no such repeats; a corrupted log might).
              spare = true;
              s.spares ??= new Map();
              pushTo(s.spares, keys.duplicateKey, i);
              // It may be stored in the holder's place, and its stage time may differ from the
              // holder's (a damaged copy): the window vouches for it by its own time.
              claim = keys.covered(s.window, stageMs);
            } else {
              const owner = this.held.get(heldKey(batch.cluster, keys.duplicateOf));
              if (owner !== undefined) pushTo(after, owner, keys.duplicateKey);
              s.knownDuplicates.push(i);
              continue;
            }
          }
          if (claim === Claim.CheckTable) s.checkTable = true;
          // A spare's time counts too: a retry's anti-join must find it if it was stored.
          if (Number.isNaN(stageMs)) s.minStageMs = Number.NaN;
          else {
            if (stageMs < s.minStageMs) s.minStageMs = stageMs;
            if (stageMs > s.maxStageMs) s.maxStageMs = stageMs;
          }
          s.rowOf[i] = spare ? SPARE_ROW : s.staged++;
          s.lengths[i] = ev.length;
          if (ev.length > s.longest) s.longest = ev.length;
          scan.keep(k, latency, spare);
          kept++;
        }
        if (kept > 0) {
          if (fd < 0) ({ fd, path } = this.openStaging());
          const rows = scan.stagingRows(from);
          for (let i = from; i < to; i++)
            if ((s.rowOf[i] as number) !== -1) s.fileAt[i] = fileBytes + scan.rowStart(i - from);
          // Written synchronously: it is a memory copy on tmpfs, and async writes would wait for the
          // event loop, which a busy producer (ingest's parse loop) keeps to itself.
          for (let done = 0; done < rows.length; )
            done += writeSync(fd, rows, done, rows.length - done, fileBytes + done);
          fileBytes += rows.length;
        }
        from = to;
      }
      // A file written over keeps its old length until cut.
      if (fd >= 0) ftruncateSync(fd, fileBytes);
    } catch (err) {
      s.keys.abandon(s.window);
      if (fd >= 0) {
        closeSync(fd);
        rmSync(path, { force: true });
      }
      throw err;
    }
    if (this.scanner.memoryBytes > SCANNER_MEMORY_MAX) this.scanner = newEventScanner();
    if (after.size > 0) s.after = after;
    if (fd >= 0) {
      closeSync(fd);
      s.path = path;
    }
    return s;
  }

  private openStaging(): { fd: number; path: string } {
    for (let spare = this.spareStaging.pop(); spare !== undefined; spare = this.spareStaging.pop()) {
      try {
        return { fd: openSync(spare, 'r+'), path: spare };
      } catch {
        // deleted meanwhile: make another
      }
    }
    const path = join(this.stagingDir, stagingName(process.pid, this.stagingSeq++));
    // Owner-only: /dev/shm is shared by every user of the machine.
    return { fd: openSync(path, 'w', 0o600), path };
  }

  private async importStaging(
    conn: DuckDBConnection,
    s: Staged,
    path: string,
    cluster: string,
  ): Promise<WriteResult> {
    const select = stagingSelect(path, cluster, s.longest);
    // Idempotence on (auditID, stage). The key window has already dropped what this instance wrote;
    // only rows that may predate it are looked up in the table. A repeat of an event carries its
    // stageTimestamp, and rows arrive in nearly stage-time order, so the anti-join reads stored rows
    // within the batch's stage-time range (zone maps on stage_ts skip the rest).
    let antiJoin = '';
    if (s.checkTable) {
      this.tableChecks++;
      const range = Number.isFinite(s.minStageMs)
        ? ` AND t.stage_ts BETWEEN TIMESTAMP '${tsLiteral(s.minStageMs - 1000)}' AND TIMESTAMP '${tsLiteral(s.maxStageMs + 1000)}'`
        : '';
      antiJoin = ` AND NOT EXISTS (SELECT 1 FROM audit_events t WHERE t.audit_id = s.audit_id AND t.stage = s.stage AND t.cluster = s.cluster${range})`;
    }
    const notSpare = s.spares === null ? '' : ' AND NOT spare';
    const inserted = await conn.run(`
      INSERT INTO audit_events
      SELECT ${this.insertList}
      FROM (${select}) s
      WHERE reject IS NULL${notSpare}${antiJoin}`);
    const storedRows = inserted.rowsChanged;
    let storedSpares = 0;
    const rejected = [...s.early];
    let rejectedRows = 0;
    let rejectedSpares = 0;
    // Only when rows are missing is it worth a second pass to tell rejects from stored duplicates.
    if (storedRows < s.staged) {
      const all = await conn.runAndReadAll(
        `SELECT i, reject, CASE WHEN reject IS NOT NULL THEN raw END FROM (${select})`,
      );
      // Batch index -> why DuckDB rejected the row (null: it did not), for every row it read.
      const reasons = new Map<number, string | null>();
      const raws = new Map<number, string>();
      for (const [i, reason, raw] of all.getRows()) {
        const index = Number(i);
        reasons.set(index, reason === null ? null : String(reason));
        if (raw !== null) raws.set(index, String(raw));
      }
      // DuckDB skips a line it cannot read (ignore_errors): in practice bytes that are not UTF-8.
      const reasonOf = (index: number): string | null =>
        reasons.has(index) ? (reasons.get(index) ?? null) : 'not UTF-8 text';
      // Opened once, for the rows DuckDB skipped: their bytes are read back from the file.
      let fd = -1;
      const refuse = (index: number, reason: string) => {
        const raw = raws.get(index);
        let data: Buffer;
        if (raw !== undefined) data = Buffer.from(raw);
        else {
          if (fd < 0) fd = openSync(path, 'r');
          data = Buffer.allocUnsafe(s.lengths[index] ?? 0);
          readSync(fd, data, 0, data.length, s.fileAt[index] ?? 0);
        }
        rejected.push({ index, reason, data });
      };
      const recover: number[] = [];
      try {
        for (let index = 0; index < s.rowOf.length; index++) {
          if ((s.rowOf[index] as number) < 0) continue;
          const reason = reasonOf(index);
          if (reason === null) continue;
          refuse(index, reason);
          rejectedRows++;
          // The first valid spare copy of its key, if any, is stored in its place; the key stays held.
          const name = s.keys.keyName(s.window, s.rowOf[index] as number);
          const copies = name === null ? undefined : s.spares?.get(name);
          let replaced = false;
          for (const copy of copies ?? []) {
            const spareReason = reasonOf(copy);
            if (spareReason === null) {
              recover.push(copy);
              replaced = true;
              break;
            }
            refuse(copy, spareReason);
            rejectedSpares++;
          }
          if (!replaced) this.giveBack(s, index);
        }
      } finally {
        if (fd >= 0) closeSync(fd);
      }
      if (recover.length > 0) {
        const more = await conn.run(`
          INSERT INTO audit_events
          SELECT ${this.insertList}
          FROM (${select}) s
          WHERE reject IS NULL AND spare AND i IN (${recover.join(', ')})${antiJoin}`);
        // A copy the anti-join finds stored already stays a duplicate.
        storedSpares = more.rowsChanged;
      }
    }
    rejected.sort((a, b) => a.index - b.index);
    // Counted as duplicates at staging: every spare and every repeat of another batch's key. Of the
    // staged rows, those neither stored nor rejected were in the table already.
    const duplicates =
      s.batchDuplicates - storedSpares - rejectedSpares + (s.staged - storedRows - rejectedRows);
    return { stored: storedRows + storedSpares, duplicates, duplicateIndexes: s.knownDuplicates, rejected };
  }

  private giveBack(s: Staged, index: number): void {
    const row = s.rowOf[index];
    if (row !== undefined && row >= 0) {
      // Named before it is given back (that forgets the row's key).
      const name = s.keys.keyName(s.window, row);
      if (name !== null) {
        s.givenBack ??= new Set();
        s.givenBack.add(name);
      }
      s.keys.giveBack(s.window, row);
    }
  }

  /**
   * User SQL, sandboxed whatever its text says: the instance refuses host files, extensions and
   * configuration changes (see open()), and only SELECT and EXPLAIN of a SELECT run, as DuckDB's own
   * parser classifies them. Rows are capped and a slow statement is interrupted.
   */
  async sql(text: string, options: SqlOptions): Promise<SqlResult> {
    const body = text.trim().replace(/;\s*$/, '');
    const kind = await this.statementKind(body);
    if (kind === 'EXPLAIN') {
      // EXPLAIN ANALYZE runs its statement: the statement inside must itself be a SELECT.
      const inner = body.replace(/^\s*EXPLAIN\s+(ANALYZE\s+|\(\s*[^)]*\)\s*)?/i, '');
      if (inner !== body && (await this.statementKind(inner)) !== 'SELECT')
        throw new UserError(
          'KAUDIT_QUERY_READONLY',
          'only read-only queries are allowed: EXPLAIN of a statement that writes',
          {
            hint: 'query the `events` view with SELECT',
          },
        );
    } else if (kind !== 'SELECT') {
      throw new UserError(
        'KAUDIT_QUERY_READONLY',
        `only read-only queries are allowed (got a ${kind} statement)`,
        {
          hint: 'query the `events` view with SELECT',
        },
      );
    }
    // One user statement at a time on the connection kept for them: interrupting it stops no one else.
    const turn = this.sqlTurn;
    let done: () => void = () => undefined;
    this.sqlTurn = new Promise<void>((resolve) => {
      done = resolve;
    });
    await turn;
    const conn = this.sqlConn;
    const timer = setTimeout(() => conn.interrupt(), options.timeoutMs);
    try {
      const wrapped =
        kind === 'SELECT'
          ? `SELECT * FROM (${body}) LIMIT ${Math.max(0, Math.floor(options.maxRows)) + 1}`
          : body;
      const reader = await conn.runAndReadAll(wrapped);
      const r = toQueryResult(reader);
      const truncated = r.rows.length > options.maxRows;
      return { columns: r.columns, rows: truncated ? r.rows.slice(0, options.maxRows) : r.rows, truncated };
    } catch (err) {
      if (err instanceof UserError) throw err;
      const msg = (err as Error).message;
      if (/INTERRUPT/i.test(msg))
        throw new UserError(
          'KAUDIT_QUERY_TIMEOUT',
          `the query ran longer than ${options.timeoutMs} ms and was stopped`,
          {
            hint: 'narrow it with WHERE ts >= ..., or aggregate',
          },
        );
      throw new UserError('KAUDIT_QUERY_FAILED', `query failed: ${msg}`, { cause: err });
    } finally {
      clearTimeout(timer);
      done();
    }
  }

  /** The statement's kind as DuckDB's parser sees it (one statement only). */
  private async statementKind(text: string): Promise<string> {
    try {
      const stmts = await this.conn.extractStatements(text);
      if (stmts.count !== 1)
        throw new UserError('KAUDIT_QUERY_INVALID', `expected one SQL statement, got ${stmts.count}`);
      const prepared = await stmts.prepare(0);
      return StatementType[prepared.statementType] ?? 'UNKNOWN';
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError('KAUDIT_QUERY_INVALID', `SQL error: ${(err as Error).message}`, { cause: err });
    }
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
    return {
      backend: this.backend,
      location: this.location,
      schemaVersion: this.schemaVersion,
      rows: clusters.reduce((a, c) => a + c.rows, 0),
      bytes,
      oldest: times[0] ?? null,
      newest: times.at(-1) ?? null,
      clusters,
      details: { tableChecks: this.tableChecks },
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
    this.closing = true;
    while (this.imports.size > 0) await Promise.all([...this.imports]);
    // Closing: recycle() deletes their files.
    for (const s of [...this.held.values()]) {
      this.letGo(s);
      await this.recycle(s.path);
    }
    try {
      await this.conn.run('CHECKPOINT');
    } catch {
      // closing anyway; the WAL is replayed at the next open
    }
    for (const path of this.spareStaging.splice(0)) rmSync(path, { force: true });
    rmSync(this.stagingDir, { recursive: true, force: true });
    for (const w of this.idleWriters) w.closeSync();
    this.sqlConn.closeSync();
    for (const c of this.scanConns) c.closeSync();
    this.conn.closeSync();
    this.instance.closeSync();
  }
}
