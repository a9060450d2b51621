/**
 * The DuckDB store's writes. hold() writes a batch's events to a staging file at once (so later
 * batches are staged while earlier ones import) and decides, from its cluster's key window, how it
 * must be imported; commit() imports it on one of the writer connections.
 *
 * Idempotence on (cluster, auditID, stage), with no copy of the events kept and nothing read back:
 * - a repeat of a key this instance committed is dropped at staging (a known duplicate);
 * - a batch whose keys the window vouches for, none repeated, imports with one plain
 *   INSERT ... SELECT (the common path);
 * - a repeat within the batch: the first valid copy is stored (QUALIFY row_number() over the
 *   valid rows), so a rejected copy never hides a valid one;
 * - a batch that may hold a key already in the table (older than the window, a copy of a key a
 *   pending batch holds, or a retry after a failed import, which may have failed after its commit)
 *   anti-joins against the table and imports alone: running imports finish first and new ones
 *   wait, so two imports never race on one key.
 * Lines are checked for UTF-8 and raw separators before staging, so DuckDB reads every staged row;
 * rows it rejects come back with their bytes from one SELECT of the rejects.
 *
 * Every commit's ingested_at comes from one clock per store instance and is strictly greater than
 * the previous commit's: imports insert side by side but commit in the order they took their time.
 */
import { isUtf8 } from 'node:buffer';
import { closeSync, ftruncateSync, writeSync } from 'node:fs';
import type { DuckDBConnection } from '@duckdb/node-api';
import { eventKey } from '../../model/event-key.js';
import {
  FACT_CONTROL,
  FACT_KEY,
  FACT_LATENCY,
  newEventScanner,
  STAGING_ROW,
} from '../../model/event-scan.js';
import {
  commitOnce,
  type EventBatch,
  type HeldBatch,
  type RejectedEvent,
  type WriteResult,
} from '../contract.js';
import { Claim, KeyWindow, type WindowBatch } from './key-window.js';
import { insertList, sqlString, stagingSelect, stagingSource } from './schema.js';
import type { StagingFiles } from './staging.js';

// Events scanned per call into the WebAssembly reader: its memory stays near twice this...
const SCAN_SLICE_BYTES = 2 << 20;
// ...unless one event is larger; a scanner that grew past this is dropped after the batch, since
// WebAssembly memory cannot shrink.
const SCANNER_MEMORY_MAX = 32 << 20;
// The store needs keys and control characters, not prepare.ts's redaction check.
const STORE_FACTS = { plain: false, maxEventBytes: 0, redact: false };

/** Where a test may make an import fail: before its INSERT, before its COMMIT, or after it. */
export type FaultPoint = 'insert' | 'commit' | 'after-commit';

