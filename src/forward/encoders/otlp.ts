import type { OutgoingEvent } from '../event-fields.js';
import { timeNs } from '../event-fields.js';
import { chunk, type Encoder, gzipFast, type Payload } from './encoder.js';

type AnyValue = { stringValue: string } | { intValue: string };
interface KeyValue {
  key: string;
  value: AnyValue;
}

const str = (key: string, v: string | undefined): KeyValue[] =>
  v === undefined ? [] : [{ key, value: { stringValue: v } }];

/**
 * OpenTelemetry logs over OTLP/HTTP with the JSON encoding (`POST /v1/logs`): one LogRecord per
 * event, the event as the body, attributes named after the semantic conventions for Kubernetes
 * (`k8s.namespace.name`, `k8s.cluster.name` on the resource) and HTTP (`http.request.method`,
 * `http.response.status_code`, `url.path`, `user_agent.original`, `client.address`), and kaudit's own
 * under `k8s.audit.*` where none exists.
 */
export function otlpEncoder(opts: { headers?: Record<string, string> } = {}): Encoder {
  return {
    encode(events: readonly OutgoingEvent[]): Payload[] {
      return chunk(events, 2000, 4 << 20, (e) => e.json.length + 512).map((run) => {
        const byCluster = new Map<string, unknown[]>();
        for (const ev of run) {
          const e = ev.event;
          const attributes: KeyValue[] = [
            ...str('k8s.audit.id', e.auditID),
            ...str('k8s.audit.stage', e.stage),
            ...str('k8s.audit.verb', e.verb),
            ...str('k8s.audit.level', e.level),
            ...str('k8s.namespace.name', e.objectRef?.namespace),
            ...str('k8s.audit.resource', e.objectRef?.resource),
            ...str('k8s.audit.user', e.user?.username),
            ...str('user_agent.original', e.userAgent),
            ...str('client.address', e.sourceIPs?.[0]),
            ...str('url.path', e.requestURI),
          ];
          if (e.responseStatus?.code !== undefined)
            attributes.push({
              key: 'http.response.status_code',
              value: { intValue: String(e.responseStatus.code) },
            });
          const record = {
            timeUnixNano: timeNs(e),
            observedTimeUnixNano: `${Date.now()}000000`,
            severityNumber: 9,
            severityText: 'INFO',
            body: { stringValue: ev.json },
            attributes,
          };
          const list = byCluster.get(ev.cluster) ?? [];
          list.push(record);
          byCluster.set(ev.cluster, list);
        }
        const body = {
          resourceLogs: [...byCluster.entries()].map(([cluster, logRecords]) => ({
            resource: {
              attributes: [...str('k8s.cluster.name', cluster), ...str('service.name', 'kube-apiserver')],
            },
            scopeLogs: [{ scope: { name: 'kaudit' }, logRecords }],
          })),
        };
        return {
          body: gzipFast(JSON.stringify(body)),
          headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', ...opts.headers },
          events: run,
          truncated: 0,
        };
      });
    },
  };
}
