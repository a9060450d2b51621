import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../model/event.js';
import { generateLines, Simulation } from './generator.js';
import type { TruthStep } from './truth.js';
import { validateAuditEvent } from './validate.js';

function run(options: ConstructorParameters<typeof Simulation>[0]) {
  const sim = new Simulation(options);
  const lines: string[] = [];
  const flags: boolean[] = [];
  for (const e of sim) {
    lines.push(e.line);
    flags.push(e.ascii);
  }
  const events = lines.map((l) => JSON.parse(l) as AuditEvent);
  return { sim, lines, flags, events, truth: sim.truth() };
}

const isAscii = (s: string): boolean => Buffer.byteLength(s) === s.length;
const micros = (t: string): number => Date.parse(t) * 1000 + (Number(t.slice(20, 26)) % 1000);
const latencyMs = (e: AuditEvent): number =>
  (micros(e.stageTimestamp) - micros(e.requestReceivedTimestamp)) / 1000;

describe('Simulation', () => {
  const all = run({ seed: 7, count: 12_000 });
  const byId = new Map<string, AuditEvent[]>();
  for (const e of all.events) byId.set(e.auditID, [...(byId.get(e.auditID) ?? []), e]);

  it('writes only valid audit.k8s.io/v1 events, one line each, in stageTimestamp order', () => {
    expect(all.events).toHaveLength(12_000);
    const invalid = all.events.map(validateAuditEvent).filter((p) => p.length > 0);
    expect(invalid).toEqual([]);
    for (const l of all.lines) expect(l.indexOf('\n')).toBe(l.length - 1);
    // Writers copy lines flagged ASCII as Latin-1; a wrong flag would corrupt the UTF-8 output.
    const flagged = all.flags.filter((ascii, i) => ascii && !isAscii(all.lines[i] ?? ''));
    expect(flagged).toEqual([]);
    expect(all.lines.some((l) => l.includes('µs'))).toBe(true);
    const stamps = all.events.map((e) => e.stageTimestamp);
    expect(stamps).toEqual([...stamps].sort());
  });

  it('gives each request at most one event per stage, two only for long-running requests', () => {
    for (const [id, evs] of byId) {
      const stages = evs.map((e) => e.stage);
      expect(new Set(stages).size, id).toBe(stages.length);
      if (stages.includes('ResponseStarted') && stages.length === 2) {
        const e = evs[0];
        const longRunning =
          e?.verb === 'watch' ||
          e?.objectRef?.subresource === 'exec' ||
          e?.requestURI.includes('follow=true');
        expect(longRunning, e?.requestURI).toBe(true);
      }
    }
  });

  it('has the shape of control-plane traffic: mostly Metadata, about a tenth RequestResponse', () => {
    const rr = all.events.filter((e) => e.level === 'RequestResponse');
    expect(rr.length / all.events.length).toBeGreaterThan(0.06);
    expect(rr.length / all.events.length).toBeLessThan(0.15);
    const served = rr.filter((e) => (e.responseStatus?.code ?? 0) < 400);
    expect(served.every((e) => e.responseObject !== undefined && e.requestObject !== undefined)).toBe(true);
    const bytes = all.lines.reduce((n, l) => n + Buffer.byteLength(l), 0);
    expect(bytes / all.lines.length).toBeGreaterThan(1200);
    expect(bytes / all.lines.length).toBeLessThan(1900);
    const users = new Set(all.events.map((e) => e.user.username ?? ''));
    expect([...users].some((u) => u.startsWith('system:node:'))).toBe(true);
    for (const u of ['system:kube-controller-manager', 'system:kube-scheduler', 'alice@example.com']) {
      expect(users.has(u), u).toBe(true);
    }
    const leases = all.events.filter(
      (e) => e.objectRef?.namespace === 'kube-node-lease' && e.verb === 'update',
    );
    const spanS = (micros(all.truth.end) - micros(all.truth.start)) / 1e6;
    // 10 nodes renew every 10 s.
    expect(leases.length).toBeGreaterThan(spanS * 0.8);
    expect(leases.length).toBeLessThan(spanS * 1.2);
  });

  it('closes long-running watches minutes after they start, as client-go reflectors time out', () => {
    const { events } = run({
      seed: 5,
      durationMs: 20 * 60_000,
      ratePerS: 8,
      nodes: 3,
      scenarios: ['normal'],
    });
    const started = new Map<string, AuditEvent>();
    let completed = 0;
    for (const e of events) {
      if (e.verb !== 'watch') continue;
      if (e.stage === 'ResponseStarted') started.set(e.auditID, e);
      else {
        expect(started.has(e.auditID)).toBe(true);
        expect(latencyMs(e)).toBeGreaterThanOrEqual(300_000);
        expect(latencyMs(e)).toBeLessThan(601_000);
        expect(e.requestURI).toMatch(/watch=true/);
        completed++;
      }
    }
    expect(completed).toBeGreaterThan(10);
  });

  it('fills every body with concrete names, uids and resourceVersions', () => {
    const bodies = all.events
      .flatMap((e) => [e.requestObject, e.responseObject])
      .filter((b) => b !== undefined);
    expect(bodies.length).toBeGreaterThan(500);
    const text = JSON.stringify(bodies);
    expect(text).not.toMatch(/@@|\\u0000/);
    const objects = bodies as { metadata?: { resourceVersion?: string; name?: string; uid?: string } }[];
    for (const o of objects) {
      if (o.metadata?.resourceVersion !== undefined) expect(o.metadata.resourceVersion).toMatch(/^\d+$/);
      if (o.metadata?.uid !== undefined) expect(o.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    }
    // A pod status patch answers with the pod it patched.
    const patched = all.events.filter(
      (e) => e.objectRef?.subresource === 'status' && e.objectRef.resource === 'pods',
    );
    expect(patched.length).toBeGreaterThan(20);
    for (const e of patched) {
      const pod = e.responseObject as { metadata: { name: string } };
      expect(pod.metadata.name).toBe(e.objectRef?.name);
    }
  });

  it('is deterministic: the same seed gives the same bytes, another seed other bytes', () => {
    const hash = (seed: number): string => {
      const h = createHash('sha256');
      for (const l of generateLines({ seed, count: 5000 })) h.update(l);
      return h.digest('hex');
    };
    expect(hash(3)).toBe(hash(3));
    expect(hash(3)).not.toBe(hash(4));
  });

  it('records truth whose auditIDs exist and whose events show what each step claims', () => {
    const steps = all.truth.steps;
    const scenarios = new Set(steps.map((s) => s.scenario));
    expect([...scenarios].sort()).toEqual(['attack', 'changes', 'denials', 'slow']);
    const check = (s: TruthStep): void => {
      expect(s.auditIDs.length, s.id).toBeGreaterThan(0);
      const evs = s.auditIDs.flatMap((id) => byId.get(id) ?? []);
      expect(new Set(evs.map((e) => e.auditID)).size, s.id).toBe(s.auditIDs.length);
      const x = s.expect;
      const final = evs.filter((e) => e.stage === 'ResponseComplete' || e.responseStatus?.code === 401);
      switch (x.kind) {
        case 'denial':
          for (const e of final) {
            expect(e.responseStatus?.code, s.id).toBe(x.code);
            expect(x.verbs, s.id).toContain(e.verb);
            expect(x.resource.split(','), s.id).toContain(e.objectRef?.resource);
            expect(e.objectRef?.namespace, s.id).toBe(x.namespace);
            if (x.cause === 'unauthenticated') {
              expect(e.user).toEqual({});
              expect(e.annotations?.['authorization.k8s.io/decision']).toBeUndefined();
            } else {
              expect(e.user.username, s.id).toBe(x.client.username);
              expect(e.annotations?.['authorization.k8s.io/decision'], s.id).toBe(
                x.cause === 'rbac' ? 'forbid' : 'allow',
              );
            }
            if (x.cause === 'pod-security') {
              expect(e.annotations?.['pod-security.kubernetes.io/enforce-policy']).toBe(
                x.podSecurity?.enforce,
              );
            }
          }
          if (x.cause === 'rbac') expect(x.fix?.binding.subjects[0], s.id).toEqual(x.subject);
          break;
        case 'slow':
          if (x.client !== undefined)
            for (const e of evs) expect(e.user.username, s.id).toBe(x.client.username);
          if (x.cause === 'apf-throttling') {
            expect(final.filter((e) => e.responseStatus?.code === 429).length).toBeGreaterThan(50);
          } else {
            for (const e of final) {
              expect(latencyMs(e), s.id).toBeGreaterThan(x.minLatencyMs);
              expect(e.annotations?.['apiserver.latency.k8s.io/total'], s.id).toMatch(/^[\d.]+(ms|s)$|m/);
            }
            if (x.cause === 'etcd-latency') {
              for (const e of final) {
                expect(x.verbs, s.id).toContain(e.verb);
                expect(e.annotations?.['apiserver.latency.k8s.io/etcd'], s.id).toMatch(/s$/);
              }
            }
          }
          break;
        case 'attack':
          expect(x.technique).toMatch(/^T\d{4}(\.\d{3})?$/);
          for (const e of evs) {
            expect(e.user.username, s.id).toBe(x.client.username);
            expect(e.sourceIPs, s.id).toEqual([x.client.sourceIP]);
            expect(e.userAgent, s.id).toBe(x.client.userAgent);
          }
          break;
        case 'change': {
          const primary = byId.get(x.primaryAuditID ?? '')?.[0];
          expect(primary?.verb, s.id).toBe(x.verb);
          expect(primary?.user.username, s.id).toBe(x.client.username);
          expect(primary?.objectRef?.resource, s.id).toBe(x.resource);
          break;
        }
      }
    };
    for (const s of steps) check(s);
    const attackIds = steps.filter((s) => s.scenario === 'attack').map((s) => s.expect);
    expect(attackIds.map((x) => (x.kind === 'attack' ? x.technique : ''))).toEqual([
      'T1613',
      'T1550.001',
      'T1069',
      'T1552.007',
      'T1609',
      'T1611',
      'T1098.006',
      'T1070',
    ]);
  });

  it('keeps the truth to what was written when the count cuts a scenario short', () => {
    const { events, truth } = run({ seed: 1, count: 300, scenarios: ['normal', 'attack'] });
    const written = new Set(events.map((e) => e.auditID));
    for (const s of truth.steps) for (const id of s.auditIDs) expect(written.has(id)).toBe(true);
    expect(truth.events).toBe(300);
  });

  it('repeats the scenarios every ten minutes when nothing bounds the run', () => {
    const sim = new Simulation({ seed: 3, scenarios: ['attack'] });
    const stopUs = sim.startUs + 25 * 60_000_000;
    for (const e of sim) if (e.t > stopUs) break;
    const ids = sim.truth().steps.map((s) => s.id);
    expect(ids).toContain('attack/exec');
    expect(ids).toContain('attack/exec#2');
    expect(ids).toContain('attack/exec#3');
    expect(ids).not.toContain('attack/exec#4');
  });

  it('runs scenarios alone and stops at --duration in simulated time', () => {
    const { events, truth } = run({ seed: 2, durationMs: 60_000, scenarios: ['denials'] });
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.responseStatus?.code === 403 || e.responseStatus?.code === 401)).toBe(true);
    expect(truth.steps.every((s) => s.scenario === 'denials')).toBe(true);
    const end = Date.parse('2026-01-15T09:01:00Z');
    expect(events.every((e) => Date.parse(e.stageTimestamp) < end)).toBe(true);
  });
});
