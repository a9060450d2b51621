import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateRbacObject } from '../../../test/fixtures/rbac/validate-rbac-object.js';
import { readAuditEvents } from '../../model/read-events.js';
import { type RequestRecord, recordFromEvent } from '../request-record.js';
import { RbacAuthorizer } from './authorize.js';
import { generateRbac } from './generate.js';
import { loadRbacOrThrow } from './load-rbac.js';
import { authzRequestOf } from './subjects.js';
import { addRbacObject, emptyRbac, type RbacObject } from './types.js';

const DEMO = join(import.meta.dirname, '../../../test/fixtures/third-party/samples/audit2rbac-demo.log');

async function demoRecords(): Promise<RequestRecord[]> {
  const out: RequestRecord[] = [];
  for await (const { event } of readAuditEvents(DEMO)) out.push(recordFromEvent(event));
  return out;
}

function rulesOf(objects: RbacObject[]) {
  return objects.flatMap((o) => ('rules' in o ? o.rules : []));
}

describe('generateRbac over audit2rbac demo log', () => {
  it('--user alice: a Role and RoleBinding in ns1 for get/list/watch of configmaps, pods, secrets, nothing cluster-scoped', async () => {
    const r = await generateRbac(await demoRecords(), {
      select: { subjects: [{ kind: 'User', name: 'alice', apiGroup: 'rbac.authorization.k8s.io' }] },
    });
    const objs = r.objects;
    expect(objs.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}`)).toEqual([
      'Role/ns1',
      'RoleBinding/ns1',
    ]);
    expect(rulesOf(objs)).toEqual([
      { verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['configmaps', 'pods', 'secrets'] },
    ]);
    const binding = objs[1];
    expect(binding && 'subjects' in binding ? binding.subjects : []).toEqual([
      { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'alice' },
    ]);
    for (const o of objs) validateRbacObject(o);
    expect(objs[0]?.metadata.labels?.['kaudit.io/generated-for']).toBe('alice');
  });

  it('bob: discovery is left to system:discovery; pods listed in two namespaces become a ClusterRole rule', async () => {
    const r = await generateRbac(await demoRecords(), {
      select: { subjects: [{ kind: 'User', name: 'bob' }] },
    });
    const rules = rulesOf(r.objects);
    expect(rules.some((x) => (x.nonResourceURLs ?? []).length > 0)).toBe(false);
    expect(r.objects.map((o) => o.kind)).toEqual(['ClusterRole', 'ClusterRoleBinding']);
    expect(rules).toContainEqual({
      verbs: ['get', 'list', 'watch'],
      apiGroups: [''],
      resources: ['nodes', 'pods'],
    });
    for (const o of r.objects) validateRbacObject(o);
  });

  it('without --expand-multi-namespace bob gets one Role per namespace and nodes in a ClusterRole', async () => {
    const r = await generateRbac(await demoRecords(), {
      select: { subjects: [{ kind: 'User', name: 'bob' }] },
      expandMultiNamespace: false,
      expandVerbs: false,
    });
    expect(r.objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}`)).toEqual([
      'ClusterRole/',
      'ClusterRoleBinding/',
      'Role/default',
      'RoleBinding/default',
      'Role/ns1',
      'RoleBinding/ns1',
    ]);
    expect(rulesOf(r.objects)[0]).toEqual({ verbs: ['list'], apiGroups: [''], resources: ['nodes'] });
  });

  it('--all: one set per subject; the service account is bound as a ServiceAccount', async () => {
    const r = await generateRbac(await demoRecords(), { select: { all: true } });
    // system:admin only impersonated others: the authorizer never checked it, so it gets nothing.
    expect(r.subjects.map((s) => `${s.subject.kind}:${s.subject.name}`)).toEqual([
      'ServiceAccount:sa1',
      'User:alice',
      'User:bob',
    ]);
    const sa = r.subjects.find((s) => s.subject.kind === 'ServiceAccount');
    const crb = sa?.objects.find((o) => o.kind === 'ClusterRoleBinding');
    expect(crb && 'subjects' in crb ? crb.subjects : []).toEqual([
      { kind: 'ServiceAccount', namespace: 'ns1', name: 'sa1' },
    ]);
    for (const o of r.objects) validateRbacObject(o);
  });

  it('--rbac: generates only what the existing RBAC lacks', async () => {
    const existing = loadRbacOrThrow(
      `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: cm-reader, namespace: ns1}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-cm, namespace: ns1}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-reader}
subjects:
- {kind: User, apiGroup: rbac.authorization.k8s.io, name: alice}
`,
      'existing.yaml',
    ).rbac;
    const r = await generateRbac(await demoRecords(), {
      select: { subjects: [{ kind: 'User', name: 'alice' }] },
      existing,
    });
    expect(r.subjects[0]?.alreadyAllowed).toBe(1);
    expect(rulesOf(r.objects)).toEqual([
      { verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['pods', 'secrets'] },
    ]);
    // The generated objects and the existing RBAC together allow all of alice's requests.
    const both = emptyRbac();
    for (const o of [...existing.roles, ...existing.roleBindings, ...r.objects]) addRbacObject(both, o);
    const authz = new RbacAuthorizer(both);
    for (const rec of (await demoRecords()).filter((x) => x.subject === 'alice')) {
      expect(authz.authorize(authzRequestOf(rec)).allowed).toBe(true);
    }
  });

  it('create is never given resourceNames', async () => {
    const base = (await demoRecords())[0] as RequestRecord;
    const rec: RequestRecord = {
      ...base,
      subject: 'carol',
      verb: 'create',
      resource: 'configmaps',
      namespace: 'ns2',
      name: 'made-by-carol',
    };
    const r = await generateRbac([rec], { select: { subjects: [{ kind: 'User', name: 'carol' }] } });
    expect(rulesOf(r.objects)).toEqual([{ verbs: ['create'], apiGroups: [''], resources: ['configmaps'] }]);
  });

  it('non-resource URLs become ClusterRole rules; discovery is left out; --group binds the group', async () => {
    const base = (await demoRecords())[0] as RequestRecord;
    const nr = (path: string, user: string): RequestRecord => ({
      ...base,
      subject: user,
      subjectGroups: ['monitoring', 'system:authenticated'],
      resourceRequest: false,
      verb: 'get',
      resource: '',
      namespace: '',
      nonResourceURL: path,
      code: 200,
    });
    const r = await generateRbac(
      [nr('/metrics', 'prom-1'), nr('/metrics', 'prom-2'), nr('/version', 'prom-1')],
      {
        select: { subjects: [{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'monitoring' }] },
      },
    );
    expect(r.objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'ClusterRole/kaudit:group:monitoring',
      'ClusterRoleBinding/kaudit:group:monitoring',
    ]);
    expect(rulesOf(r.objects)).toEqual([{ verbs: ['get'], nonResourceURLs: ['/metrics'] }]);
    for (const o of r.objects) validateRbacObject(o);
  });
});

