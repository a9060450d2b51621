import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readAuditEvents } from '../../model/read-events.js';
import { type RequestRecord, recordFromEvent, requestRecords } from '../request-record.js';
import { loadRbacOrThrow } from './load-rbac.js';
import { reviewRbac } from './review.js';
import { RISK_POLICIES } from './risky-permissions.js';

const FIXTURES = join(import.meta.dirname, '../../../test/fixtures/rbac');
const rbac = loadRbacOrThrow(
  readFileSync(join(FIXTURES, 'cluster-rbac.yaml'), 'utf8'),
  'cluster-rbac.yaml',
).rbac;

async function records(): Promise<RequestRecord[]> {
  const out: RequestRecord[] = [];
  const events = (async function* () {
    for await (const { event } of readAuditEvents(join(FIXTURES, 'denials.jsonl'))) yield event;
  })();
  for await (const r of requestRecords(events)) out.push(r);
  return out;
}

describe('reviewRbac', () => {
  it('per subject: grants with their use, risks with the granting rule and whether they were used', async () => {
    const r = await reviewRbac(await records(), { rbac });
    const dana = r.subjects.find((s) => s.username === 'dana@example.com');
    expect(dana?.grants.map((g) => `${g.binding}#${g.ruleIndex}:${g.used}`)).toEqual([
      'payments-devs#0:1',
      'payments-devs#1:0',
    ]);
    expect(dana?.unusedGrants).toBe(1);
    expect(dana?.wildcardGrants).toBe(1);
    const ids = dana?.risks.map((x) => `${x.id}@${x.namespace}:${x.used}`);
    // `pods` in a rule does not cover pods/ephemeralcontainers or pods/status (ResourceMatches is exact).
    expect(ids).toEqual([
      'pods-exec-attach@payments:false',
      'create-workloads@payments:false',
      'rce-weak-namespace@payments:false',
      'list-secrets@payments:false',
      'obtain-token-weak-namespace@payments:false',
    ]);
    expect(dana?.risks[0]?.grants).toEqual([
      {
        bindingKind: 'RoleBinding',
        binding: 'payments-devs',
        bindingNamespace: 'payments',
        roleKind: 'Role',
        role: 'pod-admin',
        ruleIndex: 0,
      },
      {
        bindingKind: 'RoleBinding',
        binding: 'payments-devs',
        bindingNamespace: 'payments',
        roleKind: 'Role',
        role: 'pod-admin',
        ruleIndex: 0,
      },
    ]);
  });

  it('a used permission says so, with the request that used it', async () => {
    const recs = await records();
    const base = recs.find((x) => x.subject === 'dana@example.com' && x.code === 200) as RequestRecord;
    const exec: RequestRecord = {
      ...base,
      auditID: 'exec-1',
      verb: 'create',
      subresource: 'exec',
      name: 'debug',
    };
    const r = await reviewRbac([...recs, exec], { rbac });
    const risk = r.subjects
      .find((s) => s.username === 'dana@example.com')
      ?.risks.find((x) => x.id === 'pods-exec-attach');
    expect(risk).toMatchObject({ used: true, exampleAuditID: 'exec-1' });
  });

  it('the cluster-admin binding of a subject never seen is reported; seen subjects are not', async () => {
    const r = await reviewRbac(await records(), { rbac });
    expect(r.unseenBindingSubjects.map((u) => `${u.binding}:${u.subject.name}`)).toEqual([
      'old-contractor:contractor@example.com',
    ]);
  });

  it('a cluster-admin subject: every critical risk, a tightened proposal from its use', async () => {
    const recs = await records();
    const base = recs[0] as RequestRecord;
    const admin: RequestRecord = {
      ...base,
      auditID: 'a1',
      subject: 'root',
      subjectGroups: ['system:masters'],
      verb: 'get',
      resource: 'configmaps',
      apiGroup: '',
      namespace: 'kube-system',
      name: 'x',
      code: 200,
    };
    const r = await reviewRbac([admin], { rbac });
    const root = r.subjects.find((s) => s.username === 'root');
    expect(root?.clusterAdmin.map((g) => g.binding)).toEqual(['cluster-admin']);
    const critical = RISK_POLICIES.filter((p) => p.severity === 'critical').map((p) => p.id);
    for (const id of critical)
      expect(
        root?.risks.some((x) => x.id === id),
        id,
      ).toBe(true);
    expect(root?.risks.find((x) => x.id === 'cluster-admin')?.used).toBe(true);
    expect(root?.proposal.flatMap((o) => ('rules' in o ? o.rules : []))).toEqual([
      { verbs: ['get'], apiGroups: [''], resources: ['configmaps'], resourceNames: ['x'] },
    ]);
  });

  it('the demo log through recordFromEvent needs no RBAC match to run', async () => {
    const out: RequestRecord[] = [];
    for await (const { event } of readAuditEvents(
      join(FIXTURES, '../third-party/samples/audit2rbac-demo.log'),
    ))
      out.push(recordFromEvent(event));
    const r = await reviewRbac(out, { rbac });
    expect(r.subjects).toEqual([]);
  });
});
