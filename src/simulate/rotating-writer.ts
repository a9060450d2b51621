import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  write as writeAsync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { UserError } from '../model/errors.js';
import type { Simulation } from './generator.js';
import { type Truth, writeTruth } from './truth.js';

export interface RotatingWriterOptions {
  /** The active log file, e.g. `/var/log/kubernetes/audit.log`. */
  readonly path: string;
  /** Rotate before a write would make the file larger than this (kube-apiserver `--audit-log-maxsize`, in bytes). Unset: never. */
  readonly maxBytes?: number;
  /** Keep at most this many rotated files (`--audit-log-maxbackup`); 0 or unset keeps all. */
  readonly maxBackups?: number;
  /** Gzip rotated files (`--audit-log-compress`). */
  readonly compress?: boolean;
  /** Bytes gathered in memory before a write(2); 0 writes every line through. Default 4 MiB. */
  readonly bufferBytes?: number;
  /**
   * Write full buffers on libuv's thread pool while the caller fills the next one. `write` may
   * then return a promise, which must settle before the next call; end with `finish()`.
   */
  readonly writeBehind?: boolean;
}

export interface RotationSummary {
  /** Every log file that exists at the end, oldest backup first and the active file last. */
  readonly files: string[];
  readonly bytes: number;
  readonly lines: number;
  readonly rotations: number;
}

const MEGABYTE = 1024 * 1024;

/** Go layout `2006-01-02T15-04-05.000` in UTC, the timestamp lumberjack puts in backup names. */
export function backupTimestamp(ms: number): string {
  return new Date(ms).toISOString().slice(0, 23).replaceAll(':', '-');
}

/** `audit.log` rotated at `ms` becomes `audit-2026-01-15T09-12-44.123.log` (lumberjack backupName). */
export function backupName(path: string, ms: number): string {
  const ext = extname(path);
  const prefix = basename(path).slice(0, basename(path).length - ext.length);
  return join(dirname(path), `${prefix}-${backupTimestamp(ms)}${ext}`);
}

/** The rotated files of `path` in its directory, newest first, as lumberjack's oldLogFiles finds them. */
export function listBackups(path: string): { name: string; timestamp: string }[] {
  const dir = dirname(path);
  const ext = extname(path);
  const prefix = `${basename(path).slice(0, basename(path).length - ext.length)}-`;
  const re = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}$/;
  const found: { name: string; timestamp: string }[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(prefix)) continue;
    const rest = name.endsWith(`${ext}.gz`)
      ? name.slice(prefix.length, name.length - ext.length - 3)
      : name.endsWith(ext)
        ? name.slice(prefix.length, name.length - ext.length)
        : undefined;
    if (rest !== undefined && re.test(rest)) found.push({ name: join(dir, name), timestamp: rest });
  }
  return found.sort((a, b) => (a.timestamp < b.timestamp ? 1 : a.timestamp > b.timestamp ? -1 : 0));
}

/**
 * Writes JSON lines to a file and rotates it the way kube-apiserver's log backend does through
 * lumberjack: before a line would push the file past `maxBytes`, the file is renamed to
 * `<name>-<UTC rotation time>.<ext>`, a new file is opened, then rotated files beyond
 * `maxBackups` are removed and the rest optionally gzipped. Lines are never split across files.
 *
 * Differences, on purpose: the rotation time is the event's (simulated) time so output stays
 * deterministic; a name already taken is moved on by a millisecond instead of being overwritten;
 * compression runs synchronously; an existing file is replaced rather than appended to.
 */
export class RotatingWriter {
  private readonly path: string;
  private readonly maxBytes: number;
  private readonly maxBackups: number;
  private readonly compress: boolean;
  private readonly bufferBytes: number;
  private fd: number;
  /** Size of the active file including what is still buffered. */
  private size = 0;
  private buf: Buffer;
  private used = 0;
  private totalBytes = 0;
  private lines = 0;
  private rotations = 0;
  private lastBackupMs = Number.NEGATIVE_INFINITY;
  private readonly writeBehind: boolean;
  /** The buffer being written in the background, if any. */
  private inflight: Promise<void> | undefined;
  private standby: Buffer | undefined;
  private failure: unknown;

