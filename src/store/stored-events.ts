import type { AuditEvent } from '../model/event.js';
import { normalizeValue } from '../model/normalize.js';
import type { EventReader } from './contract.js';
import type { EventFilter } from './query.js';

export interface StoredEvent {
  event: AuditEvent;
  /** The stored event's size in bytes (redacted, as stored). */
  bytes: number;
  cluster: string;
}

/**
 * Every stored event that matches, oldest first, decoded as the log readers decode files: for the
 * passes over whole events (policy simulation, detection backtests, RBAC from use), on any backend.
 */
export async function* storedEvents(
  reader: EventReader,
  filter: EventFilter = {},
): AsyncGenerator<StoredEvent, void, undefined> {
  for await (const page of reader.scan({ filter, columns: ['raw', 'cluster'] })) {
    for (const row of page) {
      if (typeof row.raw !== 'string') continue;
      let value: unknown;
      try {
        value = JSON.parse(row.raw);
      } catch {
        continue; // the store validated it as JSON on the way in
      }
      const n = normalizeValue(value);
      if (!n.ok) continue;
      const cluster = typeof row.cluster === 'string' ? row.cluster : '';
      for (const event of n.events) yield { event, bytes: Buffer.byteLength(row.raw), cluster };
    }
  }
}
