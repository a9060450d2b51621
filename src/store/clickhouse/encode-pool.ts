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
export function copyEvents(events: readonly Buffer[], spare?: SharedArrayBuffer): CopiedEvents {
  const offsets = new Float64Array(events.length + 1);
  let bytes = 0;
  events.forEach((e, i) => {
    offsets[i] = bytes;
    bytes += e.length;
  });
  offsets[events.length] = bytes;
  // A spare of an earlier batch when it is large enough: fresh memory costs page faults on the
  // first write (~0.7 us per event); a new one gets room to be reused by batches a little larger.
  const data =
    spare !== undefined && spare.byteLength >= bytes ? spare : new SharedArrayBuffer(Math.ceil(bytes * 1.25));
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

/** Buffers kept for reuse, of each kind: one per batch encoded and one inserted at a time. */
const MAX_SPARES = 2;

export class EncodePool {
  private readonly workers: PooledWorker[] = [];
  private seq = 0;
  private readonly size: number;
  /** Copies of batches already encoded, and rows already inserted, to be written over. */
  private readonly spareCopies: SharedArrayBuffer[] = [];
  private readonly spareRows: ArrayBuffer[] = [];

  /** `size` worker threads (default: the cores but one, at most 2); 0 encodes in the calling thread. */
  constructor(size?: number) {
    const usable = existsSync(fileURLToPath(WORKER));
    this.size = usable ? (size ?? Math.max(1, Math.min(2, availableParallelism() - 1))) : 0;
  }

  get threads(): number {
    return this.size;
  }

  /** The store's copy of a batch (copyEvents), in the memory of an encoded one where it fits. */
  copy(events: readonly Buffer[]): CopiedEvents {
    return copyEvents(events, this.spareCopies.pop());
  }

  /**
   * Encodes a batch copied by copy() or copyEvents(); after a failure of the worker, in the calling
   * thread. The copy is the pool's once encode() is called: it is reused when the batch is encoded.
   */
  encode(copy: CopiedEvents, cluster: string, ingestedUs: number): Promise<EncodedBatch> {
    const rows = this.spareRows.pop();
    let encoded: Promise<EncodedBatch>;
    if (this.size === 0)
      encoded = Promise.resolve().then(() => encodeBatch(eventsOf(copy), cluster, ingestedUs, rows));
    else {
      const w = this.pick();
      const id = this.seq++;
      // Shared, not copied: only the encoding thread reads it, and the caller keeps it until encoded.
      const request: EncodeRequest = {
        id,
        data: copy.data,
        offsets: copy.offsets,
        cluster,
        ingestedUs,
        ...(rows === undefined ? {} : { rows }),
      };
      encoded = new Promise<EncodedBatch>((resolve, reject) => {
        w.pending.set(id, { resolve, reject });
        // Referenced while it has work: an idle pool must not keep the process alive, a busy one must.
        w.worker.ref();
        w.worker.postMessage(request, rows === undefined ? [] : [rows]);
      }).catch(() => encodeBatch(eventsOf(copy), cluster, ingestedUs));
    }
    return encoded.then((batch) => {
      if (this.spareCopies.length < MAX_SPARES) this.spareCopies.push(copy.data);
      return batch;
    });
  }

  /**
   * The rows of a batch (EncodedBatch.data) that nothing reads any more (inserted): their memory
   * is written over by a later batch.
   */
  recycle(rows: Uint8Array): void {
    const b = rows.buffer;
    // Only a buffer of its own (encodeBatch allocates one per batch), never shared memory.
    if (b instanceof ArrayBuffer && b.byteLength >= 1 << 16 && this.spareRows.length < MAX_SPARES)
      this.spareRows.push(b);
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
