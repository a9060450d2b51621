import { createReadStream, type FSWatcher, watch } from 'node:fs';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createGunzip } from 'node:zlib';
import { type LineScanner, newLineScanner } from '../model/event-scan.js';
import { LineSplitter } from '../model/frame.js';
import { fastPathUnsafe } from '../model/prepare.js';
import type { FileSourceConfig } from './agent-config.js';
import {
  type CheckpointRegistry,
  FINGERPRINT_BYTES,
  type FileCheckpoint,
  fingerprintOf,
} from './checkpoint-registry.js';
import { type Clock, type ClockTimer, systemClock } from './clock.js';
import { type Candidate, FileCandidates } from './file-candidates.js';
import type { Logger } from './logger.js';
import type { DeadLetterEntry, PipelineItem, Preparer } from './pipeline.js';

export interface FileSourceOptions {
  config: FileSourceConfig;
  registry: CheckpointRegistry;
  offer: (item: PipelineItem) => Promise<void>;
  prepare: Preparer;
  /** Lines longer than this are dropped to the dead-letter file instead of being held in memory. */
  maxLineBytes: number;
  log: Logger;
  scanIntervalMs?: number;
  pollIntervalMs?: number;
  readChunkBytes?: number;
  /** A rotated file is let go once drained and unchanged for this long. */
  rotatedIdleMs?: number;
  /** Time for polling, scan intervals, backoff and lag (default: the system clock). */
  clock?: Clock;
}

export interface FileStatus {
  path: string;
  rotated: boolean;
  compressed: boolean;
  size: number;
  offset: number;
  lagBytes: number;
  lagSeconds: number;
}

export interface FileSourceStatus {
  name: string;
  type: 'file';
  path: string;
  source: string;
  service: string;
  status: 'OK' | 'Error';
  error?: string;
  filesMatching: number;
  filesTailed: number;
  bytesRead: number;
  events: number;
  lagBytes: number;
  lagSeconds: number;
  lastCheckpoint: string | null;
  rotations: number;
  truncations: number;
  truncated: number;
  malformed: number;
  dropped: number;
  files: FileStatus[];
}

/** Lines of a file on their way to the pipeline, and the file offset their acknowledgement moves the checkpoint to. */
interface Batch {
  item: PipelineItem;
  endOffset: number;
  generation: number;
}

/** Events per pipeline item: large enough to amortise, small enough that checkpoints move often. */
const ITEM_EVENTS = 2000;
/** Bytes of an over-long line kept in the dead-letter file. */
const DEAD_LETTER_SAMPLE_BYTES = 64 * 1024;
const MAX_LAG_SAMPLES = 512;

interface Tracked {
  path: string;
  dev: number;
  ino: number;
  gz: boolean;
  rotated: boolean;
  gone: boolean;
  fh: FileHandle | undefined;
  cp: FileCheckpoint;
  /** Bumped on truncation so acknowledgements of the old content are ignored. */
  generation: number;
  readOffset: number;
  ackedOffset: number;
  /**
   * Frames the bytes read into lines (model/frame.ts): holds an unterminated last line until its
   * newline comes, and of a line longer than maxLineBytes only its head.
   */
  lines: LineSplitter;
  size: number;
  mtimeMs: number;
  lastChangeAt: number;
  inFlight: number;
  /** (time first seen, size) pairs: the age of the oldest unacknowledged byte gives lag in seconds. */
  samples: { at: number; size: number }[];
  finished: boolean;
}

const backupKey = (t: Tracked): string => t.path.replace(/\.gz$/, '');

/**
 * Backups before the live file; backups of one file by the timestamp in their names (which sort as
 * text), since gzip gives a backup a later mtime; anything else by mtime.
 */
function byAge(a: Tracked, b: Tracked): number {
  if (a.rotated !== b.rotated) return a.rotated ? -1 : 1;
  if (a.rotated && dirname(a.path) === dirname(b.path)) {
    const c = backupKey(a).localeCompare(backupKey(b));
    if (c !== 0) return c;
  }
  return a.mtimeMs - b.mtimeMs || a.path.localeCompare(b.path);
}

function keyOf(dev: number, ino: number): string {
  return `${dev}:${ino}`;
}

