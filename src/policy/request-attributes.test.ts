import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../model/event.js';
import { attributesFromEvent, attributesFromJson, attributesFromRecord } from './request-attributes.js';

const event: AuditEvent = {
  kind: 'Event',
  apiVersion: 'audit.k8s.io/v1',
  level: 'Metadata',
  auditID: 'a1',
  stage: 'ResponseComplete',
  requestURI: '/apis/apps/v1/namespaces/prod/deployments?fieldManager=kubectl',
  verb: 'create',
  user: { username: 'admin', groups: ['system:masters'] },
  impersonatedUser: { username: 'bob', groups: ['devs'] },
  objectRef: { resource: 'deployments', namespace: 'prod', name: 'web', apiGroup: 'apps', apiVersion: 'v1' },
  requestReceivedTimestamp: '2026-01-01T00:00:00Z',
  stageTimestamp: '2026-01-01T00:00:00Z',
};

describe('attributesFromEvent', () => {
  it('uses the authenticated user, not the impersonated one, and drops the query string', () => {
    const a = attributesFromEvent(event);
    expect(a.user).toEqual({ username: 'admin', groups: ['system:masters'] });
    expect(a.path).toBe('/apis/apps/v1/namespaces/prod/deployments');
    expect(a).toMatchObject({
      verb: 'create',
      apiGroup: 'apps',
      resource: 'deployments',
      namespace: 'prod',
      resourceRequest: true,
    });
  });

  it('gives a create no name, as the checker saw it, but keeps the name of a subresource create', () => {
    expect(attributesFromEvent(event).name).toBe('');
    const eviction = {
      ...event,
      objectRef: { resource: 'pods', subresource: 'eviction', namespace: 'prod', name: 'p1' },
    };
    expect(attributesFromEvent(eviction).name).toBe('p1');
    expect(attributesFromEvent({ ...event, verb: 'update' }).name).toBe('web');
  });

  it('makes an event without objectRef a non-resource request', () => {
    const { objectRef: _, ...rest } = event;
    expect(attributesFromEvent({ ...rest, requestURI: '/healthz?verbose', verb: 'get' })).toMatchObject({
      resourceRequest: false,
      path: '/healthz',
      resource: '',
    });
  });
});

describe('attributesFromJson', () => {
  it('reads an EventList as one request per event', () => {
    const list = {
      kind: 'EventList',
      apiVersion: 'audit.k8s.io/v1',
      items: [event, { ...event, auditID: 'a2', verb: 'delete' }],
    };
    expect(attributesFromJson(list, 'l:1').map((a) => a.verb)).toEqual(['create', 'delete']);
  });

  it('reads a request record, filling what is missing', () => {
    expect(attributesFromJson({ verb: 'get', path: '/metrics' }, 'l:1')).toEqual([
      attributesFromRecord({ user: null, verb: 'get', resourceRequest: false, path: '/metrics' }),
    ]);
    expect(attributesFromRecord({ verb: 'get', resource: 'pods' }).resourceRequest).toBe(true);
  });

  it('refuses an event it cannot read, and a record with wrong types', () => {
    expect(() => attributesFromJson({ kind: 'Event', verb: 'get' }, 'f:3')).toThrow(
      /f:3: looks like an audit event/,
    );
    expect(() => attributesFromJson({ verb: 7 }, 'f:4')).toThrow(/f:4: verb must be a string/);
    expect(() => attributesFromJson([1], 'f:5')).toThrow(/f:5: expected a JSON object/);
  });
});
