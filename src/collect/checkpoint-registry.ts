import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../model/errors.js';
import { type OpenFile, openFile } from './open-file.js';

/** Bytes at the start of a file hashed to tell two files with the same inode apart (inode reuse, gzip copies). */
export const FINGERPRINT_BYTES = 1024;
/** Entries of files that are gone are kept so a later `.gz` of them is recognised; bounded by count, never by age. */
const MAX_GONE_ENTRIES_PER_SOURCE = 200;

/** Where one file was read to; `offset` counts uncompressed bytes acknowledged by the store. */
export interface FileCheckpoint {
  path: string;
  dev: number;
  ino: number;
  fingerprint: string;
  fingerprintBytes: number;
  offset: number;
  /** Rotated away and drained to its end: nothing more will be read from it or from a `.gz` of it. */
  complete: boolean;
  updatedAt: string;
}

interface SourceEntry {
  /** Set once the source has been scanned: files seen later are new and read from their start. */
  initialisedAt: string;
  files: FileCheckpoint[];
}

interface RegistryFile {
  version: 1;
  sources: Record<string, SourceEntry>;
}

const CHECKPOINT_FIELDS: Record<keyof FileCheckpoint, 'string' | 'number' | 'boolean'> = {
  path: 'string',
  dev: 'number',
  ino: 'number',
  fingerprint: 'string',
  fingerprintBytes: 'number',
  offset: 'number',
  complete: 'boolean',
  updatedAt: 'string',
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every shape problem of a loaded checkpoint file, each naming the field, so none is found later by a crash. */
export function registryProblems(parsed: unknown): string[] {
  if (!isRecord(parsed)) return ['not a JSON object'];
  if (parsed.version !== 1) return [`version is ${JSON.stringify(parsed.version)}, expected 1`];
  if (!isRecord(parsed.sources)) return ['sources is not an object'];
  const problems: string[] = [];
  for (const [name, entry] of Object.entries(parsed.sources)) {
    const at = `sources.${name}`;
    if (!isRecord(entry)) {
      problems.push(`${at} is not an object`);
      continue;
    }
    if (typeof entry.initialisedAt !== 'string') problems.push(`${at}.initialisedAt is not a string`);
    if (!Array.isArray(entry.files)) {
      problems.push(`${at}.files is not an array`);
      continue;
    }
    entry.files.forEach((f: unknown, i: number) => {
      if (!isRecord(f)) {
        problems.push(`${at}.files[${i}] is not an object`);
        return;
      }
      for (const [field, type] of Object.entries(CHECKPOINT_FIELDS)) {
        const v = f[field];
        if (typeof v !== type || (type === 'number' && !Number.isFinite(v))) {
          problems.push(
            `${at}.files[${i}].${field} is ${JSON.stringify(v) ?? 'missing'}, expected a ${type}`,
          );
        }
      }
    });
  }
  return problems;
}

function detach(cp: FileCheckpoint): void {
  cp.dev = -1;
  cp.ino = -1;
}

export function fingerprintOf(head: Buffer): string {
  return createHash('sha256').update(head).digest('hex').slice(0, 32);
}

/**
 * The checkpoints ("pointers") of every file source, kept in one JSON file in run_path and replaced
 * atomically (temp file, fsync, rename, fsync of the directory) so a crash leaves the old or the new
 * version, never a torn one.
 */
export class CheckpointRegistry {
  readonly path: string;
  private readonly data: RegistryFile;
  private readonly file: SerialFileWriter;
  lastCommitAt: Date | undefined;
  /** Why the last commit failed, until one succeeds (shown in status). */
  lastError: string | undefined;

  private constructor(
    readonly runPath: string,
    data: RegistryFile,
    open: OpenFile,
  ) {
    this.path = join(runPath, 'checkpoints.json');
    this.data = data;
    this.file = new SerialFileWriter(this.path, open);
  }

  static open(runPath: string, opts: { openFile?: OpenFile } = {}): CheckpointRegistry {
    const open = opts.openFile ?? openFile;
    mkdirSync(runPath, { recursive: true });
    const path = join(runPath, 'checkpoints.json');
    let text: string | undefined;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === undefined) return new CheckpointRegistry(runPath, { version: 1, sources: {} }, open);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      throw new UserError('KAUDIT_CHECKPOINT_CORRUPT', `checkpoint file ${path} is not valid JSON`, {
        cause,
        hint: 'it is only ever replaced atomically; move it aside to start over (files are then re-read, the store drops duplicates)',
      });
    }
    const problems = registryProblems(parsed);
    if (problems.length > 0) {
      throw new UserError(
        'KAUDIT_CHECKPOINT_CORRUPT',
        `checkpoint file ${path} has an unknown layout: ${problems.join('; ')}`,
        {
          hint: 'move it aside to start over (files are then re-read, the store drops duplicates)',
        },
      );
    }
    return new CheckpointRegistry(runPath, parsed as RegistryFile, open);
  }

  isInitialised(source: string): boolean {
    return this.data.sources[source] !== undefined;
  }

  markInitialised(source: string): void {
    if (this.data.sources[source] === undefined) {
      this.data.sources[source] = { initialisedAt: new Date().toISOString(), files: [] };
      this.file.dirty = true;
    }
  }

  files(source: string): readonly FileCheckpoint[] {
    return this.data.sources[source]?.files ?? [];
  }

  /** The checkpoint of the file with this device and inode whose first bytes hash as recorded. */
  findByInode(source: string, dev: number, ino: number): FileCheckpoint | undefined {
    return this.files(source).find((f) => f.dev === dev && f.ino === ino);
  }

  findByFingerprint(source: string, matches: (cp: FileCheckpoint) => boolean): FileCheckpoint | undefined {
    return this.files(source).find((f) => f.fingerprintBytes > 0 && matches(f));
  }

  upsert(source: string, cp: FileCheckpoint): void {
    this.markInitialised(source);
    const entry = this.data.sources[source];
    if (entry === undefined) return;
    const i = entry.files.findIndex((f) => f.dev === cp.dev && f.ino === cp.ino);
    if (i >= 0) entry.files[i] = cp;
    else entry.files.push(cp);
    this.file.dirty = true;
  }

  /** Moves an entry to another file (a backup compressed into a new inode), replacing that inode's stale entry. */
  rekey(source: string, cp: FileCheckpoint, dev: number, ino: number, path: string): void {
    const entry = this.data.sources[source];
    if (entry === undefined) return;
    for (const f of entry.files) if (f !== cp && f.dev === dev && f.ino === ino) detach(f);
    cp.dev = dev;
    cp.ino = ino;
    cp.path = path;
    this.file.dirty = true;
  }

  /**
   * The inode now belongs to another file: the entry stays, found only by its fingerprint, so a gzip
   * copy of the content it describes still resumes where it was.
   */
  detach(cp: FileCheckpoint): void {
    detach(cp);
    this.file.dirty = true;
  }

  remove(source: string, cp: FileCheckpoint): void {
    const entry = this.data.sources[source];
    if (entry === undefined) return;
    const i = entry.files.indexOf(cp);
    if (i >= 0) {
      entry.files.splice(i, 1);
      this.file.dirty = true;
    }
  }

  /**
   * Drops the oldest entries of completed files that are no longer on disk, beyond a fixed count.
   * Entries of files still present are kept, so a restart never reads a finished backup again.
   */
  prune(source: string, present: ReadonlySet<string>): void {
    const entry = this.data.sources[source];
    if (entry === undefined) return;
    const gone = entry.files.filter((f) => (f.complete || f.ino === -1) && !present.has(`${f.dev}:${f.ino}`));
    if (gone.length <= MAX_GONE_ENTRIES_PER_SOURCE) return;
    gone.sort((a, b) => a.updatedAt.localeCompare(b.updatedAt));
    const drop = new Set(gone.slice(0, gone.length - MAX_GONE_ENTRIES_PER_SOURCE));
    entry.files = entry.files.filter((f) => !drop.has(f));
    this.file.dirty = true;
  }

  markDirty(): void {
    this.file.dirty = true;
  }

  /** Writes the registry if it changed; concurrent calls are serialised. */
  async commit(): Promise<void> {
    try {
      if (await this.file.commit(() => JSON.stringify(this.data))) {
        this.lastCommitAt = new Date();
        this.lastError = undefined;
      }
    } catch (err) {
      this.lastError = err instanceof Error ? err.message : String(err);
      throw err;
    }
  }
}

