import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../model/event.js';
import { lazyEvent, timeNs } from '../event-fields.js';
import { otlpEncoder } from './otlp.js';

// OpenTelemetry's own generated definitions of opentelemetry-proto (protobufjs), as its exporters
// ship them: the oracle the hand-written encoder is checked against.
interface Decoder {
  decode(b: Uint8Array): unknown;
  toObject(m: unknown, o: { longs: StringConstructor; enums: NumberConstructor; defaults: boolean }): unknown;
}
const root = createRequire(import.meta.url)(
  '@opentelemetry/otlp-transformer/build/src/generated/root.js',
) as {
  opentelemetry: { proto: { collector: { logs: { v1: { ExportLogsServiceRequest: Decoder } } } } };
};
const Request = root.opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest;

interface Kv {
  key: string;
  value: { stringValue?: string; intValue?: string };
}
interface Decoded {
  resourceLogs: {
    resource: { attributes: Kv[] };
    scopeLogs: {
      scope: { name: string };
      logRecords: {
        timeUnixNano: string;
        observedTimeUnixNano: string;
        severityNumber: number;
        severityText: string;
        body: { stringValue: string };
        attributes: Kv[];
      }[];
    }[];
  }[];
}

function auditEvent(i: number, extra: Partial<AuditEvent> = {}): AuditEvent {
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'RequestResponse',
    auditID: `4d2ea1b7-3c1f-4a55-9e0c-${String(i).padStart(12, '0')}`,
    stage: 'ResponseComplete',
    requestURI: `/api/v1/namespaces/payments/secrets/db-${i}`,
    verb: 'get',
    user: { username: 'system:serviceaccount:payments:api', groups: ['system:serviceaccounts'] },
    sourceIPs: ['10.2.0.7', '10.2.0.8'],
    userAgent: 'kubectl/v1.31.0 (linux/amd64)',
    objectRef: { resource: 'secrets', namespace: 'payments', name: `db-${i}`, apiVersion: 'v1' },
    responseStatus: { metadata: {}, code: 403 },
    requestReceivedTimestamp: '2026-01-15T09:00:00.123456Z',
    stageTimestamp: '2026-01-15T09:00:00.125789Z',
    ...extra,
  } as AuditEvent;
}

const {
  objectRef: _o,
  userAgent: _u,
  responseStatus: _r,
  ...bare
} = auditEvent(2, { requestURI: '/healthz' });

const events = [
  lazyEvent(JSON.stringify(auditEvent(1)), 'prod'),
  // No objectRef, no user agent, no code: the attributes that have no value are left out.
  lazyEvent(JSON.stringify(bare), 'prod'),
  // Non-ASCII text and a body longer than a one-byte length (and than 16 KiB).
  lazyEvent(
    JSON.stringify(auditEvent(3, { annotations: { note: 'ユーザー ✓', big: 'x'.repeat(20_000) } })),
    'staging',
  ),
];

function decodeProtobuf(body: Buffer | undefined): Decoded {
  if (body === undefined) throw new Error('no payload');
  const message = Request.decode(gunzipSync(body));
  return Request.toObject(message, { longs: String, enums: Number, defaults: false }) as Decoded;
}

