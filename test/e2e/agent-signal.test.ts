import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, tempDir, writeConfig } from '../fixtures/agent/harness.js';
import { spawnCli } from '../helpers/cli.js';

describe('kaudit agent and a signal while it starts', () => {
  const dir = tempDir('agent-signal');
  beforeAll(buildOnce);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a SIGTERM before its API listens still ends in a drained stop with exit 0', async () => {
    const config = writeConfig(dir, '  - type: file\n    path: logs/*.log\n');
    const child = spawnCli(['agent', '--config', config], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    // The store file appears while the agent starts, before its API and agent.json.
    for (let i = 0; i < 3000 && !existsSync(join(dir, 'data', 'kaudit.duckdb')); i++)
      await new Promise((r) => setTimeout(r, 5));
    expect(existsSync(join(dir, 'run', 'agent.json'))).toBe(false);
    child.kill('SIGTERM');
    const end = await exited;
    expect(end, err).toEqual({ code: 0, signal: null });
    expect(err).toContain('signal received');
    expect(existsSync(join(dir, 'run', 'agent.json'))).toBe(false);
  });
});
