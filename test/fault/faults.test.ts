/**
 * Fault suite: a store that fails on chosen commits (before or after taking the rows), with a
 * file source and the webhook in front of the pipeline. Invariants: whatever was acknowledged (a
 * checkpoint committed, a 200 answered) is in the store; every event arrives exactly once in the
 * end; stop ends within its deadline even while the store keeps failing.
 */
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointRegistry } from '../../src/collect/checkpoint-registry.js';
import { FileSource } from '../../src/collect/file-source.js';
import { memoryLogger } from '../../src/collect/logger.js';
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
});