interface Staged {
  /** The staging file, or null when nothing was left to import. */
  path: string | null;
  cluster: string;
  keys: KeyWindow;
  /** Rows in the file. */
  staged: number;
  longest: number;
  /** Refused before staging (raw separators, not UTF-8). */
  early: RejectedEvent[];
  /** Repeats of keys this instance committed, dropped at staging. */
  knownDuplicates: number[];
  /** Batch index -> the key window's row of its key (-1: none claimed). */
  rowOf: Int32Array;
  /** Repeats within the batch of a key it holds (KeyWindow.keyName -> batch indexes); null if none. */
  repeats: Map<string, number[]> | null;
  /** Some row may be in the table already: the import anti-joins, alone. */
  checkTable: boolean;
  /** Another pending batch staged a copy of one of its keys. */
  shared: boolean;
  /** An import of it failed, maybe after its commit. */
  failed: boolean;
  /** Range of the staged rows' stage times (NaN when a row has none), bounding the anti-join. */
  minStageMs: number;
  maxStageMs: number;
  window: WindowBatch;
  importing: Promise<void> | null;
  outcome: 'pending' | 'stored' | 'let go';
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

function heldKey(cluster: string, id: number): string {
  return `${cluster}\u0000${id}`;
}

function tsLiteral(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

/** Imports side by side, or one alone (an import that anti-joins); first come, first served. */
class ImportGate {
  private shared = 0;
  private exclusive = false;
  private readonly queue: { alone: boolean; go: () => void }[] = [];

  private free(alone: boolean): boolean {
    return alone ? !this.exclusive && this.shared === 0 : !this.exclusive;
  }

  private take(alone: boolean): void {
    if (alone) this.exclusive = true;
    else this.shared++;
  }

  acquire(alone: boolean): Promise<void> {
    if (this.queue.length === 0 && this.free(alone)) {
      this.take(alone);
      return Promise.resolve();
    }
    return new Promise((go) => this.queue.push({ alone, go }));
  }

  release(alone: boolean): void {
    if (alone) this.exclusive = false;
    else this.shared--;
    for (let next = this.queue[0]; next !== undefined && this.free(next.alone); next = this.queue[0]) {
      this.queue.shift();
      this.take(next.alone);
      next.go();
    }
  }
}

/**
 * ingested_at for each commit, from one microsecond clock that never repeats or goes back (the
 * wall clock may), and the commits' order: a commit waits until every import that took an earlier
 * time has committed or failed. Only running imports take a time, so the wait always ends.
 */
class CommitClock {
  private lastUs = 0;
  private previous: Promise<void> = Promise.resolve();

  take(): { us: number; earlier: Promise<void>; settle: () => void } {
    this.lastUs = Math.max(Date.now() * 1000, this.lastUs + 1);
    const earlier = this.previous;
    let settled: () => void = () => undefined;
    const mine = new Promise<void>((resolve) => {
      settled = resolve;
    });
    this.previous = mine;
    // Settled only once the earlier ones are: a failure does not let a later commit pass one still running.
    return { us: this.lastUs, earlier, settle: () => void earlier.then(settled) };
  }
}

export class DuckDBWriter {
  /** Imports that anti-joined against the table (the key window could not vouch for their rows). */
  tableChecks = 0;
  private closing = false;
  private readonly gate = new ImportGate();
  private readonly clock = new CommitClock();
  private readonly idleWriters: DuckDBConnection[];
  private readonly writerWaiters: ((conn: DuckDBConnection) => void)[] = [];
  private readonly imports = new Set<Promise<void>>();
  /** Held batches not yet stored, by cluster and key-window id. */
  private readonly held = new Map<string, Staged>();
  /** A key window per cluster, made on first use: an event's identity includes its cluster. */
  private readonly windows = new Map<string, KeyWindow>();
  private scanner = newEventScanner();

  constructor(
    private readonly location: string,
    writers: DuckDBConnection[],
    private readonly staging: StagingFiles,
    /** Per cluster, the newest stage time stored when the file was opened (the windows' floors). */
    private readonly floors: ReadonlyMap<string, number>,
    private readonly windowSize: number,
    /** Tests: an error to throw at a point of an import (undefined: none). */
    private readonly fault: (point: FaultPoint) => Error | undefined = () => undefined,
  ) {
    this.idleWriters = [...writers];
  }

  hold(batch: EventBatch): HeldBatch {
    if (this.closing) throw new Error(`the store ${this.location} is closing`);
    const s = this.stage(batch);
    this.held.set(heldKey(s.cluster, s.window.id), s);
    return {
      commit: () => {
        if (s.outcome !== 'pending' || s.importing !== null)
          return Promise.reject(
            new Error(
              `commit() of a held batch that is ${s.importing === null ? 'done' : 'being committed'}`,
            ),
          );
        const run = this.importHeld(s).then(
          (result) => {
            s.importing = null;
            return result;
          },
          (err: unknown) => {
            s.importing = null;
            // It may have failed after its commit: a retry must look its rows up.
            s.failed = true;
            s.checkTable = true;
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
        if (s.importing !== null) throw new Error('discard() of a held batch being committed');
        if (s.outcome !== 'pending') return;
        this.letGo(s);
        await this.staging.recycle(s.path);
      },
    };
  }

  write(batch: EventBatch): Promise<WriteResult> {
    return commitOnce(this.hold(batch));
  }

  /** Runs `fn` with no import running (retention deletes rows an anti-join may be reading). */
  async alone<T>(fn: () => Promise<T>): Promise<T> {
    await this.gate.acquire(true);
    try {
      return await fn();
    } finally {
      this.gate.release(true);
    }
  }

  /** Waits for running imports and lets go of the batches never committed. */
  async close(): Promise<void> {
    this.closing = true;
    while (this.imports.size > 0) await Promise.all([...this.imports]);
    for (const s of [...this.held.values()]) this.letGo(s);
  }

  private windowOf(cluster: string): KeyWindow {
    let w = this.windows.get(cluster);
    if (w === undefined) {
      w = new KeyWindow(this.windowSize, this.floors.get(cluster) ?? Number.NEGATIVE_INFINITY);
      this.windows.set(cluster, w);
    }
    return w;
  }

  /** Writes the batch's events to a staging file, claiming their keys in hand-over order. */
  private stage(batch: EventBatch): Staged {
    const events = batch.events;
    const keys = this.windowOf(batch.cluster);
    const s: Staged = {
      path: null,
      cluster: batch.cluster,
      keys,
      staged: 0,
      longest: 0,
      early: [],
      knownDuplicates: [],
      rowOf: new Int32Array(events.length).fill(-1),
      repeats: null,
      checkTable: false,
      shared: false,
      failed: false,
      minStageMs: Number.POSITIVE_INFINITY,
      maxStageMs: Number.NEGATIVE_INFINITY,
      window: keys.begin(events.length),
      importing: null,
      outcome: 'pending',
    };
    let fd = -1;
    let path = '';
    let fileBytes = 0;
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
          // CR is legal JSON white space, but no serializer puts one inside a line). Copies: the
          // caller may reuse its buffers once the batch is held.
          if ((flags & FACT_CONTROL) !== 0) {
            s.early.push({
              index: i,
              reason: 'not JSON: raw control character in the event',
              data: Buffer.from(ev),
            });
            continue;
          }
          // DuckDB would skip a line that is not UTF-8: checked here, so every staged row is read.
          if (!isUtf8(ev)) {
            s.early.push({ index: i, reason: 'not UTF-8 text', data: Buffer.from(ev) });
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
          if (claim === Claim.Duplicate) {
            const ownerId = keys.duplicateOf;
            if (ownerId === s.window.id) {
              // A repeat within this batch: staged, and the import keeps the first valid copy
              // (kube-apiserver writes no such repeats; a corrupted log might).
              s.repeats ??= new Map();
              pushTo(s.repeats, keys.duplicateKey, i);
              // Its stage time may differ from the first copy's (a damaged copy): vouched for by its own.
              claim = keys.covered(s.window, stageMs);
            } else {
              const owner = this.held.get(heldKey(s.cluster, ownerId));
              if (owner === undefined) {
                // Its key is in the table: a batch this instance committed holds it.
                s.knownDuplicates.push(i);
                continue;
              }
              // A batch still pending holds it, and may yet fail or reject its copy: both import
              // with the anti-join, one after the other, and whichever comes second finds the
              // other's. The owner's window counts this copy's time, so a floor raised past the
              // owner's times covers it too.
              owner.checkTable = true;
              owner.shared = true;
              keys.covered(owner.window, stageMs);
              s.checkTable = true;
              s.shared = true;
              claim = Claim.CheckTable;
            }
          } else s.rowOf[i] = s.window.rows - 1;
          if (claim === Claim.CheckTable) s.checkTable = true;
          if (Number.isNaN(stageMs)) s.minStageMs = Number.NaN;
          else {
            if (stageMs < s.minStageMs) s.minStageMs = stageMs;
            if (stageMs > s.maxStageMs) s.maxStageMs = stageMs;
          }
          s.staged++;
          if (ev.length > s.longest) s.longest = ev.length;
          scan.keep(k, latency);
          kept++;
        }
        if (kept > 0) {
          if (fd < 0) ({ fd, path } = this.staging.open());
          const rows = scan.stagingRows(from);
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
      keys.abandon(s.window);
      if (fd >= 0) this.staging.abandon(fd, path);
      throw err;
    }
    if (this.scanner.memoryBytes > SCANNER_MEMORY_MAX) this.scanner = newEventScanner();
    if (fd >= 0) {
      closeSync(fd);
      s.path = path;
    }
    return s;
  }

  private async importHeld(s: Staged): Promise<WriteResult> {
    let result: WriteResult;
    let stored: ReadonlySet<number>;
    if (s.path === null) {
      result = this.result(s, [], [], 0);
      stored = new Set();
    } else {
      const alone = s.checkTable;
      await this.gate.acquire(alone);
      let conn: DuckDBConnection | undefined;
      try {
        conn = await this.takeWriter();
        ({ result, stored } = await this.importFile(conn, s, s.path, alone || s.repeats !== null));
      } finally {
        if (conn !== undefined) this.releaseWriter(conn);
        this.gate.release(alone);
      }
    }
    // Keys of rows not stored after all may come again, validly, unless a repeat of them was stored.
    for (const r of result.rejected) {
      const row = s.rowOf[r.index] as number;
      if (row < 0) continue;
      const name = s.keys.keyName(s.window, row);
      const copies = name === null ? undefined : s.repeats?.get(name);
      if (copies?.some((i) => stored.has(i))) continue;
      s.keys.giveBack(s.window, row, s.shared);
    }
    s.outcome = 'stored';
    this.held.delete(heldKey(s.cluster, s.window.id));
    s.keys.settle(s.window);
    await this.staging.recycle(s.path);
    return result;
  }

  private result(s: Staged, rejected: RejectedEvent[], duplicates: number[], stored: number): WriteResult {
    const all = [...s.early, ...rejected].sort((a, b) => a.index - b.index);
    const duplicateIndexes = [...s.knownDuplicates, ...duplicates].sort((a, b) => a - b);
    return { stored, duplicates: duplicateIndexes.length, duplicateIndexes, rejected: all };
  }

  /**
   * One transaction: without repeats or a table check every valid row is new and one INSERT stores
   * them; else one SELECT first tells which rows will be stored (the first valid copy of each key
   * not in the table) and the INSERT stores exactly those. No other import runs meanwhile when the
   * table is checked, so both statements see the same table.
   */
  private async importFile(
    conn: DuckDBConnection,
    s: Staged,
    path: string,
    checked: boolean,
  ): Promise<{ result: WriteResult; stored: ReadonlySet<number> }> {
    const select = stagingSelect(path, s.cluster, s.longest);
    let notStored = 'true';
    if (s.checkTable) {
      this.tableChecks++;
      // A repeat of an event carries its stageTimestamp, and rows arrive in nearly stage-time order,
      // so the anti-join reads stored rows within the batch's stage-time range (zone maps on
      // stage_ts skip the rest).
      const range = Number.isFinite(s.minStageMs)
        ? ` AND t.stage_ts BETWEEN TIMESTAMP '${tsLiteral(s.minStageMs - 1000)}' AND TIMESTAMP '${tsLiteral(s.maxStageMs + 1000)}'`
        : '';
      notStored = `NOT EXISTS (SELECT 1 FROM audit_events t WHERE t.cluster = ${sqlString(s.cluster)} AND t.audit_id = s.audit_id AND t.stage = s.stage${range})`;
    }
    const clock = this.clock.take();
    let rejected: RejectedEvent[] = [];
    const duplicates: number[] = [];
    const stored = new Set<number>();
    let count = 0;
    try {
      await conn.run('BEGIN TRANSACTION');
      this.failAt('insert');
      if (checked) {
        const plan = await conn.runAndReadAll(`
          SELECT i, reject, CASE WHEN reject IS NOT NULL THEN raw END,
            reject IS NULL AND row_number() OVER (PARTITION BY audit_id, stage, reject IS NULL ORDER BY i) = 1 AND ${notStored}
          FROM (${select}) s`);
        for (const [i, reason, raw, keep] of plan.getRows()) {
          const index = Number(i);
          if (reason !== null)
            rejected.push({ index, reason: String(reason), data: Buffer.from(String(raw)) });
          else if (keep === true) stored.add(index);
          else duplicates.push(index);
        }
        if (stored.size + rejected.length + duplicates.length < s.staged)
          rejected.push(...(await this.skipped(conn, path, s)));
      }
      const inserted = await conn.run(
        checked
          ? `INSERT INTO audit_events SELECT ${insertList(clock.us)} FROM (${select}) s
             WHERE reject IS NULL AND ${notStored}
             QUALIFY row_number() OVER (PARTITION BY audit_id, stage ORDER BY i) = 1`
          : `INSERT INTO audit_events SELECT ${insertList(clock.us)} FROM (${select}) WHERE reject IS NULL`,
      );
      count = inserted.rowsChanged;
      if (checked && count !== stored.size)
        throw new Error(
          `the store ${this.location} inserted ${inserted.rowsChanged} rows where it planned ${stored.size}; the batch will be written again`,
        );
      // Only when rows are missing is it worth a second pass for the rejects.
      if (!checked && inserted.rowsChanged < s.staged)
        rejected = await this.rejects(conn, select, path, s, count);
      await clock.earlier;
      this.failAt('commit');
      await conn.run('COMMIT');
    } catch (err) {
      await conn.run('ROLLBACK').catch(() => undefined);
      clock.settle();
      throw err;
    }
    clock.settle();
    this.failAt('after-commit');
    return { result: this.result(s, rejected, duplicates, count), stored };
  }

  /** Rows DuckDB found invalid, with their bytes; and, should it have skipped any, those too. */
  private async rejects(
    conn: DuckDBConnection,
    select: string,
    path: string,
    s: Staged,
    stored: number,
  ): Promise<RejectedEvent[]> {
    const r = await conn.runAndReadAll(`SELECT i, reject, raw FROM (${select}) WHERE reject IS NOT NULL`);
    const rejected: RejectedEvent[] = r.getRows().map(([i, reason, raw]) => ({
      index: Number(i),
      reason: String(reason),
      data: Buffer.from(String(raw)),
    }));
    if (stored + rejected.length < s.staged) rejected.push(...(await this.skipped(conn, path, s)));
    return rejected;
  }

  /**
   * Rows of the file DuckDB did not read at all. Lines are UTF-8 without raw separators, so this is
   * not expected; should it happen, the rows are taken from the file and refused, not lost.
   */
  private async skipped(conn: DuckDBConnection, path: string, s: Staged): Promise<RejectedEvent[]> {
    const read = await conn.runAndReadAll(`SELECT i FROM (${stagingSource(path, s.longest)})`);
    const seen = new Set(read.getRows().map(([i]) => Number(i)));
    const out: RejectedEvent[] = [];
    const text = this.staging.read(path).toString('latin1');
    for (const line of text.split(String.fromCharCode(STAGING_ROW.newline))) {
      const sep = line.lastIndexOf(String.fromCharCode(STAGING_ROW.separator));
      if (sep < 0) continue;
      const index = Math.floor(Number(line.slice(sep + 1)) / STAGING_ROW.indexStep);
      if (!seen.has(index))
        out.push({
          index,
          reason: 'the store could not read it',
          data: Buffer.from(line.slice(0, sep), 'latin1'),
        });
    }
    return out;
  }

  private failAt(point: FaultPoint): void {
    const err = this.fault(point);
    if (err !== undefined) throw err;
  }

  /** Gives back the keys of a batch that will not be imported (again). */
  private letGo(s: Staged): void {
    s.outcome = 'let go';
    this.held.delete(heldKey(s.cluster, s.window.id));
    // One that failed may be stored, and a copy another batch counted on may be stored by that one:
    // later copies of its keys are looked up in the table.
    s.keys.abandon(s.window, s.failed || s.shared);
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
}
