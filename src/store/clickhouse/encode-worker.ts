/**
 * A worker thread of the encode pool (encode-pool.ts): a batch's events arrive as one buffer and
 * their offsets, and go back as rows (event-row.ts encodeBatch).
 */
import { parentPort } from 'node:worker_threads';
import { eventsOf } from './encode-pool.js';
import { encodeBatch } from './event-row.js';

export interface EncodeRequest {
  id: number;
  data: SharedArrayBuffer;
  /** Event i is data[offsets[i], offsets[i + 1]). */
  offsets: Float64Array;
  cluster: string;
  ingestedUs: number;
  /** A recycled buffer of an earlier batch's rows, handed over to be written into. */
  rows?: ArrayBuffer;
}

parentPort?.on('message', (m: EncodeRequest) => {
  try {
    const batch = encodeBatch(eventsOf(m), m.cluster, m.ingestedUs, m.rows);
    // The rows are handed over, not copied: the worker keeps nothing of a batch.
    // (Each is an ArrayBuffer of its own: event-row.ts allocates them per batch, none shared.)
    const own = [batch.data, batch.starts, batch.indexes, batch.tsUs].map((a) => a.buffer as ArrayBuffer);
    parentPort?.postMessage({ id: m.id, batch }, own);
  } catch (err) {
    parentPort?.postMessage({ id: m.id, error: err instanceof Error ? err.message : String(err) });
  }
});
