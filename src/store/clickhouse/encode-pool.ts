/**
 * Encoding a batch (one JSON.parse per event, since 18.16 cannot extract JSON: event-row.ts) is
 * most of the CPU an ingest into ClickHouse costs on the client. The pool does it in worker threads, beside the
 * main thread that reads the sources and talks to the server. Where the worker's compiled file is
 * absent (tests running the TypeScript sources) batches are encoded in the calling thread: the same
 * function, the same result.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { EncodeRequest } from './encode-worker.js';
import { type EncodedBatch, encodeBatch } from './event-row.js';

const WORKER = new URL('./encode-worker.js', import.meta.url);

interface Pending {
  resolve: (b: EncodedBatch) => void;
  reject: (e: Error) => void;
}

interface PooledWorker {
  worker: Worker;
  pending: Map<number, Pending>;
}

/** A batch's events in one buffer: event i is data[offsets[i], offsets[i + 1]). */
export interface CopiedEvents {
  data: SharedArrayBuffer;
  offsets: Float64Array;
}

/**
 * The store's own copy of a batch (the caller may reuse its buffers at once), in one allocation.
 * Shared memory: a worker reads it where it is, and the store keeps it to encode the batch itself
 * should the worker fail, without a second copy of ~75 MB per batch.
 */
export function copyEvents(events: readonly Buffer[]): CopiedEvents {
  const offsets = new Float64Array(events.length + 1);
  let bytes = 0;
  events.forEach((e, i) => {
    offsets[i] = bytes;
    bytes += e.length;
  });
  offsets[events.length] = bytes;
  const data = new SharedArrayBuffer(bytes);
  const view = new Uint8Array(data);
  events.forEach((e, i) => {
    view.set(e, offsets[i] as number);
  });
  return { data, offsets };
}

export function eventsOf(copy: CopiedEvents): Buffer[] {
  const events: Buffer[] = [];
  for (let i = 0; i + 1 < copy.offsets.length; i++) {
    const from = copy.offsets[i] as number;
    events.push(Buffer.from(copy.data, from, (copy.offsets[i + 1] as number) - from));
  }
  return events;
}

export class EncodePool {
  private readonly workers: PooledWorker[] = [];
  private seq = 0;
  private readonly size: number;

  /** `size` worker threads (default: the cores but one, at most 2); 0 encodes in the calling thread. */
  constructor(size?: number) {
    const usable = existsSync(fileURLToPath(WORKER));
    this.size = usable ? (size ?? Math.max(1, Math.min(2, availableParallelism() - 1))) : 0;
  }

  get threads(): number {
    return this.size;
  }

  /** Encodes a batch copied by copyEvents(); after a failure of the worker, in the calling thread. */
  encode(copy: CopiedEvents, cluster: string, ingestedUs: number): Promise<EncodedBatch> {
    if (this.size === 0)
      return Promise.resolve().then(() => encodeBatch(eventsOf(copy), cluster, ingestedUs));
    const w = this.pick();
    const id = this.seq++;
    // Shared, not copied: only the encoding thread reads it, and the caller keeps it until encoded.
    const request: EncodeRequest = { id, data: copy.data, offsets: copy.offsets, cluster, ingestedUs };
    return new Promise<EncodedBatch>((resolve, reject) => {
      w.pending.set(id, { resolve, reject });
      // Referenced while it has work: an idle pool must not keep the process alive, a busy one must.
      w.worker.ref();
      w.worker.postMessage(request);
    }).catch(() => encodeBatch(eventsOf(copy), cluster, ingestedUs));
  }

  private pick(): PooledWorker {
    if (this.workers.length < this.size) {
      const pooled: PooledWorker = { worker: new Worker(WORKER), pending: new Map() };
      pooled.worker.unref();
      pooled.worker.on('message', (m: { id: number; batch?: EncodedBatch; error?: string }) => {
        const p = pooled.pending.get(m.id);
        pooled.pending.delete(m.id);
        if (pooled.pending.size === 0) pooled.worker.unref();
        if (p === undefined) return;
        if (m.batch === undefined) p.reject(new Error(`encoding a batch failed: ${m.error ?? 'unknown'}`));
        else {
          // Buffers arrive as plain Uint8Arrays.
          for (const r of m.batch.rejected)
            r.data = Buffer.from(r.data.buffer, r.data.byteOffset, r.data.length);
          const d = m.batch.data;
          m.batch.data = Buffer.from(d.buffer, d.byteOffset, d.length);
          p.resolve(m.batch);
        }
      });
      const fail = (err: Error) => {
        for (const p of pooled.pending.values()) p.reject(err);
        pooled.pending.clear();
        const i = this.workers.indexOf(pooled);
        if (i >= 0) this.workers.splice(i, 1);
      };
      pooled.worker.on('error', fail);
      pooled.worker.on('exit', (code) => fail(new Error(`encode worker exited (${code})`)));
      this.workers.push(pooled);
      return pooled;
    }
    return this.workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.splice(0).map((w) => w.worker.terminate()));
  }
}
