import type { OutgoingEvent } from '../event-fields.js';
import { timeNs } from '../event-fields.js';
import { chunk, type Encoder, gzipFast, type Payload } from './encoder.js';
import { ProtoMessage } from './protobuf-writer.js';

type AnyValue = { stringValue: string } | { intValue: string };
interface KeyValue {
  key: string;
  value: AnyValue;
}

const str = (key: string, v: string | undefined): KeyValue[] =>
  v === undefined ? [] : [{ key, value: { stringValue: v } }];

export type OtlpEncoding = 'protobuf' | 'json';

interface Record_ {
  timeUnixNano: string;
  body: string;
  attributes: KeyValue[];
}

function attributesOf(ev: OutgoingEvent): KeyValue[] {
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
    attributes.push({ key: 'http.response.status_code', value: { intValue: String(e.responseStatus.code) } });
  // OpenTelemetry semconv, general log attributes: records with the same log.record.uid are
  // duplicates and may be removed. An event is one per (cluster, auditID, stage), so a record sent
  // again after a restart carries the same uid (docs/forward.md: what each platform does with it).
  attributes.push(...str('log.record.uid', `${ev.cluster}/${e.auditID}/${e.stage}`));
  return attributes;
}

const SEVERITY_INFO = 9;

// Field numbers of opentelemetry-proto's collector/logs/v1, logs/v1, common/v1 and resource/v1.
function anyValue(v: AnyValue): ProtoMessage {
  const m = new ProtoMessage();
  // AnyValue: string_value = 1, int_value = 3 (int64; status codes are never negative).
  return 'stringValue' in v ? m.string(1, v.stringValue) : m.varint(3, Number(v.intValue));
}

function keyValues(m: ProtoMessage, field: number, kvs: readonly KeyValue[]): void {
  // KeyValue: key = 1, value = 2.
  for (const kv of kvs) m.message(field, new ProtoMessage().string(1, kv.key).message(2, anyValue(kv.value)));
}

function protobufBody(byCluster: Map<string, Record_[]>, observedNs: string): Buffer {
  const request = new ProtoMessage();
  for (const [cluster, records] of byCluster) {
    const resource = new ProtoMessage();
    keyValues(resource, 1, resourceAttributes(cluster));
    const scope = new ProtoMessage().message(1, new ProtoMessage().string(1, 'kaudit'));
    for (const r of records) {
      // LogRecord: time_unix_nano = 1 (fixed64), severity_number = 2, severity_text = 3, body = 5,
      // attributes = 6, observed_time_unix_nano = 11 (fixed64).
      const log = new ProtoMessage()
        .fixed64(1, r.timeUnixNano)
        .varint(2, SEVERITY_INFO)
        .string(3, 'INFO')
        .message(5, anyValue({ stringValue: r.body }));
      keyValues(log, 6, r.attributes);
      log.fixed64(11, observedNs);
      // ScopeLogs: scope = 1, log_records = 2.
      scope.message(2, log);
    }
    // ResourceLogs: resource = 1, scope_logs = 2; ExportLogsServiceRequest: resource_logs = 1.
    request.message(1, new ProtoMessage().message(1, resource).message(2, scope));
  }
  return request.toBuffer();
}

function jsonBody(byCluster: Map<string, Record_[]>, observedNs: string): Promise<Buffer> {
  const body = {
    resourceLogs: [...byCluster.entries()].map(([cluster, records]) => ({
      resource: { attributes: resourceAttributes(cluster) },
      scopeLogs: [
        {
          scope: { name: 'kaudit' },
          logRecords: records.map((r) => ({
            timeUnixNano: r.timeUnixNano,
            observedTimeUnixNano: observedNs,
            severityNumber: SEVERITY_INFO,
            severityText: 'INFO',
            body: { stringValue: r.body },
            attributes: r.attributes,
          })),
        },
      ],
    })),
  };
  return gzipFast(JSON.stringify(body));
}

function resourceAttributes(cluster: string): KeyValue[] {
  return [...str('k8s.cluster.name', cluster), ...str('service.name', 'kube-apiserver')];
}

/**
 * OpenTelemetry logs over OTLP/HTTP (`POST /v1/logs`), protobuf (the default, as the OTLP
 * specification's exporters default to) or JSON: one LogRecord per event, the event as the body,
 * attributes named after the semantic conventions for Kubernetes (`k8s.namespace.name`,
 * `k8s.cluster.name` on the resource) and HTTP (`http.response.status_code`, `url.path`,
 * `user_agent.original`, `client.address`), and kaudit's own under `k8s.audit.*` where none exists.
 */
export function otlpEncoder(
  opts: { headers?: Record<string, string>; encoding?: OtlpEncoding } = {},
): Encoder {
  const protobuf = (opts.encoding ?? 'protobuf') === 'protobuf';
  return {
    encode(events: readonly OutgoingEvent[]): Payload[] {
      return chunk(events, 2000, 4 << 20, (e) => e.json.length + 512).map((run) => {
        const byCluster = new Map<string, Record_[]>();
        for (const ev of run) {
          const list = byCluster.get(ev.cluster) ?? [];
          list.push({ timeUnixNano: timeNs(ev.event), body: ev.json, attributes: attributesOf(ev) });
          byCluster.set(ev.cluster, list);
        }
        const observedNs = `${Date.now()}000000`;
        return {
          body: protobuf ? gzipFast(protobufBody(byCluster, observedNs)) : jsonBody(byCluster, observedNs),
          headers: {
            'content-type': protobuf ? 'application/x-protobuf' : 'application/json',
            'content-encoding': 'gzip',
            ...opts.headers,
          },
          events: run,
          truncated: 0,
        };
      });
    },
  };
}
