import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DeadLetter } from './dead-letter.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'kaudit-dl-'));
  dirs.push(d);
  return d;
}

describe('DeadLetter', () => {
  it('recovers after one failed write: the next add succeeds', async () => {
    const dir = tempDir();
    const dl = new DeadLetter(dir);
    // A directory where the file should be makes open() fail once.
    mkdirSync(dl.path);
    await expect(dl.add({ source: 's', reason: 'bad', data: 'x' })).rejects.toThrow();
    rmSync(dl.path, { recursive: true });
    await dl.add({ source: 's', reason: 'bad', data: 'second' });
    await dl.close();
    expect(readFileSync(dl.path, 'utf8')).toContain('"data":"second"');
  });

  it('creates the file readable by its owner only (0600)', async () => {
    const dl = new DeadLetter(tempDir());
    await dl.add({ source: 's', reason: 'bad', data: 'x' });
    await dl.close();
    expect(statSync(dl.path).mode & 0o777).toBe(0o600);
  });
});
