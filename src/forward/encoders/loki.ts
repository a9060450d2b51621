import { type OutgoingEvent, timeNs, verbClass } from '../event-fields.js';
import { chunk, type Encoder, gzipFast, type Payload } from './encoder.js';

export interface LokiOptions {
  /** Basic auth user (Grafana Cloud) or tenant id header. */
  tenant?: string;
  username?: string;
  password?: string;
  maxBytes?: number;
}

/**
 * Grafana Loki's push API (`POST /loki/api/v1/push`, JSON): few labels of low cardinality (cluster,
 * source, verb class), the rest as structured metadata, the event as the line. Entries of a stream
 * go in time order, as Loki wants.
 */
export function lokiEncoder(opts: LokiOptions = {}): Encoder {
  return {
    encode(events: readonly OutgoingEvent[]): Payload[] {
      return chunk(events, 5000, opts.maxBytes ?? 4 << 20, (e) => e.json.length + 256).map((run) => {
        const streams = new Map<
          string,
          { stream: Record<string, string>; values: [string, string, Record<string, string>][] }
        >();
        for (const ev of run) {
          const labels = {
            cluster: ev.cluster,
            source: 'kubernetes.audit',
            verb_class: verbClass(ev.event.verb),
          };
          const key = JSON.stringify(labels);
          let s = streams.get(key);
          if (s === undefined) {
            s = { stream: labels, values: [] };
            streams.set(key, s);
          }
          const meta: Record<string, string> = {
            audit_id: ev.event.auditID,
            verb: ev.event.verb,
            stage: ev.event.stage,
          };
          const user = ev.event.user?.username;
          if (user !== undefined) meta.user = user;
          const ref = ev.event.objectRef;
          if (ref?.namespace !== undefined) meta.namespace = ref.namespace;
          if (ref?.resource !== undefined) meta.resource = ref.resource;
          if (ev.event.responseStatus?.code !== undefined) meta.code = String(ev.event.responseStatus.code);
          s.values.push([timeNs(ev.event), ev.json, meta]);
        }
        for (const s of streams.values())
          s.values.sort((a, b) => a[0].length - b[0].length || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
        const headers: Record<string, string> = {
          'content-type': 'application/json',
          'content-encoding': 'gzip',
        };
        if (opts.tenant !== undefined) headers['x-scope-orgid'] = opts.tenant;
        if (opts.username !== undefined)
          headers.authorization = `Basic ${Buffer.from(`${opts.username}:${opts.password ?? ''}`).toString('base64')}`;
        return {
          body: gzipFast(JSON.stringify({ streams: [...streams.values()] })),
          headers,
          events: run,
          truncated: 0,
        };
      });
    },
  };
}
