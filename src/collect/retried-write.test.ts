import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from './clock.js';
import { memoryLogger } from './logger.js';
import type { OpenFile } from './open-file.js';
import { RetriedWrite } from './retried-write.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** open() that fails with EMFILE, as with every descriptor taken, while `exhausted()` says so. */
function exhaustedFds(exhausted: () => boolean): OpenFile {
  return (async (...args: Parameters<OpenFile>) => {
    if (exhausted())
      throw Object.assign(new Error(`EMFILE: too many open files, open '${String(args[0])}'`), {
        code: 'EMFILE',
      });
    return open(...args);
  }) as OpenFile;
}

describe('RetriedWrite', () => {
  it('with descriptors exhausted: says so once with the file and the limit, writes it once they are back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kaudit-retried-'));
    dirs.push(dir);
    const path = join(dir, 'agent.json');
    let exhausted = true;
    const clock = new ManualClock();
    const log = memoryLogger();
    const w = new RetriedWrite({
      path,
      text: '{}\n',
      mode: 0o600,
      log,
      clock,
      open: exhaustedFds(() => exhausted),
    });
    expect(await w.start()).toBe(false);
    expect(existsSync(path)).toBe(false);
    await clock.advance(5_000);
    const warnings = log.lines.filter((l) => l.startsWith('warn'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(path);
    expect(warnings[0]).toMatch(/EMFILE.*file descriptors exhausted.*ulimit -n/);
    expect(w.lastError).toMatch(/EMFILE/);
    exhausted = false;
    await clock.advance(10_000);
    await w.written;
    expect(readFileSync(path, 'utf8')).toBe('{}\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(w.lastError).toBeUndefined();
    expect(log.lines.some((l) => l.startsWith('info file written'))).toBe(true);
  });

  it('stops trying when cancelled, so a file removed at stop stays removed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kaudit-retried-'));
    dirs.push(dir);
    const path = join(dir, 'agent.json');
    let exhausted = true;
    const clock = new ManualClock();
    const w = new RetriedWrite({
      path,
      text: '{}\n',
      mode: 0o600,
      log: memoryLogger(),
      clock,
      open: exhaustedFds(() => exhausted),
    });
    await w.start();
    await w.cancel();
    exhausted = false;
    await clock.advance(60_000);
    expect(existsSync(path)).toBe(false);
    expect(clock.pending).toBe(0);
  });
});
