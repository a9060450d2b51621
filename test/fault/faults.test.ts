/**
 * Fault suite: a store that fails on chosen commits (before or after taking the rows), with a
 * file source and the webhook in front of the pipeline. Invariants: whatever was acknowledged (a
 * checkpoint committed, a 200 answered) is in the store; every event arrives exactly once in the
 * end; stop ends within its deadline even while the store keeps failing. A full disk under the
 * dead-letter file and the checkpoint file (handles that fail with ENOSPC on chosen writes): nothing
 * is acknowledged before its dead letters are written, status shows the error, and everything
 * lands once the disk has room again. A killed store process: test/clickhouse/agent-outage.test.ts.
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/collect/agent.js';
import { parseAgentConfig } from '../../src/collect/agent-config.js';
import { CheckpointRegistry } from '../../src/collect/checkpoint-registry.js';
import { DeadLetter } from '../../src/collect/dead-letter.js';
import { FileSource } from '../../src/collect/file-source.js';
import { memoryLogger } from '../../src/collect/logger.js';
import type { OpenFile } from '../../src/collect/open-file.js';
import { type DeadLetterEntry, Pipeline, type PipelineItem } from '../../src/collect/pipeline.js';
import { WebhookHandler } from '../../src/collect/webhook-source.js';
import { DEFAULT_PREPARE_OPTIONS, prepareLine, prepareValue } from '../../src/model/prepare.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { auditEvent, auditLines } from '../fixtures/agent/make-events.js';

const RUNS = Number(process.env.KAUDIT_FUZZ_RUNS ?? 40) > 100 ? 30 : 4;
const SEED = Number(process.env.KAUDIT_FUZZ_SEED ?? 20261204);
const prepare = {
  options: DEFAULT_PREPARE_OPTIONS,
  line: (b: Buffer) => prepareLine(b),
  value: (v: unknown) => prepareValue(v),
};

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function pipelineFor(store: MemoryStore): Pipeline {
  const letters: DeadLetterEntry[] = [];
  return new Pipeline({
    store,
    cluster: 'fault',
    queueEvents: 2000,
    queueBytes: 16 << 20,
    batchEvents: 50,
    flushIntervalMs: 5,
    deadLetter: {
      count: 0,
      async add(e: DeadLetterEntry) {
        letters.push(e);
      },
    },
    log: memoryLogger(),
  });
}

/** What each commit does: succeed, fail before storing, or store and then fail (the answer lost). */
const schedule = fc.array(fc.constantFrom('ok', 'fail', 'lost'), {
  minLength: 1,
  maxLength: RUNS > 4 ? 12 : 5,
});

function storedIds(store: MemoryStore, prefix: string): Set<string> {
  return new Set([...store.rows.values()].map((r) => r.audit_id).filter((id) => id.startsWith(prefix)));
}