async function readHead(fh: FileHandle): Promise<Buffer> {
  const buf = Buffer.alloc(FINGERPRINT_BYTES);
  const { bytesRead } = await fh.read(buf, 0, FINGERPRINT_BYTES, 0);
  return buf.subarray(0, bytesRead);
}

async function readGzHead(path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  const stream = createReadStream(path).pipe(createGunzip());
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      n += chunk.length;
      if (n >= FINGERPRINT_BYTES) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, FINGERPRINT_BYTES);
}

function headMatches(head: Buffer, cp: FileCheckpoint): boolean {
  return (
    head.length >= cp.fingerprintBytes &&
    fingerprintOf(head.subarray(0, cp.fingerprintBytes)) === cp.fingerprint
  );
}

/**
 * Tails the files of one `type: file` source. Files are followed by identity (device + inode, checked
 * by a fingerprint of their first bytes), not by name, so a rename by rotation keeps the reader on
 * the same content until its end. Offsets move to the checkpoint only when the store acknowledged
 * every event before them.
 */
/** A candidate file as a scan found it. */
interface Found {
  c: Candidate;
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
}

export class FileSource {
  private readonly candidates: FileCandidates;
  private readonly scanner: LineScanner;
  private readonly tracked = new Map<string, Tracked>();
  /** Files that could not be opened at the last attempt, by path: shown in status, retried at each scan. */
  private readonly openErrors = new Map<string, string>();
  /** Completed files seen unchanged (dev:ino:size:mtime): skipped without being opened again. */
  private readonly done = new Set<string>();
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Set by a watcher: something changed since the loop last looked, so it must not sleep. */
  private poked = false;
  /** A watcher saw a candidate's name appear or go: scan now rather than at the next interval. */
  private rescan = false;
  /** inotify watches (fs.watch) on the candidates' directories, by directory. */
  private readonly watchers = new Map<string, FSWatcher>();
  private filesMatching = 0;
  private error: string | undefined;
  private readonly counters = {
    bytesRead: 0,
    events: 0,
    rotations: 0,
    truncations: 0,
    truncated: 0,
    malformed: 0,
    dropped: 0,
  };
  private readonly scanIntervalMs: number;
  private readonly pollIntervalMs: number;
  private readonly readChunkBytes: number;
  private readonly rotatedIdleMs: number;

  private readonly clock: Clock;

  constructor(private readonly opts: FileSourceOptions) {
    this.clock = opts.clock ?? systemClock;
    this.scanner = newLineScanner(opts.prepare.options);
    this.candidates = new FileCandidates(opts.config.path);
    this.scanIntervalMs = opts.scanIntervalMs ?? 1000;
    this.pollIntervalMs = opts.pollIntervalMs ?? 100;
    this.readChunkBytes = opts.readChunkBytes ?? 1024 * 1024;
    this.rotatedIdleMs = opts.rotatedIdleMs ?? 2000;
  }

  get name(): string {
    return this.opts.config.name;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run().catch((err: unknown) => {
      this.error = err instanceof Error ? err.message : String(err);
      this.opts.log.error('file source stopped', { source: this.name, error: this.error });
    });
  }

  /** Asks the reader to stop after what it is doing; `stop` waits for it. */
  requestStop(): void {
    this.running = false;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    this.wake?.();
  }

  /** Stops reading; what was handed to the pipeline is still acknowledged into checkpoints. */
  async stop(): Promise<void> {
    this.requestStop();
    await this.loop;
    for (const t of this.tracked.values()) await t.fh?.close().catch(() => undefined);
  }

