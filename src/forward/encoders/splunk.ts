import { type OutgoingEvent, timeMs } from '../event-fields.js';
import { chunk, type Encoder, gzipFast, type Payload } from './encoder.js';

export interface SplunkOptions {
  token: string;
  sourcetype?: string;
  index?: string;
  source?: string;
  /** The HEC channel (a GUID); with indexer acknowledgement on, acks are asked for on it. */
  channel?: string;
}

/**
 * Splunk HTTP Event Collector (`POST /services/collector/event`): JSON event objects one after
 * another, `Authorization: Splunk <token>`, time in epoch seconds.
 */
export function splunkEncoder(opts: SplunkOptions): Encoder {
  return {
    encode(events: readonly OutgoingEvent[]): Payload[] {
      const items = events.map((ev) => {
        const o: Record<string, unknown> = {
          time: timeMs(ev.event) / 1000,
          host: ev.cluster,
          source: opts.source ?? 'kubernetes.audit',
          sourcetype: opts.sourcetype ?? 'kube:apiserver:audit',
          event: ev.event,
        };
        if (opts.index !== undefined) o.index = opts.index;
        return { ev, text: JSON.stringify(o) };
      });
      return chunk(items, 5000, 800_000, (i) => Buffer.byteLength(i.text)).map((run) => {
        const headers: Record<string, string> = {
          authorization: `Splunk ${opts.token}`,
          'content-type': 'application/json',
          'content-encoding': 'gzip',
        };
        if (opts.channel !== undefined) headers['x-splunk-request-channel'] = opts.channel;
        return {
          body: gzipFast(run.map((i) => i.text).join('\n')),
          headers,
          events: run.map((i) => i.ev),
          truncated: 0,
        };
      });
    },
  };
}
