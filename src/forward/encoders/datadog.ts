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

/** The fields before `message`, as JSON text without the closing brace. */
function entryPrefix(opts: DatadogOptions, cluster: string): string {
  return JSON.stringify({
    ddsource: opts.source ?? 'kubernetes.audit',
    service: opts.service ?? 'audit',
    ...(opts.hostname === undefined ? {} : { hostname: opts.hostname }),
    ddtags: [`kube_cluster_name:${cluster}`, ...(opts.tags ?? [])].join(','),
  }).slice(0, -1);
}

export function datadogEncoder(opts: DatadogOptions): Encoder {
  const prefixes = new Map<string, string>();
  return {
    encode(events: readonly OutgoingEvent[]): Payload[] {
      let truncated = 0;
      const entries = events.map((ev) => {
        let message = ev.json;
        // A UTF-8 byte per UTF-16 unit at most three: only a long message is measured.
        if (
          message.length * 3 > DATADOG_MAX_ENTRY_BYTES - 1024 &&
          Buffer.byteLength(message) > DATADOG_MAX_ENTRY_BYTES - 1024
        ) {
          message = JSON.stringify(withoutBodies(ev.event));
          truncated++;
        }
        let prefix = prefixes.get(ev.cluster);
        if (prefix === undefined) {
          prefix = entryPrefix(opts, ev.cluster);
          prefixes.set(ev.cluster, prefix);
        }
        // The entry's other fields once per cluster; only the message is escaped per event.
        return { ev, text: `${prefix},"message":${JSON.stringify(message)}}` };
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
