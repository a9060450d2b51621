import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateRbacObject } from '../../../test/fixtures/rbac/validate-rbac-object.js';
import { readAuditEvents } from '../../model/read-events.js';
import { RbacAuthorizer } from '../rbac/authorize.js';
import type { AuthzRequest } from '../rbac/evaluation.js';
import { loadRbacOrThrow } from '../rbac/load-rbac.js';
import {
  addRbacObject,
  emptyRbac,
  mergeRbac,
  type PolicyRule,
  RBAC_API_VERSION,
  RBAC_GROUP,
  type RbacSet,
} from '../rbac/types.js';
import { type RequestRecord, requestRecords } from '../request-record.js';
import { classifyDenial } from './classify-denial.js';
import { reportDenials } from './denials-report.js';

const FIXTURES = join(import.meta.dirname, '../../../test/fixtures/rbac');

async function records(): Promise<RequestRecord[]> {
  const out: RequestRecord[] = [];
  const events = (async function* () {
    for await (const { event } of readAuditEvents(join(FIXTURES, 'denials.jsonl'))) yield event;
  })();
  for await (const r of requestRecords(events)) out.push(r);
  return out;
}

const SA = 'system:serviceaccount:ci:deployer';

describe('reportDenials', () => {
  it('classifies rbac, admission (which), authentication and other', async () => {
    const r = await reportDenials(await records());
    expect(r.byClass).toEqual({ rbac: 10, admission: 5, authentication: 1, other: 1 });
    const admission = r.groups
      .filter((g) => g.class === 'admission')
      .map((g) => `${g.subject} ${g.admission?.kind} ${g.admission?.name}`);
    expect(admission.sort()).toEqual([
      'dana@example.com PodSecurity restricted:latest',
      'dana@example.com ResourceQuota compute-resources',
      'dana@example.com ValidatingWebhook validation.gatekeeper.sh',
      'system:serviceaccount:kube-system:replicaset-controller PodSecurity restricted:latest',
    ]);
    const cm = r.groups.find((g) => g.subject === SA && g.resource === 'configmaps');
    expect(cm).toMatchObject({
      class: 'rbac',
      count: 4,
      verb: 'list',
      namespace: 'app1',
      sourceIPs: ['10.0.3.4'],
      codes: [403],
    });
    expect(cm?.message).toContain('cannot list resource "configmaps"');
  });

  it('PodSecurity rejections are admission and get no RBAC fix', async () => {
    const r = await reportDenials(await records());
    const rs = r.subjects.find((s) => s.subject.endsWith('replicaset-controller'));
    expect(rs).toMatchObject({ byClass: { rbac: 0, admission: 2 }, fix: null });
    expect(r.subjects.find((s) => s.subject === 'dana@example.com')?.fix).toBeNull();
  });

  it('the smallest fix for the service account: a ClusterRole for the cluster-scoped resource, a Role per namespace', async () => {
    const r = await reportDenials(await records());
    const s = r.subjects.find((x) => x.subject === SA);
    expect(s?.suspicious).toEqual([]);
    const objs = s?.fix?.objects ?? [];
    expect(objs.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`)).toEqual([
      'ClusterRole//kaudit-fix:sa:ci:deployer',
      'ClusterRoleBinding//kaudit-fix:sa:ci:deployer',
      'Role/app1/kaudit-fix:sa:ci:deployer',
      'RoleBinding/app1/kaudit-fix:sa:ci:deployer',
      'Role/app2/kaudit-fix:sa:ci:deployer',
      'RoleBinding/app2/kaudit-fix:sa:ci:deployer',
    ]);
    expect(objs.flatMap((o) => ('rules' in o ? o.rules : []))).toEqual([
      { verbs: ['list'], apiGroups: ['storage.k8s.io'], resources: ['storageclasses'] },
      { verbs: ['list'], apiGroups: [''], resources: ['configmaps'] },
      { verbs: ['get'], apiGroups: [''], resources: ['secrets'], resourceNames: ['web-tls'] },
      { verbs: ['patch'], apiGroups: ['apps'], resources: ['deployments/scale'], resourceNames: ['api'] },
    ]);
    for (const o of objs) validateRbacObject(o);
  });

  it('anonymous probing is suspicious and gets no fix', async () => {
    const r = await reportDenials(await records());
    const a = r.subjects.find((x) => x.subject === 'system:anonymous');
    expect(a?.suspicious).toEqual(['anonymous user', 'never seen succeeding']);
    expect(a?.fix).toBeNull();
  });

  it('many distinct resources denied is suspicious', async () => {
    const r = await reportDenials(await records(), { suspiciousResources: 4 });
    expect(r.subjects.find((x) => x.subject === SA)?.suspicious).toEqual(['denied on 4 distinct resources']);
  });

  it('with the cluster RBAC: the closest role and what it lacks', async () => {
    const rbac = loadRbacOrThrow(
      readFileSync(join(FIXTURES, 'cluster-rbac.yaml'), 'utf8'),
      'cluster-rbac.yaml',
    ).rbac;
    const r = await reportDenials(await records(), { rbac });
    const cm = r.groups.find((g) => g.subject === SA && g.resource === 'configmaps');
    expect(cm?.closest).toMatchObject({
      binding: 'deployer',
      bindingNamespace: 'app1',
      role: 'deployer',
      ruleIndex: 1,
      lacks: ['verb "list"'],
    });
    // no existing role covers storageclasses and deployments/scale as well
    expect(r.subjects.find((s) => s.subject === SA)?.fix?.existingRole).toBeUndefined();
    const scale = r.groups.find((g) => g.subject === SA && g.subresource === 'scale');
    // nothing is bound to the SA in app2
    expect(scale?.closest).toBeNull();
  });
});

describe('classifyDenial', () => {
  it('a 403 without annotation whose message is the authorizer is rbac (logs before 1.11)', () => {
    const base = { code: 403, decision: null, annotations: {}, message: '' } as unknown as RequestRecord;
    expect(classifyDenial({ ...base, decision: 'forbid' }).class).toBe('rbac');
    expect(
      classifyDenial({
        ...base,
        message: 'unable to create new content in namespace gone because it is being terminated',
      }),
    ).toEqual({
      class: 'admission',
      admission: { kind: 'NamespaceLifecycle', name: 'gone' },
    });
    expect(
      classifyDenial({
        ...base,
        decision: 'allow',
        message: 'pods "p" is forbidden: maximum cpu usage per Container is 1, but limit is 2',
      }).admission?.kind,
    ).toBe('LimitRange');
    expect(classifyDenial({ ...base, code: 409, message: 'Operation cannot be fulfilled' }).class).toBe(
      'other',
    );
  });
});

// Round trip: a fix added to the RBAC it came from allows every denied request and nothing else.
const VERBS = ['get', 'list', 'watch', 'create', 'delete', 'patch'];
const RESOURCES: [string, string, string][] = [
  ['', 'pods', ''],
  ['', 'pods', 'log'],
  ['', 'secrets', ''],
  ['apps', 'deployments', ''],
  ['apps', 'deployments', 'scale'],
  ['', 'nodes', ''],
];
const NAMESPACES = ['a', 'b', 'c'];
const NAMES = ['', 'x', 'y'];
const USER = 'system:serviceaccount:a:bot';
const GROUPS = ['system:serviceaccounts', 'system:serviceaccounts:a', 'system:authenticated'];

function universe(): AuthzRequest[] {
  const out: AuthzRequest[] = [];
  for (const verb of VERBS)
    for (const [apiGroup, resource, subresource] of RESOURCES)
      for (const namespace of resource === 'nodes' ? [''] : ['', ...NAMESPACES])
        for (const name of verb === 'create' && subresource === '' ? [''] : NAMES)
          out.push({
            user: USER,
            groups: GROUPS,
            verb,
            resourceRequest: true,
            apiGroup,
            resource,
            subresource,
            namespace,
            name,
            path: '',
          });
  return out;
}
const ALL = universe();

const ruleArb: fc.Arbitrary<PolicyRule> = fc.record({
  verbs: fc.subarray([...VERBS, '*'], { minLength: 1 }),
  apiGroups: fc.subarray(['', 'apps', '*'], { minLength: 1 }),
  resources: fc.subarray(['pods', 'pods/log', 'secrets', 'deployments', '*/scale', 'nodes', '*'], {
    minLength: 1,
  }),
  resourceNames: fc.subarray(['x', 'y']),
});
const rbacArb: fc.Arbitrary<RbacSet> = fc
  .record({
    clusterRules: fc.array(ruleArb, { maxLength: 2 }),
    nsRules: fc.array(ruleArb, { maxLength: 2 }),
    ns: fc.constantFrom(...NAMESPACES),
  })
  .map(({ clusterRules, nsRules, ns }) => {
    const s = emptyRbac();
    const ref = (kind: 'Role' | 'ClusterRole', name: string) => ({ apiGroup: RBAC_GROUP, kind, name });
    const subjects = [{ kind: 'ServiceAccount' as const, namespace: 'a', name: 'bot' }];
    addRbacObject(s, {
      apiVersion: RBAC_API_VERSION,
      kind: 'ClusterRole',
      metadata: { name: 'c' },
      rules: clusterRules,
    });
    addRbacObject(s, {
      apiVersion: RBAC_API_VERSION,
      kind: 'ClusterRoleBinding',
      metadata: { name: 'c' },
      roleRef: ref('ClusterRole', 'c'),
      subjects,
    });
    addRbacObject(s, {
      apiVersion: RBAC_API_VERSION,
      kind: 'Role',
      metadata: { name: 'r', namespace: ns },
      rules: nsRules,
    });
    addRbacObject(s, {
      apiVersion: RBAC_API_VERSION,
      kind: 'RoleBinding',
      metadata: { name: 'r', namespace: ns },
      roleRef: ref('Role', 'r'),
      subjects,
    });
    return s;
  });

function toRecord(q: AuthzRequest, i: number): RequestRecord {
  return {
    auditID: `id-${i}`,
    stage: 'ResponseComplete',
    time: '2026-01-01T00:00:00Z',
    username: q.user,
    groups: [...q.groups],
    impersonatedUser: null,
    impersonatedGroups: null,
    subject: q.user,
    subjectGroups: [...q.groups],
    verb: q.verb,
    resourceRequest: true,
    apiGroup: q.apiGroup,
    apiVersion: 'v1',
    resource: q.resource,
    subresource: q.subresource,
    namespace: q.namespace,
    name: q.name,
    nonResourceURL: '',
    code: 403,
    decision: 'forbid',
    reason: '',
    message: '',
    statusReason: 'Forbidden',
    annotations: {},
    sourceIP: '',
    sourceIPs: [],
    userAgent: '',
  };
}

/** The oracle: a request is inside the proposal when it is one of the denied requests, or widened the way the fix says it widens (no name = every name; a resource denied in two namespaces, or cluster-wide, = every namespace). */
function insideProposal(q: AuthzRequest, denied: AuthzRequest[]): boolean {
  return denied.some((d) => {
    if (
      d.verb !== q.verb ||
      d.apiGroup !== q.apiGroup ||
      d.resource !== q.resource ||
      d.subresource !== q.subresource
    )
      return false;
    if (d.name !== '' && d.name !== q.name) return false;
    const multiNs = denied.some(
      (o) =>
        o.verb === d.verb &&
        o.apiGroup === d.apiGroup &&
        o.resource === d.resource &&
        o.subresource === d.subresource &&
        o.namespace !== '' &&
        d.namespace !== '' &&
        o.namespace !== d.namespace &&
        o.name === d.name,
    );
    return d.namespace === '' || multiNs || d.namespace === q.namespace;
  });
}

describe('denial fixes, round trip (property)', () => {
  it('the fix plus the RBAC allows every denied request and nothing outside the proposal', async () => {
    await fc.assert(
      fc.asyncProperty(
        rbacArb,
        fc.array(fc.nat(ALL.length - 1), { minLength: 1, maxLength: 6 }),
        async (rbac, picks) => {
          const before = new RbacAuthorizer(rbac);
          const denied = [...new Set(picks)]
            .map((i) => ALL[i] as AuthzRequest)
            .filter((q) => !before.authorize(q).allowed);
          const withSuccess = [
            ...denied.map(toRecord),
            { ...toRecord(ALL[0] as AuthzRequest, 999), code: 200, decision: 'allow' as const },
          ];
          const report = await reportDenials(withSuccess, { rbac });
          const fix = report.subjects[0]?.fix;
          if (denied.length === 0) {
            expect(fix ?? null).toBeNull();
            return;
          }
          const fixSet = emptyRbac();
          for (const o of fix?.objects ?? []) addRbacObject(fixSet, o);
          const after = new RbacAuthorizer(mergeRbac(rbac, fixSet));
          for (const q of denied) expect(after.authorize(q).allowed).toBe(true);
          for (const q of ALL) {
            if (after.authorize(q).allowed && !before.authorize(q).allowed)
              expect(insideProposal(q, denied)).toBe(true);
          }
        },
      ),
      { seed: 17, numRuns: 300 },
    );
  });
});

describe('an existing role that already allows the denials', () => {
  it('is named beside the fix, the one with fewest rules and no wildcards', async () => {
    const rbac = loadRbacOrThrow(
      readFileSync(join(FIXTURES, 'cluster-rbac.yaml'), 'utf8'),
      'cluster-rbac.yaml',
    ).rbac;
    const only = (await records()).filter(
      (x) => x.subject !== SA || x.resource === 'configmaps' || x.resource === 'secrets' || x.code === 200,
    );
    const r = await reportDenials(only, { rbac });
    expect(r.subjects.find((s) => s.subject === SA)?.fix?.existingRole).toEqual({
      kind: 'ClusterRole',
      name: 'config-reader',
      namespace: '',
      rules: 1,
    });
  });
});