  status(): FileSourceStatus {
    const files: FileStatus[] = [];
    let lagBytes = 0;
    let lagSeconds = 0;
    const now = this.clock.now();
    for (const t of this.tracked.values()) {
      const lag = Math.max(0, t.size - t.ackedOffset);
      const oldest = t.samples.find((s) => s.size > t.ackedOffset);
      const secs = lag === 0 || oldest === undefined ? 0 : (now - oldest.at) / 1000;
      lagBytes += t.gz ? 0 : lag;
      lagSeconds = Math.max(lagSeconds, secs);
      files.push({
        path: t.path,
        rotated: t.rotated,
        compressed: t.gz,
        size: t.size,
        offset: t.ackedOffset,
        lagBytes: t.gz ? 0 : lag,
        lagSeconds: secs,
      });
    }
    const c = this.opts.config;
    const s: FileSourceStatus = {
      name: c.name,
      type: 'file',
      path: c.path,
      source: c.source,
      service: c.service,
      status: this.error === undefined ? 'OK' : 'Error',
      filesMatching: this.filesMatching,
      filesTailed: this.tracked.size,
      ...this.counters,
      lagBytes,
      lagSeconds,
      lastCheckpoint: this.opts.registry.lastCommitAt?.toISOString() ?? null,
      files,
    };
    if (this.error !== undefined) s.error = this.error;
    return s;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: ClockTimer | undefined;
      const finish = (): void => {
        if (timer !== undefined) this.clock.clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      timer = this.clock.setTimeout(finish, ms);
      this.wake = finish;
    });
  }

  /**
   * Keeps an inotify watch on each directory that may hold candidates, so appends and new files
   * are read at once instead of at the next poll. Polling and periodic scans go on regardless:
   * watches are not reliable everywhere (network file systems, inotify limits), and a directory
   * that cannot be watched is simply polled.
   */
  private syncWatchers(): void {
    // The directories the scan just listed.
    const dirs = new Set(this.candidates.directories);
    for (const [dir, w] of this.watchers) {
      if (dirs.has(dir)) continue;
      w.close();
      this.watchers.delete(dir);
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir) || !this.running) continue;
      try {
        const w = watch(dir, { persistent: false }, (event, name) => {
          if (event === 'rename' && (name === null || this.candidates.matches(String(name))))
            this.rescan = true;
          this.poked = true;
          this.wake?.();
        });
        w.on('error', () => {
          w.close();
          if (this.watchers.get(dir) === w) this.watchers.delete(dir);
        });
        this.watchers.set(dir, w);
      } catch {
        // missing, or out of inotify watches: polled like any other
      }
    }
  }

  private async run(): Promise<void> {
    let lastScan = 0;
    let failures = 0;
    let retryAt = 0;
    while (this.running) {
      const due = this.rescan || this.clock.now() - lastScan >= this.scanIntervalMs;
      if (due && this.clock.now() >= retryAt) {
        lastScan = this.clock.now();
        this.rescan = false;
        try {
          await this.scan();
          this.syncWatchers();
          this.error = this.openErrors.size > 0 ? [...this.openErrors.values()].join('; ') : undefined;
          failures = 0;
        } catch (err) {
          // Nothing was concluded from a failed scan (no file taken for gone, no checkpoint pruned);
          // it is tried again, sooner at first, then less often while it keeps failing.
          failures++;
          const backoffMs = Math.min(30_000, 100 * 2 ** Math.min(failures, 9));
          retryAt = this.clock.now() + backoffMs;
          this.error = `scan failed (attempt ${failures}, next in ${backoffMs} ms): ${err instanceof Error ? err.message : String(err)}`;
          this.opts.log.warn('scan failed', { source: this.name, error: this.error });
        }
      }
      let progressed = false;
      // Backups first, oldest first, then the live file: the order kube-apiserver wrote them.
      const order = [...this.tracked.values()].sort(byAge);
      for (const t of order) {
        if (!this.running) break;
        try {
          if (t.gz) progressed = (await this.readGz(t)) || progressed;
          else progressed = (await this.readPlain(t)) || progressed;
          await this.maybeRelease(t);
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          this.opts.log.warn('reading a file failed; it will be retried', { path: t.path, error: message });
          await this.untrack(t);
        }
      }
      if (!progressed && this.running && !this.poked) await this.sleep(this.pollIntervalMs);
      this.poked = false;
    }
  }

  private async scan(): Promise<void> {
    const { registry } = this.opts;
    const name = this.name;
    const firstRun = !registry.isInitialised(name);
    const list = await this.candidates.list();
    this.filesMatching = list.length;
    const seen = new Set<string>();
    const found: Found[] = [];
    for (const c of list) {
      try {
        const st = await stat(c.path);
        if (!st.isFile()) continue;
        found.push({ c, dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs });
        seen.add(keyOf(st.dev, st.ino));
      } catch (err) {
        // ENOENT: gone between readdir and stat (rotation in progress); the next scan sees the new
        // state. Anything else (EMFILE, EIO) says nothing of the file: the scan fails and is retried.
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR')
          throw new Error(`cannot stat ${c.path}: ${code ?? String(err)}`);
      }
    }
    const byKey = new Map(found.map((f) => [keyOf(f.dev, f.ino), f]));

    for (const t of this.tracked.values()) {
      const f = byKey.get(keyOf(t.dev, t.ino));
      if (f !== undefined) {
        if (f.c.path !== t.path) {
          this.opts.log.info('file renamed', { source: name, from: t.path, to: f.c.path });
          t.path = f.c.path;
          t.cp.path = f.c.path;
          registry.markDirty();
        }
        if (f.c.rotated && !t.rotated) {
          t.rotated = true;
          this.counters.rotations++;
        }
        if (!t.rotated && !t.gz && t.fh !== undefined) await this.checkRewritten(t);
      } else if (!t.gone) {
        // Renamed out of sight or deleted: the open descriptor still reads it to its end.
        t.gone = true;
        if (!t.rotated) {
          t.rotated = true;
          this.counters.rotations++;
        }
      }
    }

    for (const f of found) {
      const key = keyOf(f.dev, f.ino);
      if (this.tracked.has(key)) continue;
      const doneKey = `${key}:${f.size}:${f.mtimeMs}`;
      if (this.done.has(doneKey)) continue;
      if (f.c.gz) await this.discoverGz(f, firstRun, doneKey);
      else await this.discoverPlain(f, firstRun, doneKey);
    }
    registry.markInitialised(name);
    registry.prune(name, seen);
  }

  /** Starts reading `f` from `cp.offset`; `size` is the file's size as last seen. */
  private track(f: Found, size: number, cp: FileCheckpoint, fh: FileHandle | undefined): Tracked {
    const t: Tracked = {
      path: f.c.path,
      dev: f.dev,
      ino: f.ino,
      gz: f.c.gz,
      rotated: f.c.rotated,
      gone: false,
      fh,
      cp,
      generation: 0,
      readOffset: cp.offset,
      ackedOffset: cp.offset,
      lines: this.newSplitter(cp.offset),
      size,
      mtimeMs: f.mtimeMs,
      lastChangeAt: this.clock.now(),
      inFlight: 0,
      samples: size > cp.offset ? [{ at: this.clock.now(), size }] : [],
      finished: false,
    };
    this.tracked.set(keyOf(f.dev, f.ino), t);
    return t;
  }

  private newCheckpoint(f: Found, head: Buffer, offset: number, complete: boolean): FileCheckpoint {
    const cp: FileCheckpoint = {
      path: f.c.path,
      dev: f.dev,
      ino: f.ino,
      fingerprint: fingerprintOf(head),
      fingerprintBytes: head.length,
      offset,
      complete,
      updatedAt: new Date().toISOString(),
    };
    this.opts.registry.upsert(this.name, cp);
    return cp;
  }

  private async discoverPlain(f: Found, firstRun: boolean, doneKey: string): Promise<void> {
    const { registry, config } = this.opts;
    const { path } = f.c;
    const { dev, ino } = f;
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
      this.openErrors.delete(path);
    } catch (err) {
      // Tried again at the next scan; shown in status until it opens (a file gone meanwhile is not an error).
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') this.openErrors.set(path, `cannot open ${path}: ${code ?? String(err)}`);
      this.opts.log.warn('cannot open file', { path, error: String(err) });
      return;
    }
    const st = await fh.stat();
    if (st.dev !== dev || st.ino !== ino) {
      await fh.close();
      return;
    }
    const head = await readHead(fh);
    let cp = registry.findByInode(this.name, dev, ino);
    if (cp !== undefined && !headMatches(head, cp)) {
      // Same inode, other content: the number was reused by a new file (or it was rewritten).
      registry.detach(cp);
      cp = undefined;
    }
    if (cp?.complete) {
      await fh.close();
      this.done.add(doneKey);
      return;
    }
    let skipping = false;
    if (cp === undefined) {
      let offset = 0;
      if (firstRun && config.startPosition === 'end') {
        offset = st.size;
        if (st.size > 0) {
          const last = Buffer.alloc(1);
          await fh.read(last, 0, 1, st.size - 1);
          skipping = last[0] !== 0x0a;
        }
      }
      cp = this.newCheckpoint(f, head, offset, false);
      this.opts.log.info('tailing new file', { source: this.name, path, offset });
    } else {
      cp.path = path;
      if (cp.offset > st.size) {
        this.opts.log.warn(
          'file shorter than its checkpoint: truncated while stopped; reading from the start',
          {
            path,
            offset: cp.offset,
            size: st.size,
          },
        );
        this.counters.truncations++;
        cp.offset = 0;
      }
      registry.markDirty();
      this.opts.log.info('resuming file', { source: this.name, path, offset: cp.offset });
    }
    const t = this.track(f, st.size, cp, fh);
    if (skipping) t.lines.skipLine();
  }

  private newSplitter(offset: number): LineSplitter {
    return new LineSplitter(offset, this.scanner, this.opts.maxLineBytes);
  }

  private async discoverGz(f: Found, firstRun: boolean, doneKey: string): Promise<void> {
    // lumberjack writes the .gz next to the backup, then deletes the backup; a young one may be partial.
    // Against the file's mtime, which the filesystem sets from the wall clock.
    if (Date.now() - f.mtimeMs < 1000) return;
    const { registry, config } = this.opts;
    const { path } = f.c;
    const { dev, ino } = f;
    let head: Buffer;
    try {
      head = await readGzHead(path);
      this.openErrors.delete(path);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (typeof e.errno === 'number' && e.code !== undefined && !e.code.startsWith('Z_')) {
        // The file could not be opened or read (EMFILE, EACCES): tried again at the next scan.
        if (e.code !== 'ENOENT') this.openErrors.set(path, `cannot open ${path}: ${e.code}`);
        return;
      }
      this.opts.log.warn('cannot read compressed file; will retry when it changes', {
        path,
        error: String(err),
      });
      this.done.add(doneKey);
      return;
    }
    if (head.length === 0) {
      this.done.add(doneKey);
      return;
    }
    for (const t of this.tracked.values()) {
      if (!t.gz && headMatches(head, t.cp)) return; // the uncompressed original is still being read
    }
    // By inode first (a .gz seen before), else by content: the entry of the file it was compressed from.
    let cp = registry.findByInode(this.name, dev, ino);
    if (cp === undefined || !headMatches(head, cp)) {
      cp = registry.findByFingerprint(this.name, (c) => headMatches(head, c));
    }
    if (cp?.complete) {
      this.done.add(doneKey);
      return;
    }
    if (cp === undefined) {
      cp = this.newCheckpoint(f, head, 0, firstRun && config.startPosition === 'end');
      if (cp.complete) {
        this.done.add(doneKey);
        return;
      }
    } else {
      // The entry of the uncompressed original now follows its compressed copy.
      registry.rekey(this.name, cp, dev, ino, path);
    }
    this.opts.log.info('reading compressed file', { source: this.name, path, offset: cp.offset });
    this.track(f, f.size, cp, undefined);
  }

  /** A live file whose first bytes changed, or that got shorter, was truncated (copytruncate). */
  private async checkRewritten(t: Tracked): Promise<void> {
    if (t.fh === undefined) return;
    const st = await t.fh.stat();
    const head = await readHead(t.fh);
    if (st.size >= t.readOffset && headMatches(head, t.cp)) {
      if (t.cp.fingerprintBytes < FINGERPRINT_BYTES && head.length > t.cp.fingerprintBytes) {
        this.extendFingerprint(t, head);
      }
      return;
    }
    this.truncated(t, head);
  }

  /** The file grew past a short fingerprint with the same first bytes: fingerprint the longer head. */
  private extendFingerprint(t: Tracked, head: Buffer): void {
    t.cp.fingerprint = fingerprintOf(head);
    t.cp.fingerprintBytes = head.length;
    this.opts.registry.markDirty();
  }

  private truncated(t: Tracked, head: Buffer): void {
    this.opts.log.warn('file truncated; reading from its start', { path: t.path, offset: t.readOffset });
    this.counters.truncations++;
    t.generation++;
    t.readOffset = 0;
    t.ackedOffset = 0;
    t.lines = this.newSplitter(0);
    t.samples = [];
    t.cp.offset = 0;
    t.cp.fingerprint = fingerprintOf(head);
    t.cp.fingerprintBytes = head.length;
    t.cp.updatedAt = new Date().toISOString();
    this.opts.registry.markDirty();
  }

  private noteSize(t: Tracked, size: number, mtimeMs: number): void {
    if (size !== t.size || mtimeMs !== t.mtimeMs) t.lastChangeAt = this.clock.now();
    if (size > t.size && t.samples.length < MAX_LAG_SAMPLES) t.samples.push({ at: this.clock.now(), size });
    t.size = size;
    t.mtimeMs = mtimeMs;
  }

  private async readPlain(t: Tracked): Promise<boolean> {
    const fh = t.fh;
    if (fh === undefined || t.finished) return false;
    const st = await fh.stat();
    if (st.size < t.readOffset) this.truncated(t, await readHead(fh));
    else if (t.cp.fingerprintBytes < FINGERPRINT_BYTES && st.size > t.cp.fingerprintBytes) {
      // Found short (often empty, just created): complete the fingerprint before any offset past it
      // is checkpointed, or a later file reusing this inode would be taken for this one.
      const head = await readHead(fh);
      if (headMatches(head, t.cp)) this.extendFingerprint(t, head);
      else this.truncated(t, head);
    }
    this.noteSize(t, st.size, st.mtimeMs);
    let progressed = false;
    while (this.running && t.readOffset < t.size) {
      const want = Math.min(this.readChunkBytes, t.size - t.readOffset);
      // A fresh buffer per read: prepared events may be views into it while they wait in the queue.
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(buf, 0, want, t.readOffset);
      if (bytesRead === 0) break;
      t.readOffset += bytesRead;
      this.counters.bytesRead += bytesRead;
      progressed = true;
      await this.consume(t, buf.subarray(0, bytesRead));
    }
    return progressed;
  }

  private async readGz(t: Tracked): Promise<boolean> {
    if (t.finished) return false;
    const skip = t.cp.offset;
    let offset = 0;
    const stream = createReadStream(t.path).pipe(createGunzip());
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (!this.running) return true;
        const end = offset + chunk.length;
        if (end > skip) {
          const from = Math.max(0, skip - offset);
          const part = chunk.subarray(from);
          this.counters.bytesRead += part.length;
          t.readOffset = offset + from + part.length;
          await this.consume(t, part);
        }
        offset = end;
      }
    } finally {
      stream.destroy();
    }
    t.size = offset;
    t.readOffset = Math.max(t.readOffset, offset);
    await this.flushPending(t);
    t.finished = true;
    return true;
  }

  /**
   * Frames a chunk into lines (an unterminated tail waits for the next chunk) and prepares them.
   * The WebAssembly scanner splits the whole lines and marks the plain ones (passed on without
   * prepareLine). `chunk` continues the file where the previous one ended.
   */
  private async consume(t: Tracked, chunk: Buffer): Promise<void> {
    // Lines are prepared as the splitter frames them; items that fill up wait here until the chunk
    // is framed (a chunk holds a few items at most), then go in order.
    const full: Batch[] = [];
    let batch = this.newBatch(t);
    t.lines.push(chunk, (data, offset, plain, oversize) => {
      this.handleLine(batch, data, offset + (oversize ?? data.length) + 1, plain, oversize);
      if (batch.item.events.length >= ITEM_EVENTS) {
        batch.item.more = true;
        full.push(batch);
        batch = this.newBatch(t);
      }
    });
    for (const b of full) await this.send(t, b);
    if (batch.endOffset > 0 || batch.item.deadLetters.length > 0) {
      // A gzip stream's size is not known up front (t.size stays 0 until its end).
      batch.item.more = t.gz || t.readOffset < t.size;
      await this.send(t, batch);
    }
  }

  private newBatch(t: Tracked): Batch {
    return {
      item: { source: this.name, events: [], deadLetters: [], retry: true },
      endOffset: 0,
      generation: t.generation,
    };
  }

  /**
   * `plain`: the scanner found it needs no preparing (prepareLine would pass it through).
   * `oversize`: the line was longer than max_line_bytes (its length); `raw` is its head.
   */
  private handleLine(
    batch: { item: PipelineItem; endOffset: number },
    raw: Buffer,
    endOffset: number,
    plain = false,
    oversize?: number,
  ): void {
    batch.endOffset = endOffset;
    if (oversize !== undefined) {
      const sample = raw.subarray(0, DEAD_LETTER_SAMPLE_BYTES);
      batch.item.deadLetters.push({
        source: this.name,
        offset: endOffset - oversize - 1,
        reason: `line longer than max_line_bytes (${this.opts.maxLineBytes}); dropped, first ${sample.length} bytes kept here`,
        data: sample,
      });
      this.counters.dropped++;
      return;
    }
    // The scanner vouches for shape, not nesting or years: such lines take the parsing path.
    if (plain && !fastPathUnsafe(raw)) {
      batch.item.events.push(raw);
      return;
    }
    let line = raw;
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
    if (line.length === 0) return;
    const r = this.opts.prepare.line(line);
    for (const e of r.events) batch.item.events.push(e);
    this.counters.truncated += r.truncated;
    if (r.malformed !== undefined) {
      this.counters.malformed++;
      const entry: DeadLetterEntry = {
        source: this.name,
        offset: endOffset - raw.length - 1,
        reason: r.malformed,
        data: line.length > DEAD_LETTER_SAMPLE_BYTES ? line.subarray(0, DEAD_LETTER_SAMPLE_BYTES) : line,
      };
      batch.item.deadLetters.push(entry);
    }
    for (const x of r.rejected ?? []) {
      this.counters.malformed++;
      batch.item.deadLetters.push({
        source: this.name,
        offset: endOffset - raw.length - 1,
        reason: x.reason,
        data: x.data,
      });
    }
  }

  private async send(t: Tracked, batch: Batch): Promise<void> {
    const { endOffset, generation } = batch;
    const events = batch.item.events.length;
    t.inFlight++;
    batch.item.done = (err?: Error) => {
      t.inFlight--;
      if (err !== undefined || t.generation !== generation) return;
      this.counters.events += events;
      if (endOffset > t.ackedOffset) {
        t.ackedOffset = endOffset;
        t.cp.offset = endOffset;
        t.cp.updatedAt = new Date().toISOString();
        while (t.samples.length > 0 && (t.samples[0]?.size ?? 0) <= endOffset) t.samples.shift();
        this.opts.registry.markDirty();
      }
    };
    await this.opts.offer(batch.item);
  }

  /** A rotated file is complete: its unterminated last line will not be finished by anyone. */
  private async flushPending(t: Tracked): Promise<void> {
    if (!t.lines.holding) return;
    const batch = this.newBatch(t);
    // Without a newline: the line ends where the file does.
    t.lines.end((data: Buffer, offset: number, _plain: boolean, oversize?: number) =>
      this.handleLine(batch, data, offset + (oversize ?? data.length), false, oversize),
    );
    batch.endOffset = t.readOffset;
    await this.send(t, batch);
  }

  /** Lets go of a rotated file once it is drained, idle, and every event of it is stored. */
  private async maybeRelease(t: Tracked): Promise<void> {
    if (!t.rotated) return;
    if (!t.gz) {
      if (t.readOffset < t.size || this.clock.now() - t.lastChangeAt < this.rotatedIdleMs) return;
      if (!t.finished) {
        await this.flushPending(t);
        t.finished = true;
      }
    }
    if (!t.finished || t.inFlight > 0) return;
    t.cp.complete = true;
    t.cp.updatedAt = new Date().toISOString();
    this.opts.registry.markDirty();
    this.done.add(`${keyOf(t.dev, t.ino)}:${t.size}:${t.mtimeMs}`);
    this.opts.log.info('finished rotated file', { source: this.name, path: t.path, offset: t.ackedOffset });
    await this.untrack(t);
  }

  private async untrack(t: Tracked): Promise<void> {
    this.tracked.delete(keyOf(t.dev, t.ino));
    await t.fh?.close().catch(() => undefined);
    t.fh = undefined;
  }
}
