/**
 * The encode pool's worker threads (run from the build, where the worker's compiled file exists)
 * give the same rows as encoding in the calling thread, rejects and repeats included.
 */
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { prepareLine } from '../../src/model/prepare.js';
import { generateLines } from '../../src/simulate/generator.js';
import type { copyEvents } from '../../src/store/clickhouse/encode-pool.js';
import { type EncodedBatch, encodeBatch } from '../../src/store/clickhouse/event-row.js';
import { buildOnce, ROOT } from '../fixtures/agent/harness.js';

interface BuiltPool {
  threads: number;
  copy(events: readonly Buffer[]): unknown;
  encode(copy: unknown, cluster: string, ingestedUs: number): Promise<EncodedBatch>;
  recycle(rows: Uint8Array): void;
  close(): Promise<void>;
}

function simulated(seed: number, count: number): Buffer[] {
  const events: Buffer[] = [];
  for (const line of generateLines({ seed, count })) events.push(...prepareLine(Buffer.from(line)).events);
  return events;
}

describe('encode pool', () => {
  beforeAll(buildOnce, 120_000);

  it('encodes in a worker thread exactly as in the calling thread', async () => {
    const events = simulated(5, 3000);
    events.splice(10, 0, Buffer.from('not json'), Buffer.from([0xff, 0xfe]), events[3] as Buffer);
    const built = (await import(pathToFileURL(`${ROOT}dist/store/clickhouse/encode-pool.js`).href)) as {
      EncodePool: new (size?: number) => BuiltPool;
      copyEvents: typeof copyEvents;
    };
    const pool = new built.EncodePool(1);
    try {
      expect(pool.threads).toBe(1);
      const inWorker = await pool.encode(built.copyEvents(events), 'c', 1_000_000);
      const inThread = encodeBatch(events, 'c', 1_000_000);
      expect(inWorker.rejected.map((r) => [r.index, r.reason, Buffer.from(r.data).toString('hex')])).toEqual(
        inThread.rejected.map((r) => [r.index, r.reason, r.data.toString('hex')]),
      );
      expect(inWorker.repeats).toEqual([12]);
      // The rows' bytes compared as bytes: a deep comparison of megabytes element by element is slow.
      expect(Buffer.from(inWorker.data).equals(Buffer.from(inThread.data))).toBe(true);
      expect(inWorker.data.length).toBeGreaterThan(events.length * 500);
      const rest = (b: EncodedBatch) => ({ ...b, data: null, rejected: [] });
      expect(rest(inWorker)).toEqual(rest(inThread));
    } finally {
      await pool.close();
    }
  });

  it('writes later batches over the memory of earlier ones without changing a row', async () => {
    const built = (await import(pathToFileURL(`${ROOT}dist/store/clickhouse/encode-pool.js`).href)) as {
      EncodePool: new (size?: number) => BuiltPool;
    };
    // Batches of falling size, so that each fits in the buffers the one before leaves.
    const batches = [simulated(6, 2000), simulated(7, 1500), simulated(8, 1000)];
    for (const threads of [1, 0]) {
      const pool = new built.EncodePool(threads);
      try {
        let before = -1;
        for (const events of batches) {
          const got = await pool.encode(pool.copy(events), 'c', 1_000_000);
          const want = encodeBatch(events, 'c', 1_000_000);
          expect(Buffer.from(got.data).equals(Buffer.from(want.data))).toBe(true);
          expect(got.auditIds).toEqual(want.auditIds);
          // Reused: the rows went into the memory of the batch recycled before (not a new buffer).
          if (before >= 0) expect(got.data.buffer.byteLength).toBe(before);
          before = got.data.buffer.byteLength;
          pool.recycle(got.data);
        }
      } finally {
        await pool.close();
      }
    }
  });
});
