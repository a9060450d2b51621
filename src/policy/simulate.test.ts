import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AuditEvent, Level, Stage } from '../model/event.js';
import { readAuditEvents } from '../model/read-events.js';
import { simulatePolicy } from './simulate.js';
import type { Policy } from './types.js';

/** A deterministic mix of cluster traffic: system watchers, health checks, secrets, apps writes, denials. */
function generateLog(n: number): AuditEvent[] {
  let seed = 42;
  const rand = (k: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return Math.floor(seed / 65_536) % k;
  };
  const users = [
    { username: 'system:kube-proxy', groups: ['system:authenticated'] },
    { username: 'alice', groups: ['devs', 'system:authenticated'] },
    {
      username: 'system:serviceaccount:kube-system:deployment-controller',
      groups: ['system:serviceaccounts'],
    },
  ];
  const targets: { resource?: string; apiGroup?: string; path?: string }[] = [
    { resource: 'endpoints' },
    { resource: 'secrets' },
    { resource: 'configmaps' },
    { resource: 'pods' },
    { resource: 'deployments', apiGroup: 'apps' },
    { path: '/healthz/etcd' },
    { path: '/metrics' },
  ];
  const verbs = ['get', 'list', 'watch', 'create', 'update', 'delete'];
  const out: AuditEvent[] = [];
  for (let i = 0; i < n; i++) {
    const user = users[rand(users.length)] ?? { username: 'nobody', groups: [] };
    const t = targets[rand(targets.length)] ?? {};
    const verb = t.path ? 'get' : (verbs[rand(verbs.length)] ?? 'get');
    const ts = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
    const base = {
      kind: 'Event' as const,
      apiVersion: 'audit.k8s.io/v1' as const,
      level: 'RequestResponse' as Level,
      auditID: `id-${i}`,
      requestURI: t.path ?? `/api/v1/namespaces/ns${i % 3}/${t.resource}`,
      verb,
      user,
      requestReceivedTimestamp: ts,
      ...(t.resource
        ? {
            objectRef: {
              resource: t.resource,
              namespace: `ns${i % 3}`,
              name: `obj${i}`,
              apiVersion: 'v1',
              ...(t.apiGroup ? { apiGroup: t.apiGroup } : {}),
            },
          }
        : {}),
    };
    const writes = verb === 'create' || verb === 'update';
    const stages: Stage[] =
      verb === 'watch'
        ? ['RequestReceived', 'ResponseStarted', 'ResponseComplete']
        : ['RequestReceived', 'ResponseComplete'];
    for (const stage of stages) {
      const done = stage === 'ResponseComplete';
      out.push({
        ...base,
        stage,
        stageTimestamp: ts,
        ...(done ? { responseStatus: { code: rand(10) === 0 ? 403 : 200 } } : {}),
        ...(writes
          ? {
              requestObject: {
                kind: 'X',
                metadata: { name: `obj${i}`, managedFields: [{ manager: 'kubectl' }] },
                data: 'x'.repeat(rand(200)),
              },
            }
          : {}),
        ...(done && t.resource
          ? { responseObject: { kind: 'X', metadata: { name: `obj${i}` }, spec: 'y'.repeat(rand(500)) } }
          : {}),
      });
    }
  }
  return out;
}

const policy: Policy = {
  apiVersion: 'audit.k8s.io/v1',
  kind: 'Policy',
  rules: [
    { level: 'None', users: ['system:kube-proxy'], verbs: ['watch'] },
    { level: 'None', nonResourceURLs: ['/healthz*'] },
    { level: 'Metadata', resources: [{ group: '', resources: ['secrets', 'configmaps'] }] },
    { level: 'Request', verbs: ['get', 'list', 'watch'] },
    { level: 'RequestResponse', resources: [{ group: 'apps' }], omitManagedFields: true },
    { level: 'Metadata', omitStages: ['RequestReceived'] },
  ],
};

/** The same policy written out by hand as plain conditions, to count independently of evaluate.ts. */
function directRule(e: AuditEvent): number {
  const res = e.objectRef?.resource;
  if (e.user.username === 'system:kube-proxy' && e.verb === 'watch') return 0;
  if (!e.objectRef && e.requestURI.startsWith('/healthz')) return 1;
  if (e.objectRef && !e.objectRef.apiGroup && (res === 'secrets' || res === 'configmaps')) return 2;
  if (['get', 'list', 'watch'].includes(e.verb)) return 3;
  if (e.objectRef?.apiGroup === 'apps') return 4;
  return 5;
}