async function until(what: string, cond: () => boolean): Promise<void> {
  const end = Date.now() + 20_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * fs/promises' open, with handles whose writes fail with `code` while `full()` is true: a disk that
 * is full until the test frees it.
 */
function fullDisk(full: () => boolean, code = 'ENOSPC'): { openFile: OpenFile; failed: () => number } {
  let failed = 0;
  const openFile = (async (...args: Parameters<OpenFile>) => {
    const fh = await open(...args);
    return new Proxy(fh, {
      get(target, prop) {
        const v: unknown = Reflect.get(target, prop, target);
        if (typeof v !== 'function') return v;
        if (prop !== 'write' && prop !== 'writeFile') return v.bind(target);
        return async (...a: unknown[]) => {
          if (full()) {
            failed++;
            throw Object.assign(new Error(`${code}: no space left on device, write`), { code });
          }
          return v.apply(target, a);
        };
      },
    });
  }) as unknown as OpenFile;
  return { openFile, failed: () => failed };
}

describe('fault suite', () => {
  it('file source: a committed checkpoint never runs ahead of the store, and every line arrives once', async () => {
    await fc.assert(
      fc.asyncProperty(schedule, fc.integer({ min: 50, max: 200 }), async (plan, n) => {
        const dir = mkdtempSync(join(tmpdir(), 'kaudit-fault-'));
        dirs.push(dir);
        mkdirSync(join(dir, 'logs'));
        const file = join(dir, 'logs', 'audit.log');
        writeFileSync(file, '');
        const store = new MemoryStore();
        store.failures = plan.map((p) => (p === 'fail' ? new Error('disk full') : undefined));
        const lost = plan.map((p) => p === 'lost');
        const hold = store.hold.bind(store);
        store.hold = (batch) => {
          const held = hold(batch);
          return {
            ...held,
            commit: () => {
              store.failAfterCommit = lost.shift() ? new Error('connection reset after commit') : undefined;
              return held.commit();
            },
          };
        };
        const registry = CheckpointRegistry.open(join(dir, 'run'));
        const pipeline = pipelineFor(store);
        const source = new FileSource({
          config: {
            type: 'file',
            name: 'audit',
            path: file,
            source: 's',
            service: 'a',
            startPosition: 'beginning',
          },
          registry,
          offer: (item) => pipeline.offer(item),
          prepare,
          maxLineBytes: 1 << 20,
          log: memoryLogger(),
          scanIntervalMs: 50,
          pollIntervalMs: 5,
          rotatedIdleMs: 100,
        });
        pipeline.start();
        source.start();
        const lines = auditLines('f', 0, n);
        const offsets: number[] = [];
        let at = 0;
        for (const l of lines.split('\n').filter(Boolean)) {
          at += Buffer.byteLength(l) + 1;
          offsets.push(at);
        }
        // Acknowledged = the committed checkpoint: every line before it must be stored.
        const check = async () => {
          registry.markDirty();
          await registry.commit().catch(() => undefined);
          const cp = readFileSync(join(dir, 'run', 'checkpoints.json'), 'utf8');
          const offset = Number(/"offset":\s*(\d+)/.exec(cp)?.[1] ?? 0);
          const have = storedIds(store, 'f-');
          offsets.forEach((end, i) => {
            if (end <= offset) expect(have.has(`f-${i}`)).toBe(true);
          });
        };
        appendFileSync(file, lines.slice(0, lines.length / 2));
        await check();
        appendFileSync(file, lines.slice(lines.length / 2));
        await until(`${n} events`, () => storedIds(store, 'f-').size === n);
        await check();
        await source.stop();
        await pipeline.shutdown(2000);
        expect(storedIds(store, 'f-').size).toBe(n);
        rmSync(dir, { recursive: true, force: true });
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('webhook: every batch answered 200 is in the store; refused ones stored once when sent again', async () => {
    await fc.assert(
      fc.asyncProperty(schedule, fc.integer({ min: 1, max: 8 }), async (plan, batches) => {
        const store = new MemoryStore();
        store.failures = plan.map((p) => (p === 'fail' ? new Error('disk full') : undefined));
        const pipeline = pipelineFor(store);
        pipeline.start();
        const h = new WebhookHandler({
          config: {
            type: 'webhook',
            name: 'hook',
            listen: { host: '127.0.0.1', port: 0 },
            path: '/audit',
            source: 's',
            service: 'a',
            maxBodyBytes: 1 << 20,
          },
          prepare,
          tryOffer: (item: PipelineItem) => pipeline.tryOffer(item),
          log: memoryLogger(),
        });
        for (let b = 0; b < batches; b++) {
          const ids = Array.from({ length: 20 }, (_, i) => `w${b}-${i}`);
          const body = JSON.stringify({ kind: 'EventList', items: ids.map((id) => auditEvent(id)) });
          for (let attempt = 0; ; attempt++) {
            const res = await h.fetch(new Request('http://127.0.0.1/audit', { method: 'POST', body }));
            if (res.status === 200) {
              const have = storedIds(store, `w${b}-`);
              for (const id of ids) expect(have.has(id)).toBe(true);
              break;
            }
            expect([429, 503]).toContain(res.status);
            expect(attempt).toBeLessThan(100);
            await new Promise((r) => setTimeout(r, 5));
          }
        }
        await pipeline.shutdown(2000);
        expect(store.rows.size).toBe(batches * 20);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('stop ends within its deadline while the store fails for good', async () => {
    const store = new MemoryStore();
    store.failWith = new Error('disk full');
    const pipeline = pipelineFor(store);
    pipeline.start();
    const item: PipelineItem = {
      source: 'x',
      events: [Buffer.from(JSON.stringify(auditEvent('stuck')))],
      deadLetters: [],
      retry: true,
    };
    await pipeline.offer(item);
    await pipeline.shutdown(200);
    expect(store.rows.size).toBe(0);
  });

  it('a full disk under dead letters and checkpoints: nothing acknowledged early, status says so, all lands after', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kaudit-fault-'));
    dirs.push(dir);
    mkdirSync(join(dir, 'logs'));
    const file = join(dir, 'logs', 'audit.log');
    // Two disks: the checkpoint's gets room first, the dead letter's later.
    let full = true;
    let checkpointFull = true;
    const disk = fullDisk(() => full);
    const checkpointDisk = fullDisk(() => checkpointFull);
    const { config, diagnostics } = parseAgentConfig(
      `cluster: fault\nrun_path: ${join(dir, 'run')}\ndata: ${join(dir, 'data')}\nlogs:\n  - type: file\n    path: ${file}\n`,
      { file: 'k.yaml' },
    );
    expect(diagnostics).toEqual([]);
    if (config === undefined) throw new Error('no config');
    const store = new MemoryStore();
    const deadLetter = new DeadLetter(join(dir, 'data'), { openFile: disk.openFile });
    const agent = new Agent({
      config,
      store,
      prepare,
      deadLetter,
      log: memoryLogger(),
      version: 'test',
      scanIntervalMs: 50,
      openFile: checkpointDisk.openFile,
    });
    const good = auditLines('d', 0, 40);
    const bad = 'this line is not JSON\n';
    writeFileSync(file, good + bad + auditLines('d', 40, 80));
    const badEnd = Buffer.byteLength(good + bad);
    await agent.start();
    try {
      await until('both errors in status', () => {
        const p = agent.pipeline.stats();
        return p.deadLetterError !== undefined && agent.registry.lastError !== undefined;
      });
      await until('the events stored', () => storedIds(store, 'd-').size === 80);
      const s = await agent.status();
      expect(s.pipeline.deadLetterError).toMatch(/ENOSPC/);
      expect(s.checkpoints).toMatchObject({ status: 'Error', error: expect.stringMatching(/ENOSPC/) });
      // The bad line's record is not on disk: no checkpoint may pass it, even once the checkpoint
      // file can be written.
      checkpointFull = false;
      await until('a checkpoint committed', () => agent.registry.lastCommitAt !== undefined);
      agent.registry.markDirty();
      await agent.registry.commit();
      const held = Number(/"offset":\s*(\d+)/.exec(readFileSync(agent.registry.path, 'utf8'))?.[1] ?? -1);
      expect(held).toBeGreaterThanOrEqual(0);
      expect(held).toBeLessThanOrEqual(badEnd - Buffer.byteLength(bad));
      expect(agent.pipeline.stats().deadLetterError).toMatch(/ENOSPC/);
      expect(disk.failed()).toBeGreaterThan(0);
      full = false;
      await until('the dead letter written', () => existsSync(deadLetter.path));
      await until('the checkpoint at the end', () => {
        if (!existsSync(agent.registry.path)) return false;
        const cp = readFileSync(agent.registry.path, 'utf8');
        return (
          Number(/"offset":\s*(\d+)/.exec(cp)?.[1] ?? 0) ===
          Buffer.byteLength(good + bad) + Buffer.byteLength(auditLines('d', 40, 80))
        );
      });
      const letters = readFileSync(deadLetter.path, 'utf8').split('\n').filter(Boolean);
      expect(letters).toHaveLength(1);
      expect(JSON.parse(letters[0] ?? '{}')).toMatchObject({ offset: badEnd - Buffer.byteLength(bad) });
      await until('the errors cleared', () => agent.pipeline.stats().deadLetterError === undefined);
      expect((await agent.status()).checkpoints.status).toBe('OK');
    } finally {
      full = false;
      await agent.stop();
      await deadLetter.close();
    }
    expect(storedIds(store, 'd-').size).toBe(80);
  });

  it('a full disk under dead letters: the webhook answers 503 until they can be written, then 200, each once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kaudit-fault-'));
    dirs.push(dir);
    let full = true;
    const deadLetter = new DeadLetter(dir, { openFile: fullDisk(() => full).openFile });
    const store = new MemoryStore();
    const pipeline = new Pipeline({
      store,
      cluster: 'fault',
      queueEvents: 2000,
      queueBytes: 16 << 20,
      batchEvents: 50,
      flushIntervalMs: 5,
      deadLetter,
      log: memoryLogger(),
    });
    pipeline.start();
    const h = new WebhookHandler({
      config: {
        type: 'webhook',
        name: 'hook',
        listen: { host: '127.0.0.1', port: 0 },
        path: '/audit',
        source: 's',
        service: 'a',
        maxBodyBytes: 1 << 20,
      },
      prepare,
      tryOffer: (item: PipelineItem) => pipeline.tryOffer(item),
      log: memoryLogger(),
    });
    const body = JSON.stringify({
      kind: 'EventList',
      items: [auditEvent('h-1'), { not: 'an event' }, auditEvent('h-2')],
    });
    const send = () => h.fetch(new Request('http://127.0.0.1/audit', { method: 'POST', body }));
    const first = await send();
    expect(first.status).toBe(503);
    expect(((await first.json()) as { error: string }).error).toMatch(
      /dead letters cannot be written: ENOSPC/,
    );
    expect(pipeline.stats().deadLetterError).toMatch(/ENOSPC/);
    full = false;
    expect((await send()).status).toBe(200);
    await pipeline.shutdown(2000);
    await deadLetter.close();
    expect(storedIds(store, 'h-')).toEqual(new Set(['h-1', 'h-2']));
    expect(readFileSync(deadLetter.path, 'utf8').split('\n').filter(Boolean)).toHaveLength(1);
    expect(pipeline.stats().deadLetterError).toBeUndefined();
  });

  it('a store failing with ENOSPC on the Nth write: status shows it, the batch is written again, stop ends', async () => {
    const store = new MemoryStore();
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    store.failures = [undefined, enospc, enospc];
    const pipeline = pipelineFor(store);
    pipeline.start();
    const done: (Error | undefined)[] = [];
    for (let b = 0; b < 3; b++) {
      await pipeline.offer({
        source: 'f',
        events: Array.from({ length: 10 }, (_, i) => Buffer.from(JSON.stringify(auditEvent(`s${b}-${i}`)))),
        deadLetters: [],
        retry: true,
        done: (err) => done.push(err),
      });
      await until(
        `batch ${b} written or failing`,
        () => done.length > b || pipeline.stats().storeError !== undefined,
      );
      if (pipeline.stats().storeError !== undefined) expect(pipeline.stats().storeError).toMatch(/ENOSPC/);
    }
    await until('every batch acknowledged', () => done.length === 3);
    expect(done).toEqual([undefined, undefined, undefined]);
    expect(store.rows.size).toBe(30);
    expect(pipeline.stats().storeError).toBeUndefined();
    await pipeline.shutdown(200);
  });
});
