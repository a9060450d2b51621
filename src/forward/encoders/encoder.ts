import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { gzipSync } from 'node:zlib';
import type { OutgoingEvent } from '../event-fields.js';

/** One HTTP request's worth of events. */
export interface Payload {
  /** The request body; compressed off the main thread while the caller goes on. */
  body: Buffer | Promise<Buffer>;
  headers: Record<string, string>;
  events: OutgoingEvent[];
  /** Events whose bodies were dropped to fit the platform's size per entry. */
  truncated: number;
}

/** Turns events into the requests a platform's API documents, within its limits. */
export interface Encoder {
  /** Splits and encodes; each payload within the platform's limits. */
  encode(events: readonly OutgoingEvent[]): Payload[];
}

/**
 * Cuts events into runs within `maxEvents` and `maxBytes`, measuring each with `size`; one event
 * larger than `maxBytes` alone is a run of its own (the caller shrinks it first).
 */
export function chunk<T>(
  items: readonly T[],
  maxEvents: number,
  maxBytes: number,
  size: (x: T) => number,
): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const x of items) {
    const n = size(x);
    if (cur.length > 0 && (cur.length >= maxEvents || bytes + n > maxBytes)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(x);
    bytes += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

const WORKER = new URL('./gzip-worker.js', import.meta.url);

interface Compressor {
  worker: Worker;
  pending: Map<number, { resolve: (b: Buffer) => void; reject: (e: Error) => void }>;
  seq: number;
}

let compressor: Compressor | undefined | null;

/** The compression thread, started on first use; null where its compiled file is absent (tests). */
function compressorThread(): Compressor | null {
  if (compressor !== undefined) return compressor;
  if (!existsSync(fileURLToPath(WORKER))) {
    compressor = null;
    return null;
  }
  const worker = new Worker(WORKER);
  // Never what keeps a process alive.
  worker.unref();
  const c: Compressor = { worker, pending: new Map(), seq: 0 };
  worker.on('message', (m: { id: number; body?: Uint8Array; error?: string }) => {
    const p = c.pending.get(m.id);
    c.pending.delete(m.id);
    if (m.body !== undefined) p?.resolve(Buffer.from(m.body.buffer, m.body.byteOffset, m.body.length));
    else p?.reject(new Error(`gzip: ${m.error ?? 'failed'}`));
  });
  worker.on('error', (err) => {
    for (const p of c.pending.values()) p.reject(err);
    c.pending.clear();
    compressor = undefined;
  });
  compressor = c;
  return c;
}

/**
 * gzip at level 1: over audit events it sends ~10% more bytes than the default level 6 and takes a
 * third of the time, which is what bounds a forwarder (bench:forward). Compressed in a thread of its
 * own, not on the main thread that also reads and stores the events, nor on libuv's pool, whose
 * threads the embedded store's imports and queries hold (bench:agent); in the calling thread where the worker's
 * compiled file is absent (tests running the TypeScript sources).
 */
export function gzipFast(text: string | Buffer): Promise<Buffer> {
  // A Buffer passed in is handed over to the thread: the caller must not use it again.
  const c = compressorThread();
  if (c === null) return Promise.resolve(gzipSync(text, { level: 1 }));
  const id = c.seq++;
  return new Promise<Buffer>((resolve, reject) => {
    c.pending.set(id, { resolve, reject });
    // A pending request keeps the process up until it is answered.
    if (c.pending.size === 1) c.worker.ref();
    // Handed over as bytes whose memory moves to the thread: a string is copied by the structured
    // clone on both sides (a fifth of a datadog sink's main-thread CPU in bench:forward).
    const bytes = typeof text === 'string' ? Buffer.from(text) : text;
    const own =
      bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length ? bytes : new Uint8Array(bytes);
    c.worker.postMessage({ id, data: own }, [own.buffer as ArrayBuffer]);
  }).finally(() => {
    if (c.pending.size === 0) c.worker.unref();
  });
}