/**
 * A file holding the newest state of something that changes often (checkpoints, forwarder cursors):
 * written whole by writeFileAtomic when `dirty`, one write at a time. A failed write rejects its own
 * caller only and leaves the state dirty, so the next commit writes it again.
 */
export class SerialFileWriter {
  dirty = false;
  private writing: Promise<boolean> = Promise.resolve(false);

  constructor(
    private readonly path: string,
    private readonly open: OpenFile = openFile,
  ) {}

  /** Resolves true when it wrote, false when nothing had changed. */
  commit(text: () => string): Promise<boolean> {
    this.writing = this.writing
      .catch(() => false)
      .then(async () => {
        if (!this.dirty) return false;
        this.dirty = false;
        try {
          await writeFileAtomic(this.path, text(), 0o600, this.open);
          return true;
        } catch (err) {
          this.dirty = true;
          throw err;
        }
      });
    return this.writing;
  }
}

export async function writeFileAtomic(
  path: string,
  text: string,
  mode = 0o644,
  open: OpenFile = openFile,
): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  // A leftover temporary file keeps its mode through open(); start afresh so `mode` holds.
  await rm(tmp, { force: true });
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  // The rename is only durable once the directory entry is on disk. Some filesystems refuse fsync
  // on directories, and with descriptors exhausted (EMFILE) the directory cannot be opened: the
  // rename is atomic all the same, so neither fails the write.
  const dir = await open(join(path, '..'), 'r').catch(() => undefined);
  try {
    await dir?.sync();
  } catch {
    // See above.
  } finally {
    await dir?.close();
  }
}
