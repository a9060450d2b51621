import { type OutgoingEvent, withoutBodies } from '../event-fields.js';
import { chunk, type Encoder, gzipFast, type Payload } from './encoder.js';

// Datadog Logs intake v2 (docs: API reference, "Send logs"): per request at most 1,000 entries and
// 5 MB uncompressed; one log over 1 MB is truncated by the intake. kaudit sends such an event
// without its bodies instead, so it stays valid JSON, and counts it.
export const DATADOG_MAX_ENTRIES = 1000;
export const DATADOG_MAX_PAYLOAD_BYTES = 5_000_000;
export const DATADOG_MAX_ENTRY_BYTES = 1_000_000;

export interface DatadogOptions {
  apiKey: string;
  /** As in the seed's conf.yaml. */
  source?: string;
  service?: string;
  hostname?: string;
  tags?: string[];
}

interface Entry {
  ddsource: string;
  service: string;
  hostname?: string;
  ddtags: string;
  message: string;
}

export function datadogEncoder(opts: DatadogOptions): Encoder {
  return {
    encode(events: readonly OutgoingEvent[]): Payload[] {
      let truncated = 0;
      const entries = events.map((ev) => {
        let message = ev.json;
        if (Buffer.byteLength(message) > DATADOG_MAX_ENTRY_BYTES - 1024) {
          message = JSON.stringify(withoutBodies(ev.event));
          truncated++;
        }
        const entry: Entry = {
          ddsource: opts.source ?? 'kubernetes.audit',
          service: opts.service ?? 'audit',
          ddtags: [`kube_cluster_name:${ev.cluster}`, ...(opts.tags ?? [])].join(','),
          message,
        };
        if (opts.hostname !== undefined) entry.hostname = opts.hostname;
        return { ev, text: JSON.stringify(entry) };
      });
      return chunk(
        entries,
        DATADOG_MAX_ENTRIES,
        DATADOG_MAX_PAYLOAD_BYTES - 2,
        (e) => Buffer.byteLength(e.text) + 1,
      ).map((run, i) => ({
        body: gzipFast(`[${run.map((e) => e.text).join(',')}]`),
        headers: {
          'content-type': 'application/json',
          'content-encoding': 'gzip',
          'dd-api-key': opts.apiKey,
        },
        events: run.map((e) => e.ev),
        truncated: i === 0 ? truncated : 0,
      }));
    },
  };
}
