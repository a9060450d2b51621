import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bodyText, PlatformServer, type Received } from '../../test/fixtures/forward/platform-server.js';
import { createLogger } from '../collect/logger.js';
import type { StoredBatch } from '../collect/sinks.js';
import { loadPolicyOrThrow } from '../policy/load.js';
import { checkBulk, retryAfterMs } from './deliver.js';
import { DATADOG_MAX_ENTRIES, DATADOG_MAX_PAYLOAD_BYTES, datadogEncoder } from './encoders/datadog.js';
import { elasticsearchEncoder } from './encoders/elasticsearch.js';
import { lokiEncoder } from './encoders/loki.js';
import type { OutgoingEvent } from './event-fields.js';
import { Forwarder, type ForwarderOptions } from './forwarder.js';

const quiet = createLogger({ out: { write: () => true } as unknown as NodeJS.WritableStream });

function event(i: number, extra: Record<string, unknown> = {}) {
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'RequestResponse',
    auditID: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    stage: 'ResponseComplete',
    requestURI: `/api/v1/namespaces/payments/configmaps/c${i}`,
    verb: 'update',
    user: { username: 'alice', groups: ['devs'] },
    sourceIPs: ['10.0.0.1'],
    objectRef: { resource: 'configmaps', namespace: 'payments', name: `c${i}`, apiVersion: 'v1' },
    responseStatus: { code: 200 },
    requestObject: { data: { k: 'v'.repeat(10) } },
    responseObject: { data: { k: 'v' } },
    requestReceivedTimestamp: new Date(Date.UTC(2026, 0, 15, 9, 0, 0, i)).toISOString(),
    stageTimestamp: new Date(Date.UTC(2026, 0, 15, 9, 0, 0, i + 1)).toISOString(),
    ...extra,
  };
}

const batch = (from: number, n: number, extra: Record<string, unknown> = {}): StoredBatch => ({
  cluster: 'prod',
  events: Array.from({ length: n }, (_, k) => Buffer.from(JSON.stringify(event(from + k, extra)))),
});

const datadogContract = (r: Received): string | undefined => {
  if (r.path !== '/api/v2/logs') return `path ${r.path}`;
  if (r.headers['dd-api-key'] !== 'dd-key') return 'missing DD-API-KEY';
  if (r.headers['content-type'] !== 'application/json') return 'content-type';
  if (r.headers['content-encoding'] !== 'gzip') return 'not gzip';
  const text = bodyText(r);
  if (Buffer.byteLength(text) > DATADOG_MAX_PAYLOAD_BYTES) return 'payload over 5 MB';
  const entries = JSON.parse(text) as {
    ddsource: string;
    service: string;
    ddtags: string;
    message: string;
  }[];
  if (!Array.isArray(entries) || entries.length > DATADOG_MAX_ENTRIES) return 'not an array of at most 1000';
  for (const e of entries) {
    if (e.ddsource !== 'kubernetes.audit' || e.service !== 'audit') return 'ddsource/service';
    if (!e.ddtags.includes('kube_cluster_name:prod')) return 'ddtags';
    if (Buffer.byteLength(e.message) > 1_000_000) return 'entry over 1 MB';
  }
  return undefined;
};

function datadogIds(server: PlatformServer): string[] {
  return server.requests.flatMap((r) =>
    (JSON.parse(bodyText(r)) as { message: string }[]).map(
      (e) => (JSON.parse(e.message) as { auditID: string }).auditID,
    ),
  );
}

let server: PlatformServer;
let url: string;
const letters: { events: OutgoingEvent[]; reason: string }[] = [];

function forwarder(extra: Partial<ForwarderOptions> = {}): Forwarder {
  return new Forwarder({
    name: 'dd',
    type: 'datadog',
    url: `${url}/api/v2/logs`,
    encoder: datadogEncoder({ apiKey: 'dd-key' }),
    deadLetter: async (events, reason) => {
      letters.push({ events: [...events], reason });
    },
    log: quiet,
    sleep: async () => undefined,
    ...extra,
  });
}

beforeEach(async () => {
  letters.length = 0;
  server = new PlatformServer(datadogContract);
  url = await server.start();
});
afterEach(() => server.stop());