describe('otlp encoder', () => {
  it('protobuf: OpenTelemetry decodes every record, attribute and body', async () => {
    const [payload] = otlpEncoder().encode(events);
    expect(payload?.headers['content-type']).toBe('application/x-protobuf');
    expect(payload?.headers['content-encoding']).toBe('gzip');
    const decoded = decodeProtobuf(await payload?.body);

    expect(decoded.resourceLogs.map((r) => r.resource.attributes)).toEqual([
      [
        { key: 'k8s.cluster.name', value: { stringValue: 'prod' } },
        { key: 'service.name', value: { stringValue: 'kube-apiserver' } },
      ],
      [
        { key: 'k8s.cluster.name', value: { stringValue: 'staging' } },
        { key: 'service.name', value: { stringValue: 'kube-apiserver' } },
      ],
    ]);
    const records = decoded.resourceLogs.flatMap((r) => r.scopeLogs.flatMap((s) => s.logRecords));
    expect(decoded.resourceLogs.flatMap((r) => r.scopeLogs.map((s) => s.scope.name))).toEqual([
      'kaudit',
      'kaudit',
    ]);
    expect(records.map((r) => r.body.stringValue)).toEqual(events.map((e) => e.json));
    expect(records.map((r) => r.timeUnixNano)).toEqual(events.map((e) => timeNs(e.event)));
    expect(records[0]?.timeUnixNano).toBe('1768467600125789000');
    expect(records.every((r) => r.severityNumber === 9 && r.severityText === 'INFO')).toBe(true);
    expect(BigInt(records[0]?.observedTimeUnixNano ?? 0)).toBeGreaterThan(
      BigInt(records[0]?.timeUnixNano ?? 0),
    );
    expect(records[0]?.attributes).toEqual([
      { key: 'k8s.audit.id', value: { stringValue: '4d2ea1b7-3c1f-4a55-9e0c-000000000001' } },
      { key: 'k8s.audit.stage', value: { stringValue: 'ResponseComplete' } },
      { key: 'k8s.audit.verb', value: { stringValue: 'get' } },
      { key: 'k8s.audit.level', value: { stringValue: 'RequestResponse' } },
      { key: 'k8s.namespace.name', value: { stringValue: 'payments' } },
      { key: 'k8s.audit.resource', value: { stringValue: 'secrets' } },
      { key: 'k8s.audit.user', value: { stringValue: 'system:serviceaccount:payments:api' } },
      { key: 'user_agent.original', value: { stringValue: 'kubectl/v1.31.0 (linux/amd64)' } },
      { key: 'client.address', value: { stringValue: '10.2.0.7' } },
      { key: 'url.path', value: { stringValue: '/api/v1/namespaces/payments/secrets/db-1' } },
      { key: 'http.response.status_code', value: { intValue: '403' } },
      {
        key: 'log.record.uid',
        value: { stringValue: `${events[0]?.cluster}/4d2ea1b7-3c1f-4a55-9e0c-000000000001/ResponseComplete` },
      },
    ]);
    expect(records[1]?.attributes.map((a) => a.key)).toEqual([
      'k8s.audit.id',
      'k8s.audit.stage',
      'k8s.audit.verb',
      'k8s.audit.level',
      'k8s.audit.user',
      'client.address',
      'url.path',
      'log.record.uid',
    ]);
  });

  it('json and protobuf carry the same records', async () => {
    const [json] = otlpEncoder({ encoding: 'json' }).encode(events);
    const [proto] = otlpEncoder().encode(events);
    expect(json?.headers['content-type']).toBe('application/json');
    const fromJson = JSON.parse(
      gunzipSync((await json?.body) ?? Buffer.alloc(0)).toString('utf8'),
    ) as Decoded;
    const fromProto = decodeProtobuf(await proto?.body);
    const strip = (d: Decoded) =>
      d.resourceLogs.map((r) => ({
        ...r,
        scopeLogs: r.scopeLogs.map((s) => ({
          ...s,
          logRecords: s.logRecords.map(({ observedTimeUnixNano: _, ...rest }) => rest),
        })),
      }));
    expect(strip(fromProto)).toEqual(strip(fromJson));
  });

  it('keeps custom headers and splits at 2,000 records', async () => {
    const many = Array.from({ length: 2500 }, (_, i) => lazyEvent(JSON.stringify(auditEvent(i)), 'prod'));
    const payloads = otlpEncoder({ headers: { 'x-scope-orgid': 'team-a' } }).encode(many);
    expect(payloads.map((p) => p.events.length)).toEqual([2000, 500]);
    expect(payloads[0]?.headers['x-scope-orgid']).toBe('team-a');
    const n: number[] = [];
    for (const p of payloads)
      n.push(decodeProtobuf(await p.body).resourceLogs[0]?.scopeLogs[0]?.logRecords.length ?? 0);
    expect(n).toEqual([2000, 500]);
  });
});
