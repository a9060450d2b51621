import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { validateAuditEvent } from './validate.js';

// A real event from a kube-apiserver (test/fixtures/third-party/samples).
const sample = JSON.parse(
  readFileSync(
    new URL('../../test/fixtures/third-party/samples/raw_audit_kubernetes.json', import.meta.url),
    'utf8',
  ),
) as Record<string, unknown>;

describe('validateAuditEvent', () => {
  it('accepts an event written by a real kube-apiserver', () => {
    expect(validateAuditEvent(sample)).toEqual([]);
  });

  it('reports every problem of a broken event, not only the first', () => {
    const broken = {
      ...sample,
      kind: 'Evt',
      level: 'Everything',
      auditID: 'not-a-uuid',
      stage: 'Done',
      user: { username: 7, groups: 'system:masters' },
      stageTimestamp: '2024-07-02T17:01:26Z',
      responseObject: { kind: 'Pod' },
      surprise: true,
    };
    const problems = validateAuditEvent(broken);
    for (const fragment of [
      'kind',
      'level',
      'auditID',
      'stage',
      'user.username',
      'user.groups',
      'stageTimestamp',
      'responseObject',
      'surprise',
    ]) {
      expect(
        problems.some((p) => p.includes(fragment)),
        fragment,
      ).toBe(true);
    }
  });

  it('rejects a stage that ends before the request was received', () => {
    const problems = validateAuditEvent({ ...sample, stageTimestamp: '2024-07-02T17:01:25.000000Z' });
    expect(problems).toEqual(['stageTimestamp is before requestReceivedTimestamp']);
  });
});
