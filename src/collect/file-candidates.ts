import { readdir } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, sep } from 'node:path';

export interface Candidate {
  path: string;
  /** Named like a backup kube-apiserver made (`audit-2006-01-02T15-04-05.000.log`), possibly gzipped. */
  rotated: boolean;
  gz: boolean;
}

function globSegmentSource(segment: string): string {
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i] ?? '';
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = segment.indexOf(']', i + 1);
      if (end < 0) out += '\\[';
      else {
        const body = segment
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\');
        out += `[${body}]`;
        i = end;
      }
    } else out += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return out;
}

function hasMagic(segment: string): boolean {
  return /[*?[]/.test(segment);
}

/** Directories matching a glob of directories (`*`, `?`, `[...]` per segment, `**` for any depth). */
async function expandDirs(pattern: string): Promise<string[]> {
  const parts = pattern.split(sep).filter((p, i) => p !== '' || i === 0);
  let dirs = [isAbsolute(pattern) ? sep : '.'];
  for (const part of parts) {
    if (part === '') continue;
    const next: string[] = [];
    if (part === '**') {
      for (const d of dirs) next.push(d, ...(await walkDirs(d)));
    } else if (!hasMagic(part)) {
      for (const d of dirs) next.push(join(d, part));
    } else {
      const re = new RegExp(`^${globSegmentSource(part)}$`);
      for (const d of dirs) {
        for (const e of await readdirSafe(d))
          if ((e.isDirectory() || e.isSymbolicLink()) && re.test(e.name)) next.push(join(d, e.name));
      }
    }
    dirs = next;
  }
  return [...new Set(dirs)];
}

async function walkDirs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdirSafe(dir)) {
    if (!e.isDirectory()) continue;
    const p = join(dir, e.name);
    out.push(p, ...(await walkDirs(p)));
  }
  return out;
}

/** Codes that mean a directory is not there (any more): its files are gone. */
const ABSENT = new Set(['ENOENT', 'ENOTDIR']);

/** A directory could not be listed for another reason (EMFILE, EACCES, EIO, ELOOP...): nothing is known of its files. */
export class ListingFailed extends Error {
  constructor(
    readonly dir: string,
    readonly code: string,
  ) {
    super(`cannot list ${dir}: ${code}`);
  }
}

/**
 * A directory's entries; none when it does not exist. Any other failure throws: a listing that
 * failed says nothing about whether a followed file is gone, so the caller must not act on it.
 */
async function readdirSafe(dir: string) {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    if (ABSENT.has(code)) return [];
    throw new ListingFailed(dir, code);
  }
}

/**
 * Finds the files of a file source: those matching its glob, and the backups kube-apiserver's
 * rotation (lumberjack) makes of them, `<name>-<timestamp><ext>` and the same with `.gz`, so a file
 * renamed while the agent was down is still found and read from its checkpoint.
 */
export class FileCandidates {
  private readonly dirPattern: string;
  private readonly live: RegExp;
  private readonly backup: RegExp;
  private listed: readonly string[] = [];

  constructor(readonly pattern: string) {
    this.dirPattern = dirname(pattern);
    const base = basename(pattern);
    const dot = base.lastIndexOf('.');
    const name = dot > 0 ? base.slice(0, dot) : base;
    const ext = dot > 0 ? base.slice(dot) : '';
    this.live = new RegExp(`^${globSegmentSource(base)}$`);
    // lumberjack backupName: name + "-" + time.Format("2006-01-02T15-04-05.000") + ext
    this.backup = new RegExp(
      `^${globSegmentSource(name)}-\\d{4}-\\d{2}-\\d{2}T\\d{2}-\\d{2}-\\d{2}(?:\\.\\d+)?${globSegmentSource(ext)}(\\.gz)?$`,
    );
  }

  /** Whether a file of this name in one of the directories would be a candidate. */
  matches(name: string): boolean {
    return this.live.test(name) || this.backup.test(name);
  }

  /** The directories the last list() looked in (the glob's directory part, expanded). */
  get directories(): readonly string[] {
    return this.listed;
  }

  async list(): Promise<Candidate[]> {
    const out: Candidate[] = [];
    this.listed = await expandDirs(this.dirPattern);
    for (const dir of this.listed) {
      for (const e of await readdirSafe(dir)) {
        // Symbolic links are followed (kubelet links container logs); stat() later sees the target.
        if (!e.isFile() && !e.isSymbolicLink()) continue;
        const b = this.backup.exec(e.name);
        if (b) out.push({ path: join(dir, e.name), rotated: true, gz: b[1] !== undefined });
        else if (this.live.test(e.name)) {
          out.push({ path: join(dir, e.name), rotated: false, gz: e.name.endsWith('.gz') });
        }
      }
    }
    return out;
  }
}
