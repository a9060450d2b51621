/**
 * Where batches are staged for DuckDB to read: a directory of the store's own,
 * `kaudit-staging-<pid>-<random>/` (mode 0700), in /dev/shm when it has room, else in the data
 * directory. It is the one directory the store's DuckDB may read besides its own files and spill
 * directory (sandbox.ts lockDown), so user SQL reaches no other file, and no other user's file in
 * /dev/shm. Only a store opened for writing makes one.
 */
import { randomBytes } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { processAlive } from '../../model/process.js';

const SHM_DIR = '/dev/shm';
const SHM_MIN_FREE_BYTES = 2 * 1024 ** 3;
/** Files of releases before staging had a directory of its own; directories of the staging now. */
const STAGING_FILE = /^\.kaudit-staging-(\d+)-\d+\.tsv$/;
const STAGING_DIR = /^kaudit-staging-(\d+)-[0-9a-f]+$/;

/**
 * Staging goes to a RAM-backed directory when the system has one: a file is written once, read
 * once by DuckDB and written over, so it need not touch the disk.
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

/**
 * Deletes what processes that died mid-import (kill -9, OOM) left: it would otherwise stay in
 * /dev/shm, in RAM, until reboot. Only entries of processes no longer running.
 */
function removeStale(dir: string): void {
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
      if ((file !== null && st.isFile()) || (folder !== null && st.isDirectory()))
        rmSync(path, { recursive: true, force: true });
    } catch {
      // gone already, or not ours to delete
    }
  }
}

export class StagingFiles {
  readonly dir: string;
  private seq = 0;
  /**
   * Files whose import is done, kept to be written over: tmpfs pages already allocated are reused
   * instead of zeroed afresh, which halves the cost of writing a batch.
   */
  private readonly reusable: string[] = [];
  private closing = false;

  constructor(
    dataDir: string,
    /** Done files kept for reuse at most. */
    private readonly keep: number,
  ) {
    const base = stagingBase(dataDir);
    for (const d of new Set([base, dataDir])) removeStale(d);
    this.dir = join(base, `kaudit-staging-${process.pid}-${randomBytes(4).toString('hex')}`);
    mkdirSync(this.dir, { mode: 0o700 });
  }

  /** A file to write a batch to: one done with, or a new one (owner-only). */
  open(): { fd: number; path: string } {
    for (let old = this.reusable.pop(); old !== undefined; old = this.reusable.pop()) {
      try {
        return { fd: openSync(old, 'r+'), path: old };
      } catch {
        // deleted meanwhile: make another
      }
    }
    // Made again if something removed it (a cleaner of /dev/shm), so writes recover.
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const path = join(this.dir, `.kaudit-staging-${process.pid}-${this.seq++}.tsv`);
    return { fd: openSync(path, 'w', 0o600), path };
  }

  /** Discards a file being written that will not be imported. */
  abandon(fd: number, path: string): void {
    closeSync(fd);
    rmSync(path, { force: true });
  }

  /** A file done with: kept for reuse while there are few, else deleted. */
  async recycle(path: string | null): Promise<void> {
    if (path === null) return;
    if (!this.closing && this.reusable.length < this.keep) this.reusable.push(path);
    else await rm(path, { force: true }).catch(() => undefined);
  }

  /** The bytes of a staged file (the unexpected case of a row DuckDB could not read). */
  read(path: string): Buffer {
    return readFileSync(path);
  }

  close(): void {
    this.closing = true;
    this.reusable.length = 0;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