describe('Forwarder to the Datadog intake', () => {
  it('delivers every event once and in order through 500s, a 429 with Retry-After and a 413', async () => {
    const f = forwarder();
    server.failures = [
      { status: 500 },
      { status: 429, headers: { 'retry-after': '0' } },
      { status: 413 },
      { status: 502 },
    ];
    await f.export(batch(0, 2500));
    await f.export(batch(2500, 10));
    const ids = datadogIds(server);
    expect(ids).toEqual(Array.from({ length: 2510 }, (_, i) => event(i).auditID));
    expect(server.violations).toEqual([]);
    expect(f.stats()).toMatchObject({ sentEvents: 2510, retries: 3, deadLettered: 0 });
  });

  it('encodes a batch handed over while the one before is on its way, and still sends one request at a time, in order', async () => {
    let open = 0;
    let mostOpen = 0;
    let encoded = 0;
    const dd = datadogEncoder({ apiKey: 'dd-key' });
    const encodedWhileSending: number[] = [];
    const f = forwarder({
      encoder: {
        encode: (events) => {
          encoded++;
          return dd.encode(events);
        },
      },
      fetch: async (input, init) => {
        open++;
        mostOpen = Math.max(mostOpen, open);
        try {
          // Lets the caller's next export run before this request is answered.
          await new Promise((r) => setTimeout(r, 5));
          encodedWhileSending.push(encoded);
          return await fetch(input, init);
        } finally {
          open--;
        }
      },
    });
    server.failures = [{ status: 500 }, { status: 503 }];
    const sends = [0, 1, 2, 3].map((b) => f.export(batch(b * 10, 10)));
    await Promise.all(sends);
    expect(mostOpen).toBe(1);
    // The first request (and its two retries) went out with all four batches already encoded.
    expect(encodedWhileSending[0]).toBe(4);
    expect(datadogIds(server)).toEqual(Array.from({ length: 40 }, (_, i) => event(i).auditID));
    expect(server.violations).toEqual([]);
  });

  it('sends an event over 1 MB without its bodies and counts it', async () => {
    const f = forwarder();
    await f.export(batch(0, 1, { requestObject: { blob: 'x'.repeat(1_200_000) } }));
    const sent = JSON.parse(
      (JSON.parse(bodyText(server.requests[0] as Received)) as { message: string }[])[0]?.message ?? '{}',
    ) as {
      requestObject?: unknown;
      annotations: Record<string, string>;
    };
    expect(sent.requestObject).toBeUndefined();
    expect(sent.annotations['audit.k8s.io/truncated']).toBe('true');
    expect(f.stats().truncatedEvents).toBe(1);
  });

  it('puts what the platform refuses for good in the dead letters, with its answer', async () => {
    const f = forwarder();
    server.failures = [{ status: 403, body: 'bad api key' }];
    await f.export(batch(0, 3));
    expect(letters).toHaveLength(1);
    expect(letters[0]?.reason).toContain('403');
    expect(letters[0]?.events).toHaveLength(3);
    expect(f.stats().deadLettered).toBe(3);
  });

  it('sends each event at the level its audit policy gives it, and only what include/exclude let through', async () => {
    const policy = loadPolicyOrThrow(
      'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  users: [system:kube-proxy]\n- level: Metadata\n',
    );
    const f = forwarder({ policy, exclude: { namespace: ['kube-system'] } });
    await f.export(batch(0, 2));
    await f.export(batch(2, 1, { user: { username: 'system:kube-proxy' } }));
    await f.export(batch(3, 1, { objectRef: { resource: 'pods', namespace: 'kube-system' } }));
    const sent = server.requests.flatMap((r) =>
      (JSON.parse(bodyText(r)) as { message: string }[]).map(
        (e) => JSON.parse(e.message) as Record<string, unknown>,
      ),
    );
    expect(sent.map((e) => e.auditID)).toEqual([event(0).auditID, event(1).auditID]);
    for (const e of sent) {
      expect(e.level).toBe('Metadata');
      expect(e.requestObject).toBeUndefined();
      expect(e.responseObject).toBeUndefined();
    }
    expect(f.stats().filteredEvents).toBe(2);
  });
});

describe('encoders', () => {
  const out = (i: number): OutgoingEvent => {
    const e = event(i) as unknown as OutgoingEvent['event'];
    return { event: e, cluster: 'prod', json: JSON.stringify(e) };
  };

  it('Loki: low-cardinality labels, the rest as structured metadata, values in time order', async () => {
    const [p] = lokiEncoder().encode([out(2), out(1)]);
    const body = JSON.parse(
      bodyText({
        path: '/',
        headers: { 'content-encoding': 'gzip' },
        body: (await p?.body) ?? Buffer.alloc(0),
      }),
    ) as {
      streams: { stream: Record<string, string>; values: [string, string, Record<string, string>][] }[];
    };
    expect(body.streams).toHaveLength(1);
    expect(body.streams[0]?.stream).toEqual({
      cluster: 'prod',
      source: 'kubernetes.audit',
      verb_class: 'write',
    });
    const values = body.streams[0]?.values ?? [];
    expect(values.map((v) => v[2].audit_id)).toEqual([event(1).auditID, event(2).auditID]);
    expect(values[0]?.[0]).toMatch(/^\d{19}$/);
  });

  it('Elasticsearch: create actions with an _id of cluster, auditID and stage, documents shaped like kubernetes.audit_logs', async () => {
    const [p] = elasticsearchEncoder().encode([out(1)]);
    const lines = bodyText({
      path: '/',
      headers: { 'content-encoding': 'gzip' },
      body: (await p?.body) ?? Buffer.alloc(0),
    })
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toEqual({
      create: {
        _index: 'logs-kubernetes.audit_logs-default',
        _id: `prod/${event(1).auditID}/ResponseComplete`,
      },
    });
    expect(lines[1]).toMatchObject({
      kubernetes: { audit: { verb: 'update' } },
      user: { name: 'alice' },
      source: { ip: '10.0.0.1' },
    });
  });

  it('reads Retry-After and the _bulk answer', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs('Thu, 15 Jan 2026 09:00:10 GMT', Date.UTC(2026, 0, 15, 9, 0, 0))).toBe(10_000);
    expect(
      checkBulk(
        200,
        JSON.stringify({ errors: true, items: [{ create: { status: 409 } }, { create: { status: 201 } }] }),
      ),
    ).toEqual({
      kind: 'ok',
    });
    expect(checkBulk(200, JSON.stringify({ errors: true, items: [{ create: { status: 429 } }] })).kind).toBe(
      'retry',
    );
    expect(
      checkBulk(
        200,
        JSON.stringify({ errors: true, items: [{ create: { status: 400, error: { type: 'mapper' } } }] }),
      ).kind,
    ).toBe('reject');
  });
});
