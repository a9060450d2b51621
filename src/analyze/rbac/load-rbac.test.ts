import { describe, expect, it } from 'vitest';
import { UserError } from '../../model/errors.js';
import { loadRbac, loadRbacOrThrow } from './load-rbac.js';

describe('loadRbac', () => {
  it('reads a v1 List as kubectl get -o yaml prints it', () => {
    const { rbac, diagnostics } = loadRbac(
      `apiVersion: v1
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: view}
  rules:
  - apiGroups: [""]
    resources: [pods]
    verbs: [get]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: b, namespace: ns1}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
  subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: alice}]
kind: List
metadata: {resourceVersion: ""}
`,
      'rbac.yaml',
    );
    expect(diagnostics).toEqual([]);
    expect(rbac.clusterRoles.map((r) => r.metadata.name)).toEqual(['view']);
    expect(rbac.roleBindings[0]?.subjects).toEqual([
      { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'alice' },
    ]);
  });

  it('reports every problem with its line and field', () => {
    const { diagnostics } = loadRbac(
      `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r, namespace: ns1}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: []
- nonResourceURLs: [/healthz]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}
subjects:
- {kind: Robot, name: x}
`,
      'bad.yaml',
    );
    expect(diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.line} ${d.path}`)).toEqual([
      '7 rules[0].verbs',
      '8 rules[1].nonResourceURLs',
      '16 subjects[0].kind',
      '14 roleRef.kind',
    ]);
  });

  it('a file that is not RBAC is a UserError KAUDIT_RBAC_INVALID naming the file and line', () => {
    let err: unknown;
    try {
      loadRbacOrThrow('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n', 'cm.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).code).toBe('KAUDIT_RBAC_INVALID');
    expect((err as UserError).message).toContain('cm.yaml:2');
    expect((err as UserError).message).toContain('kind "ConfigMap": not an RBAC object');
    expect(() => loadRbacOrThrow('{{{', 'x.yaml')).toThrow(/not YAML/);
    expect(() => loadRbacOrThrow('', 'empty.yaml')).toThrow(/no Role, ClusterRole/);
  });

  it('reads kubectl get -o json output too', () => {
    const json = JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'Role',
          metadata: { name: 'r', namespace: 'ns1' },
          rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }],
        },
      ],
    });
    const { rbac, diagnostics } = loadRbac(json, 'rbac.json');
    expect(diagnostics).toEqual([]);
    expect(rbac.roles[0]?.metadata).toEqual({ name: 'r', namespace: 'ns1' });
  });
});
