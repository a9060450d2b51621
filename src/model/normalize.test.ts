import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { normalizeValue } from './normalize.js';

const fixture = (name: string) => new URL(`../../test/fixtures/${name}`, import.meta.url);
const jsonLines = (name: string): unknown[] =>
  readFileSync(fixture(name), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));

describe('normalizeValue', () => {
  it('turns v1beta1 and apiVersion-less events into v1, dropping metadata and timestamp', () => {
    for (const value of jsonLines('v1beta1-event.jsonl')) {
      const r = normalizeValue(value);
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      const e = r.events[0];
      expect(e?.apiVersion).toBe('audit.k8s.io/v1');
      expect(e?.kind).toBe('Event');
      expect(e).not.toHaveProperty('metadata');
      expect(e).not.toHaveProperty('timestamp');
      expect(e?.objectRef?.resource).toBe('configmaps');
    }
  });

  it('unwraps a GKE Cloud Audit Log entry', () => {
    const r = normalizeValue(jsonLines('gke-cloud-audit-entries.jsonl')[0]);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const e = r.events[0];
    expect(e).toMatchObject({
      auditID: '5a6b7c8d-3333-4a2b-9c3d-4e5f6a7b8c9d',
      verb: 'get',
      user: { username: 'bob' },
      sourceIPs: ['203.0.113.9'],
      objectRef: { resource: 'configmaps', namespace: 'default', name: 'app-config', apiVersion: 'v1' },
      responseStatus: { code: 403 },
      requestURI: '/api/v1/namespaces/default/configmaps/app-config',
    });
    expect(e?.annotations?.['authorization.k8s.io/decision']).toBe('forbid');
  });

  it('unwraps AKS diagnostic records with properties.log as a string or an object', () => {
    const r = normalizeValue(JSON.parse(readFileSync(fixture('aks-diagnostic-records.json'), 'utf8')));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.events.map((e) => e.auditID)).toEqual([
      '5a6b7c8d-4444-4a2b-9c3d-4e5f6a7b8c9d',
      '5a6b7c8d-5555-4a2b-9c3d-4e5f6a7b8c9d',
    ]);
  });

  it('expands an EventList and names what is wrong with non-events', () => {
    const ev = jsonLines('watch-long-running.jsonl')[0];
    const list = normalizeValue({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: [ev, ev] });
    expect(list.ok && list.events.length).toBe(2);
    expect(normalizeValue({ kind: 'Pod', apiVersion: 'v1' })).toEqual({
      ok: false,
      reason: 'not an audit Event: apiVersion "v1"',
    });
    expect(
      normalizeValue({ kind: 'Event', apiVersion: 'audit.k8s.io/v1', stage: 'ResponseComplete' }),
    ).toEqual({
      ok: false,
      reason: 'not an audit Event: missing field auditID',
    });
    expect(normalizeValue(42)).toEqual({ ok: false, reason: 'not an audit Event: a JSON number' });
  });
});
