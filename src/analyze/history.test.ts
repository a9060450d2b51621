import { describe, expect, it } from 'vitest';
import { prepareLine } from '../model/prepare.js';
import { MemoryStore } from '../store/memory/memory-store.js';
import { objectHistory, parseObjectTarget } from './history.js';

function event(fields: Record<string, unknown>): string {
  return JSON.stringify({
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'RequestResponse',
    stage: 'ResponseComplete',
    user: { username: 'alice', groups: ['system:authenticated'] },
    sourceIPs: ['10.0.0.1'],
    responseStatus: { code: 200 },
    ...fields,
  });
}

const at = (s: number) => new Date(Date.UTC(2026, 0, 15, 9, 0, s)).toISOString();

describe('objectHistory', () => {
  it('keeps the create that names the object only in its body, and a deletecollection of its namespace', async () => {
    const store = new MemoryStore();
    const lines = [
      event({
        auditID: 'a1',
        verb: 'create',
        requestURI: '/api/v1/namespaces/web/pods',
        objectRef: { resource: 'pods', namespace: 'web', apiVersion: 'v1' },
        requestObject: { metadata: { generateName: 'web-' } },
        responseObject: { metadata: { name: 'web-x1', uid: 'u1' } },
        requestReceivedTimestamp: at(1),
        stageTimestamp: at(1),
      }),
      event({
        auditID: 'a2',
        verb: 'create',
        requestURI: '/api/v1/namespaces/web/pods',
        objectRef: { resource: 'pods', namespace: 'web', apiVersion: 'v1' },
        responseObject: { metadata: { name: 'web-other' } },
        requestReceivedTimestamp: at(2),
        stageTimestamp: at(2),
      }),
      event({
        auditID: 'a3',
        verb: 'patch',
        requestURI: '/api/v1/namespaces/web/pods/web-x1',
        objectRef: { resource: 'pods', namespace: 'web', name: 'web-x1', apiVersion: 'v1' },
        requestObject: { metadata: { labels: { a: 'b' } } },
        requestReceivedTimestamp: at(3),
        stageTimestamp: at(3),
      }),
      event({
        auditID: 'a4',
        verb: 'deletecollection',
        requestURI: '/api/v1/namespaces/web/pods',
        objectRef: { resource: 'pods', namespace: 'web', apiVersion: 'v1' },
        requestReceivedTimestamp: at(4),
        stageTimestamp: at(4),
      }),
      event({
        auditID: 'a5',
        verb: 'delete',
        requestURI: '/api/v1/namespaces/other/pods/web-x1',
        objectRef: { resource: 'pods', namespace: 'other', name: 'web-x1', apiVersion: 'v1' },
        requestReceivedTimestamp: at(5),
        stageTimestamp: at(5),
      }),
    ];
    await store.write({ events: lines.flatMap((l) => prepareLine(Buffer.from(l)).events), cluster: 'c' });
    const report = await objectHistory(store, { target: parseObjectTarget('pods/web/web-x1'), filter: {} });
    expect(report.changes.map((c) => [c.auditId, c.verb])).toEqual([
      ['a1', 'create'],
      ['a3', 'patch'],
      ['a4', 'deletecollection'],
    ]);
    expect(report.changes[0]?.responseObject).toEqual({ metadata: { name: 'web-x1', uid: 'u1' } });
    expect(report.changes[1]?.requestObject).toEqual({ metadata: { labels: { a: 'b' } } });
    const byUid = await objectHistory(store, {
      target: parseObjectTarget('pods/web/web-x1', 'u1'),
      filter: {},
    });
    expect(byUid.changes.map((c) => c.auditId)).toEqual(['a1']);
  });
});
