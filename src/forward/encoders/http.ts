import { gzipSync } from 'node:zlib';
import type { OutgoingEvent } from '../event-fields.js';
import { chunk, type Encoder, type Payload } from './encoder.js';

export interface HttpOptions {
  /** Sent as `Authorization: Bearer`, when set. */
  token?: string;
  maxEvents?: number;
  maxBytes?: number;
  gzip?: boolean;
}

/** NDJSON POST, one event a line with its cluster: for any collector that takes JSON lines. */
export function httpEncoder(opts: HttpOptions = {}): Encoder {
  return {
    encode(events: readonly OutgoingEvent[]): Payload[] {
      const lines = events.map((ev) => ({
        ev,
        line: `${JSON.stringify({ cluster: ev.cluster, event: ev.event })}\n`,
      }));
      return chunk(lines, opts.maxEvents ?? 5000, opts.maxBytes ?? 8 << 20, (l) =>
        Buffer.byteLength(l.line),
      ).map((run) => {
        const text = run.map((l) => l.line).join('');
        const headers: Record<string, string> = { 'content-type': 'application/x-ndjson' };
        if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
        if (opts.gzip !== false) headers['content-encoding'] = 'gzip';
        return {
          body: opts.gzip === false ? Buffer.from(text) : gzipSync(text),
          headers,
          events: run.map((l) => l.ev),
          truncated: 0,
        };
      });
    },
  };
}
