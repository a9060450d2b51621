import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CheckpointRegistry } from './checkpoint-registry.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'kaudit-cp-'));
  dirs.push(d);
  return d;
}

describe('CheckpointRegistry', () => {
  it('recovers after one failed commit: the next commit writes the file', async () => {
    const dir = tempDir();
    const reg = CheckpointRegistry.open(dir);
    reg.markInitialised('audit');
    // A non-empty directory at the temporary path makes this one commit fail.
    const tmp = `${reg.path}.${process.pid}.tmp`;
    mkdirSync(join(tmp, 'x'), { recursive: true });
    await expect(reg.commit()).rejects.toThrow();
    rmSync(tmp, { recursive: true });
    await reg.commit();
    expect(CheckpointRegistry.open(dir).isInitialised('audit')).toBe(true);
  });

  it('writes the checkpoint file 0600', async () => {
    const reg = CheckpointRegistry.open(tempDir());
    reg.markInitialised('audit');
    await reg.commit();
    expect(statSync(reg.path).mode & 0o777).toBe(0o600);
  });

  it('refuses a checkpoint file whose entries have the wrong shape, naming the field', () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'checkpoints.json'),
      JSON.stringify({ version: 1, sources: { audit: { initialisedAt: 'x', files: [{ path: 3 }] } } }),
    );
    expect(() => CheckpointRegistry.open(dir)).toThrow(/sources\.audit\.files\[0\]\.path/);
  });
});
