import type { OutgoingEvent } from '../event-fields.js';
import { chunk, type Encoder, gzipFast, type Payload } from './encoder.js';

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
        // The event's own JSON as stored (or as the policy cut it), not serialised again.
        line: `{"cluster":${JSON.stringify(ev.cluster)},"event":${ev.json}}\n`,
      }));
      return chunk(lines, opts.maxEvents ?? 5000, opts.maxBytes ?? 8 << 20, (l) =>
        Buffer.byteLength(l.line),
      ).map((run) => {
        const text = run.map((l) => l.line).join('');
        const headers: Record<string, string> = { 'content-type': 'application/x-ndjson' };
        if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
        if (opts.gzip !== false) headers['content-encoding'] = 'gzip';
        return {
          body: opts.gzip === false ? Buffer.from(text) : gzipFast(text),
          headers,
          events: run.map((l) => l.ev),
          truncated: 0,
        };
      });
    },
  };
}
