import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../model/errors.js';

export function readFileOrThrow(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError('KAUDIT_FILE_UNREADABLE', `cannot read ${what} ${path}: ${code ?? String(err)}`, {
      ...(code === 'ENOENT' ? { hint: 'check the path' } : {}),
      cause: err,
    });
  }
}

/**
 * Replaces a file through a temporary file in the same directory and a rename, so a reader never sees
 * half of it. The temporary name starts with a dot: kubelet skips hidden files in its static Pod
 * directory (pkg/kubelet/config/file.go), so it never starts a half-written manifest.
 */
export function writeFileAtomic(path: string, text: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.kaudit-${process.pid}.tmp`);
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, path);
}
