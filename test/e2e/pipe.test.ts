/** `kaudit ... | head`: the reader leaves early; kaudit stops quietly, no EPIPE stack trace. */
import { describe, expect, it } from 'vitest';
import { spawnCli } from '../helpers/cli.js';

function readFirstChunkThenClose(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    child.stdout?.once('data', () => child.stdout?.destroy());
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('output into a pipe that closes early', () => {
  for (const args of [
    ['simulate', '--count', '200000'],
    ['rules', 'list', '--json'],
  ]) {
    it(`kaudit ${args.join(' ')} | head exits 0 without EPIPE`, async () => {
      const r = await readFirstChunkThenClose(args);
      expect(r.stderr).not.toContain('EPIPE');
      expect(r.stderr).not.toContain('internal error');
      expect(r.code).toBe(0);
    });
  }
});
