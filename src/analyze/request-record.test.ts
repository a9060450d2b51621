import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../model/event.js';
import { collectRecords, decisionOf, recordFromEvent, requestRecords } from './request-record.js';

const ev = (over: Partial<AuditEvent>): AuditEvent => ({
  kind: 'Event',
  apiVersion: 'audit.k8s.io/v1',
  level: 'Metadata',
  auditID: 'a',
  stage: 'ResponseComplete',
  requestURI: '/api/v1/namespaces/ns1/pods?limit=5',
  verb: 'list',
  user: { username: 'admin', groups: ['system:masters'] },
  requestReceivedTimestamp: '2026-01-01T00:00:00Z',
  stageTimestamp: '2026-01-01T00:00:00Z',
  ...over,
});

describe('recordFromEvent', () => {
  it('the subject is the impersonated user; no objectRef means a non-resource URL without its query', () => {
    const r = recordFromEvent(
      ev({
        impersonatedUser: { username: 'bob', groups: ['devs'] },
        requestURI: '/healthz?verbose=1',
        verb: 'get',
      }),
    );
    expect(r).toMatchObject({
      subject: 'bob',
      subjectGroups: ['devs'],
      username: 'admin',
      resourceRequest: false,
      nonResourceURL: '/healthz',
    });
  });

  it('decision: the annotation, else an authorizer 403 message, never an admission 403', () => {
    expect(
      decisionOf(
        ev({
          annotations: { 'authorization.k8s.io/decision': 'allow' },
          responseStatus: { code: 403, message: 'x' },
        }),
      ),
    ).toBe('allow');
    expect(
      decisionOf(
        ev({
          responseStatus: {
            code: 403,
            message: 'pods is forbidden: User "bob" cannot list pods in the namespace "default"',
          },
        }),
      ),
    ).toBe('forbid');
    expect(
      decisionOf(
        ev({ responseStatus: { code: 403, message: 'forbidden: User "bob" cannot get path "/metrics"' } }),
      ),
    ).toBe('forbid');
    expect(
      decisionOf(
        ev({
          responseStatus: {
            code: 403,
            message: 'pods "p" is forbidden: violates PodSecurity "restricted:latest": privileged',
          },
        }),
      ),
    ).toBeNull();
  });

  it('one record per request: final stages, and the ResponseStarted 401 of a failed authentication', async () => {
    const got = await collectRecords(
      requestRecords([
        ev({ auditID: 'w', stage: 'ResponseStarted', verb: 'watch', responseStatus: { code: 200 } }),
        ev({ auditID: 'w', stage: 'ResponseComplete', verb: 'watch', responseStatus: { code: 200 } }),
        ev({ auditID: 'u', stage: 'ResponseStarted', user: {}, responseStatus: { code: 401 } }),
        ev({ auditID: 'r', stage: 'RequestReceived' }),
      ]),
    );
    expect(got.map((r) => `${r.auditID}:${r.stage}`)).toEqual(['w:ResponseComplete', 'u:ResponseStarted']);
  });
});
