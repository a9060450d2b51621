import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
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

const gzipAsync = promisify(gzip);

/**
 * gzip at level 1: over audit events it sends ~10% more bytes than the default level 6 and takes a
 * third of the time, which is what bounds a forwarder (bench:forward). Compressed on libuv's thread
 * pool, not on the main thread that also reads and stores the events (bench:agent), and the
 * payloads of one batch side by side.
 */
export function gzipFast(text: string | Buffer): Promise<Buffer> {
  return gzipAsync(text, { level: 1 });
}
