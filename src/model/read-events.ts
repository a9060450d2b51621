/**
 * Reads whole audit-log files into v1 events (all formats of frame.ts and normalize.ts), for
 * tools that want parsed events rather than a store: policy simulate/generate, tests.
 * Malformed records are reported through `onMalformed`, never dropped in silence.
 */
import type { Readable } from 'node:stream';
import type { AuditEvent } from './event.js';
import { frameInput, oversizeReason, recordPlace } from './frame.js';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from './json.js';
import { normalizeBatch, problemText } from './normalize.js';
import { trimLine, truncateEvent } from './prepare.js';

export interface ReadEventsOptions {
  onMalformed?: (m: { offset: number; reason: string }) => void;
}

export interface ReadEvent {
  event: AuditEvent;
  /** Serialized size of the record the event came from (its share, for a list). */
  bytes: number;
}

export async function* readAuditEvents(
  input: string | Readable,
  options: ReadEventsOptions = {},
): AsyncGenerator<ReadEvent, void, undefined> {
  for await (const records of frameInput(input)) {
    for (const rec of records) {
      const place = recordPlace(rec);
      const oversize = oversizeReason(rec);
      if (oversize !== undefined) {
        options.onMalformed?.({ offset: rec.offset, reason: `${place}${oversize}` });
        continue;
      }
      const text = trimLine(rec.data);
      if (text.length === 0) continue;
      let value: unknown;
      try {
        value = JSON.parse(text.toString('utf8'));
      } catch (err) {
        options.onMalformed?.({ offset: rec.offset, reason: `${place}not JSON: ${(err as Error).message}` });
        continue;
      }
      // Items of a list stand alone: a bad one is reported, the others are read.
      const n = normalizeBatch(value);
      for (const p of n.problems)
        options.onMalformed?.({ offset: rec.offset, reason: `${place}${problemText(p)}` });
      const single = n.events.length === 1;
      for (const event of n.events) {
        if (jsonDepthExceeds(event)) {
          // As prepare.ts does: who did what is kept, bodies deeper than the limit are not.
          truncateEvent(event);
          if (jsonDepthExceeds(event)) {
            options.onMalformed?.({
              offset: rec.offset,
              reason: `nested deeper than ${MAX_JSON_DEPTH} levels`,
            });
            continue;
          }
        }
        yield { event, bytes: single ? text.length : Buffer.byteLength(JSON.stringify(event)) };
      }
    }
  }
}