  constructor(options: RotatingWriterOptions) {
    this.path = options.path;
    this.maxBytes =
      options.maxBytes !== undefined && options.maxBytes > 0 ? options.maxBytes : Number.POSITIVE_INFINITY;
    this.maxBackups = Math.max(0, Math.floor(options.maxBackups ?? 0));
    this.compress = options.compress ?? false;
    this.bufferBytes = Math.max(0, options.bufferBytes ?? 4 * MEGABYTE);
    this.writeBehind = options.writeBehind ?? false;
    this.buf = Buffer.allocUnsafe(Math.max(this.bufferBytes, 64 * 1024));
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      this.fd = openSync(this.path, 'w', 0o644);
    } catch (cause) {
      throw new UserError(
        'KAUDIT_SIMULATE_OUTPUT',
        `cannot open ${this.path} for writing: ${String(cause)}`,
        {
          hint: 'check that the directory is writable',
          cause,
        },
      );
    }
  }

  /**
   * Appends one line (ending in a newline) that carries simulated time `tUs` (epoch µs); pass
   * `ascii` only for lines known to be pure ASCII. Returns a promise only with `writeBehind`, when
   * the caller must wait for the disk.
   */
  write(line: string, tUs: number, ascii = false): Promise<void> | undefined {
    if (this.failure !== undefined) throw this.failure;
    // Encode straight into the buffer: one pass gives both the bytes and their count.
    const worst = line.length * 3;
    if (this.buf.length - this.used < worst) {
      if (this.writeBehind) {
        const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.used + worst * 2));
        this.buf.copy(bigger, 0, 0, this.used);
        this.buf = bigger;
      } else {
        this.flush();
        if (this.buf.length < worst) this.buf = Buffer.allocUnsafe(worst * 2);
      }
    }
    const at = this.used;
    // Copying Latin-1 is cheaper than encoding UTF-8, and the same bytes for ASCII.
    const bytes = this.buf.write(line, at, ascii ? 'latin1' : 'utf8');
    if (bytes > this.maxBytes) {
      throw new UserError(
        'KAUDIT_SIMULATE_ROTATE_SIZE',
        `an event of ${bytes} bytes does not fit in a file of at most ${this.maxBytes} bytes`,
        { hint: 'raise --rotate-mb' },
      );
    }
    if (this.size + bytes > this.maxBytes) {
      const inflight = this.inflight;
      if (inflight !== undefined) {
        return inflight.then(() => {
          this.inflight = undefined;
          this.rotateAt(at, bytes, tUs);
          return this.account(bytes);
        });
      }
      this.rotateAt(at, bytes, tUs);
    }
    return this.account(bytes);
  }

  private account(bytes: number): Promise<void> | undefined {
    this.used += bytes;
    this.size += bytes;
    this.totalBytes += bytes;
    this.lines++;
    if (this.used < this.bufferBytes) return undefined;
    if (!this.writeBehind) {
      this.flush();
      return undefined;
    }
    return this.handOff();
  }

  /** Starts writing the full buffer in the background and continues in the standby one. */
  private handOff(): Promise<void> | undefined {
    const inflight = this.inflight;
    if (inflight !== undefined) {
      return inflight.then(() => {
        this.inflight = undefined;
        return this.handOff();
      });
    }
    const full = this.buf;
    const length = this.used;
    this.buf = this.standby ?? Buffer.allocUnsafe(full.length);
    this.standby = undefined;
    this.used = 0;
    this.inflight = writeFully(this.fd, full, length).then(
      () => {
        this.standby = full;
      },
      (err: unknown) => {
        this.failure = err;
      },
    );
    return undefined;
  }

  /** Moves the line at `at` to a fresh file: what precedes it stays in the old one. */
  private rotateAt(at: number, bytes: number, tUs: number): void {
    this.writeOut(0, at);
    this.buf.copyWithin(0, at, at + bytes);
    this.used = 0;
    this.rotate(Math.floor(tUs / 1000));
  }

  /** Waits for background writes and writes everything buffered; then the file is complete. */
  async drain(): Promise<void> {
    if (this.inflight !== undefined) await this.inflight;
    this.inflight = undefined;
    if (this.failure !== undefined) throw this.failure;
    this.flush();
  }

  /** `drain()` then `close()`: the way to end a write-behind writer. */
  async finish(): Promise<RotationSummary> {
    await this.drain();
    return this.close();
  }

  /** Writes what is buffered to the file (synchronous writers; write-behind ones use `drain()`). */
  flush(): void {
    if (this.inflight !== undefined)
      throw new Error('RotatingWriter.flush() while a write is in flight; use drain()');
    this.writeOut(0, this.used);
    this.used = 0;
  }

  private writeOut(from: number, to: number): void {
    let off = from;
    while (off < to) off += writeSync(this.fd, this.buf, off, to - off);
  }

  /** Closes the file (synchronous writers; write-behind ones end with `finish()`). */
  close(): RotationSummary {
    if (this.inflight !== undefined)
      throw new Error('RotatingWriter.close() while a write is in flight; use finish()');
    this.flush();
    closeSync(this.fd);
    this.fd = -1;
    const backups = listBackups(this.path)
      .map((b) => b.name)
      .reverse();
    return {
      files: [...backups, this.path],
      bytes: this.totalBytes,
      lines: this.lines,
      rotations: this.rotations,
    };
  }

  /** Called with the triggering line already moved to the start of the buffer. */
  private rotate(ms: number): void {
    closeSync(this.fd);
    let at = Math.max(ms, this.lastBackupMs + 1);
    let name = backupName(this.path, at);
    while (existsSync(name) || existsSync(`${name}.gz`)) name = backupName(this.path, ++at);
    renameSync(this.path, name);
    this.lastBackupMs = at;
    this.fd = openSync(this.path, 'w', 0o644);
    this.size = 0;
    this.rotations++;
    this.mill();
  }

  /** lumberjack millRunOnce: drop backups beyond maxBackups (newest kept), then compress the rest. */
  private mill(): void {
    let backups = listBackups(this.path);
    if (this.maxBackups > 0) {
      const kept = new Set<string>();
      const remaining: typeof backups = [];
      for (const b of backups) {
        // A file and its .gz count once.
        kept.add(b.timestamp);
        if (kept.size > this.maxBackups) rmSync(b.name, { force: true });
        else remaining.push(b);
      }
      backups = remaining;
    }
    if (this.compress) {
      for (const b of backups) {
        if (b.name.endsWith('.gz')) continue;
        writeFileSync(`${b.name}.gz`, gzipSync(readFileSync(b.name)), { mode: 0o644 });
        rmSync(b.name);
      }
    }
  }
}

function writeFully(fd: number, buf: Buffer, length: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (offset: number): void => {
      if (offset >= length) {
        resolve();
        return;
      }
      writeAsync(fd, buf, offset, length - offset, null, (err, written) => {
        if (err) reject(err);
        else step(offset + written);
      });
    };
    step(0);
  });
}

export interface SimulateToFileResult extends RotationSummary {
  readonly truth: Truth;
  readonly truthPath: string;
}

/**
 * Runs `sim` to `options.path` as fast as possible, rotating as configured, and writes the truth
 * beside it (`<path>.truth.json`). Full buffers are written in the background while the next
 * events are generated.
 */
export async function simulateToFile(
  sim: Simulation,
  options: RotatingWriterOptions,
): Promise<SimulateToFileResult> {
  const writer = new RotatingWriter({ writeBehind: true, ...options });
  for (const e of sim) {
    const wait = writer.write(e.line, e.t, e.ascii);
    if (wait !== undefined) await wait;
  }
  const summary = await writer.finish();
  const truth = sim.truth();
  const truthPath = `${options.path}.truth.json`;
  writeTruth(truthPath, truth);
  return { ...summary, truth, truthPath };
}
