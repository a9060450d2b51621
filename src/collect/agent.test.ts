import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { auditLines } from '../../test/fixtures/agent/make-events.js';
import { DEFAULT_PREPARE_OPTIONS, prepareLine, prepareValue } from '../model/prepare.js';
import { MemoryStore } from '../store/memory/memory-store.js';
import { Agent, CHECKPOINT_COMMIT_MS } from './agent.js';
import { parseAgentConfig } from './agent-config.js';
import { ManualClock } from './clock.js';
import { DeadLetter } from './dead-letter.js';
import { memoryLogger } from './logger.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('Agent checkpoint commits', () => {
  it('writes checkpoints on the injected clock, one commit interval after the last, and at stop', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kaudit-agent-clock-'));
    dirs.push(dir);
    mkdirSync(join(dir, 'logs'));
    const file = join(dir, 'logs', 'audit.log');
    writeFileSync(file, auditLines('c', 0, 10));
    const { config } = parseAgentConfig(
      `cluster: clock\npipeline: {flush_interval_ms: 100}\nrun_path: ${join(dir, 'run')}\ndata: ${join(dir, 'data')}\nlogs:\n  - type: file\n    path: ${file}\n`,
      { file: 'k.yaml' },
    );
    if (config === undefined) throw new Error('no config');
    const clock = new ManualClock();
    const store = new MemoryStore();
    const agent = new Agent({
      config,
      store,
      prepare: {
        options: DEFAULT_PREPARE_OPTIONS,
        line: (b) => prepareLine(b),
        value: (v) => prepareValue(v),
      },
      deadLetter: new DeadLetter(join(dir, 'data')),
      log: memoryLogger(),
      version: 'test',
      clock,
    });
    const checkpoints = join(dir, 'run', 'checkpoints.json');
    const offset = (): number | undefined =>
      existsSync(checkpoints)
        ? (
            JSON.parse(readFileSync(checkpoints, 'utf8')) as {
              sources: Record<string, { files: { offset: number }[] }>;
            }
          ).sources[file]?.files[0]?.offset
        : undefined;
    await agent.start();
    try {
      // Time moves only by the clock (reading the file is real I/O): the events are stored within
      // a flush interval, short of a commit interval, and nothing is written until the clock
      // reaches it.
      for (let at = 0; at < CHECKPOINT_COMMIT_MS - 100 && store.rows.size < 10; at += 10) {
        await clock.advance(10);
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(store.rows.size).toBe(10);
      await new Promise((r) => setTimeout(r, 50));
      const before = offset();
      expect(before === undefined || before < readFileSync(file).length).toBe(true);
      await clock.advance(CHECKPOINT_COMMIT_MS);
      for (let i = 0; i < 20 && offset() !== readFileSync(file).length; i++)
        await new Promise((r) => setTimeout(r, 10));
      expect(offset()).toBe(readFileSync(file).length);
      // The next commit is due one interval after this one, on the same clock.
      expect(clock.pending).toBeGreaterThan(0);
    } finally {
      await agent.stop();
    }
  });
});
