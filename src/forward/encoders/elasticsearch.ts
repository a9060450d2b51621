import type { AuditEvent } from '../../model/event.js';
import type { OutgoingEvent } from '../event-fields.js';
import { chunk, type Encoder, gzipFast, type Payload } from './encoder.js';

export interface ElasticsearchOptions {
  /** A data stream; Elastic's Kubernetes integration writes `logs-kubernetes.audit_logs-default`. */
  index?: string;
  apiKey?: string;
  username?: string;
  password?: string;
}

/**
 * A document shaped like the `kubernetes.audit_logs` data stream of Elastic's Kubernetes
 * integration: the event under `kubernetes.audit`, `@timestamp`, and the ECS fields its dashboards
 * and rules read (`user.name`, `source.ip`, `user_agent.original`, `event.*`).
 */
export function elasticDocument(e: AuditEvent, cluster: string): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    '@timestamp': e.requestReceivedTimestamp,
    data_stream: { type: 'logs', dataset: 'kubernetes.audit_logs', namespace: 'default' },
    event: { dataset: 'kubernetes.audit_logs', kind: 'event', module: 'kubernetes', id: e.auditID },
    orchestrator: { cluster: { name: cluster }, type: 'kubernetes' },
    kubernetes: { audit: e },
  };
  if (e.user?.username !== undefined) doc.user = { name: e.user.username };
  if (e.sourceIPs?.[0] !== undefined) doc.source = { ip: e.sourceIPs[0] };
  if (e.userAgent !== undefined) doc.user_agent = { original: e.userAgent };
  return doc;
}

/**
 * The `_bulk` API into a data stream: `create` actions (data streams take no other), `_id` from the
 * cluster, auditID and stage, so a retry never indexes an event twice (Elasticsearch answers 409 for
 * the copy, which counts as delivered).
 */
export function elasticsearchEncoder(opts: ElasticsearchOptions = {}): Encoder {
  const index = opts.index ?? 'logs-kubernetes.audit_logs-default';
  return {
    encode(events: readonly OutgoingEvent[]): Payload[] {
      const lines = events.map((ev) => ({
        ev,
        text: `${JSON.stringify({ create: { _index: index, _id: `${ev.cluster}/${ev.event.auditID}/${ev.event.stage}` } })}\n${JSON.stringify(elasticDocument(ev.event, ev.cluster))}\n`,
      }));
      return chunk(lines, 5000, 10 << 20, (l) => Buffer.byteLength(l.text)).map((run) => {
        const headers: Record<string, string> = {
          'content-type': 'application/x-ndjson',
          'content-encoding': 'gzip',
        };
        if (opts.apiKey !== undefined) headers.authorization = `ApiKey ${opts.apiKey}`;
        else if (opts.username !== undefined)
          headers.authorization = `Basic ${Buffer.from(`${opts.username}:${opts.password ?? ''}`).toString('base64')}`;
        return {
          body: gzipFast(run.map((l) => l.text).join('')),
          headers,
          events: run.map((l) => l.ev),
          truncated: 0,
        };
      });
    },
  };
}