function directBytes(e: AuditEvent, level: Level, omitManagedFields: boolean): number {
  const copy = structuredClone(e) as AuditEvent & {
    requestObject?: { metadata?: { managedFields?: unknown } };
  };
  copy.level = level;
  if (level === 'Metadata') delete copy.requestObject;
  if (level !== 'RequestResponse') delete copy.responseObject;
  if (omitManagedFields) delete copy.requestObject?.metadata?.managedFields;
  return Buffer.byteLength(JSON.stringify(copy));
}

describe('simulatePolicy', () => {
  it('keeps, per rule, exactly the events and bytes a direct count finds', async () => {
    const log = generateLog(2000);
    const dir = mkdtempSync(join(tmpdir(), 'kaudit-sim-'));
    const file = join(dir, 'audit.log');
    writeFileSync(file, log.map((e) => JSON.stringify(e)).join('\n') + '\n');

    const report = await simulatePolicy(policy, readAuditEvents(file));

    const levels: Level[] = ['None', 'None', 'Metadata', 'Request', 'RequestResponse', 'Metadata'];
    const want = policy.rules.map((_, index) => ({ index, matched: 0, events: 0, bytes: 0 }));
    const keptIds = new Set<string>();
    for (const e of log) {
      const r = directRule(e);
      const w = want[r];
      if (!w) throw new Error('no rule');
      w.matched++;
      const level = levels[r] ?? 'None';
      if (level === 'None' || (r === 5 && e.stage === 'RequestReceived')) continue;
      w.events++;
      w.bytes += directBytes(e, level, r === 4);
      keptIds.add(e.auditID);
    }
    expect(
      report.rules.map(({ index, matched, events, bytes }) => ({ index, matched, events, bytes })),
    ).toEqual(want);
    expect(want.every((w) => w.matched > 0)).toBe(true);
    expect(report.input.events).toBe(log.length);
    expect(report.output.events).toBe(want.reduce((n, w) => n + w.events, 0));
    expect(report.output.bytes).toBe(want.reduce((n, w) => n + w.bytes, 0));
    expect(report.unmatched.events).toBe(0);
    const ids = new Set(log.map((e) => e.auditID));
    expect(report.dropped.requests).toBe(ids.size - keptIds.size);
    expect(report.input.bytesPerDay).toBeGreaterThan(report.output.bytesPerDay ?? Number.POSITIVE_INFINITY);
  });

  it('measures the span of the capture by instant, whatever the timestamp precision', async () => {
    const [first] = generateLog(1);
    if (!first) throw new Error('no event');
    const at = (received: string, stage: string) => ({
      event: { ...first, requestReceivedTimestamp: received, stageTimestamp: stage },
      bytes: 1000,
    });
    const report = await simulatePolicy({ rules: [{ level: 'Metadata' }] }, [
      at('2026-01-01T00:00:00.500000Z', '2026-01-01T00:00:00.600000Z'),
      at('2026-01-01T00:00:00Z', '2026-01-01T09:00:00+09:00'),
      at('2026-01-01T06:00:00Z', '2026-01-01T06:00:00Z'),
    ]);
    expect([report.input.from, report.input.to]).toEqual(['2026-01-01T00:00:00Z', '2026-01-01T06:00:00Z']);
    expect(report.input.bytesPerDay).toBe(3000 * 4);
  });

  it('counts secret bodies and requests dropped entirely', async () => {
    const secretCreate = generateLog(2000).filter(
      (e) => e.objectRef?.resource === 'secrets' && e.verb === 'create',
    );
    expect(secretCreate.length).toBeGreaterThan(0);
    const loud: Policy = { rules: [{ level: 'RequestResponse', resources: [{ resources: ['secrets'] }] }] };
    const report = await simulatePolicy(
      loud,
      secretCreate.map((event) => ({ event, bytes: JSON.stringify(event).length })),
    );
    expect(report.sensitiveBodies).toEqual({
      events: secretCreate.length,
      byResource: { secrets: secretCreate.length },
    });

    const quiet: Policy = {
      rules: [
        { level: 'None', resources: [{ resources: ['secrets'] }] },
        { level: 'Metadata', verbs: ['delete'] },
      ],
    };
    const dropped = await simulatePolicy(
      quiet,
      secretCreate.map((event) => ({ event, bytes: 1 })),
    );
    expect(dropped.dropped.requests).toBe(secretCreate.length / 2);
    expect(dropped.dropped.top[0]).toMatchObject({ verb: 'create', resource: 'secrets' });
    expect(dropped.output.events).toBe(0);
    expect(dropped.unmatched.events).toBe(0);
  });
});