describe('generateRbac (property)', () => {
  const verbs = ['get', 'list', 'create', 'patch'];
  const resources: [string, string, string][] = [
    ['', 'pods', ''],
    ['', 'pods', 'exec'],
    ['apps', 'deployments', 'scale'],
    ['', 'nodes', ''],
  ];
  const namespaces = ['', 'a', 'b'];
  const names = ['', 'x', 'y'];
  const base = {
    auditID: 'p',
    stage: 'ResponseComplete' as const,
    time: '2026-01-01T00:00:00Z',
    username: 'u',
    groups: [],
    impersonatedUser: null,
    impersonatedGroups: null,
    subject: 'u',
    subjectGroups: ['system:authenticated'],
    apiVersion: 'v1',
    nonResourceURL: '',
    code: 200,
    decision: null,
    reason: '',
    message: '',
    statusReason: '',
    annotations: {},
    sourceIP: '',
    sourceIPs: [],
    userAgent: '',
    resourceRequest: true,
  };
  const all: RequestRecord[] = [];
  for (const verb of verbs)
    for (const [apiGroup, resource, subresource] of resources)
      for (const namespace of resource === 'nodes' ? [''] : namespaces)
        for (const name of names)
          all.push({ ...base, verb, apiGroup, resource, subresource, namespace, name });

  it('without expansions, allows every observed request and only what they name', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.nat(all.length - 1), { minLength: 1, maxLength: 8 }),
        async (picks) => {
          const seen = picks.map((i) => all[i] as RequestRecord);
          const r = await generateRbac(seen, {
            select: { subjects: [{ kind: 'User', name: 'u' }] },
            expandVerbs: false,
            expandMultiName: false,
            expandMultiNamespace: false,
          });
          const set = emptyRbac();
          for (const o of r.objects) {
            validateRbacObject(o);
            addRbacObject(set, o);
          }
          const authz = new RbacAuthorizer(set);
          const q = (x: RequestRecord) => authzRequestOf(x);
          for (const x of seen) expect(authz.authorize(q(x)).allowed).toBe(true);
          // Exact up to RBAC's own meaning: an unnamed request's rule covers every name, a
          // cluster-wide request's rule every namespace, and create is never limited by name.
          const covered = (x: RequestRecord) =>
            seen.some((o) => {
              const oq = q(o);
              const xq = q(x);
              return (
                oq.verb === xq.verb &&
                oq.apiGroup === xq.apiGroup &&
                oq.resource === xq.resource &&
                oq.subresource === xq.subresource &&
                (oq.name === '' || oq.name === xq.name) &&
                (oq.namespace === '' || oq.namespace === xq.namespace)
              );
            });
          for (const x of all) if (authz.authorize(q(x)).allowed) expect(covered(x)).toBe(true);
        },
      ),
      { seed: 42, numRuns: 200 },
    );
  });
});
