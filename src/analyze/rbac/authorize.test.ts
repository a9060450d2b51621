import { describe, expect, it } from 'vitest';
import { authenticatedGroups, RbacAuthorizer, subjectApplies } from './authorize.js';
import {
  type AuthzRequest,
  nonResourceURLMatches,
  resourceMatches,
  ruleAllows,
  selectorMatches,
} from './evaluation.js';
import { loadRbacOrThrow } from './load-rbac.js';

const req = (over: Partial<AuthzRequest>): AuthzRequest => ({
  user: 'alice',
  groups: ['system:authenticated'],
  verb: 'get',
  resourceRequest: true,
  apiGroup: '',
  resource: 'pods',
  subresource: '',
  namespace: 'ns1',
  name: '',
  path: '',
  ...over,
});

describe('evaluation helpers (evaluation_helpers.go)', () => {
  it.each([
    [['*'], 'pods', '', true],
    [['pods'], 'pods', '', true],
    [['pods'], 'pods/log', 'log', false],
    [['pods/log'], 'pods/log', 'log', true],
    [['*/log'], 'pods/log', 'log', true],
    [['*/log'], 'pods', '', false],
    [['*/scale'], 'deployments/scale', 'scale', true],
    [['*/scale'], 'deployments/status', 'status', false],
    // there is no resource/* form: pods/* is compared literally
    [['pods/*'], 'pods/log', 'log', false],
    [['pods/*'], 'pods', '', false],
  ])('resources %j vs %s -> %s', (resources, combined, sub, want) => {
    expect(resourceMatches({ verbs: ['get'], resources }, combined, sub)).toBe(want);
  });

  it.each([
    [['*'], '/anything', true],
    [['/healthz'], '/healthz', true],
    [['/healthz'], '/healthz/etcd', false],
    [['/healthz/*'], '/healthz/etcd', true],
    [['/healthz/*'], '/healthz', false],
    [['/api*'], '/apis/apps', true],
    // strings.TrimRight removes every trailing `*`
    [['/logs**'], '/logs/kube', true],
  ])('nonResourceURLs %j vs %s -> %s', (urls, path, want) => {
    expect(nonResourceURLMatches({ verbs: ['get'], nonResourceURLs: urls }, path)).toBe(want);
  });

  it('a rule needs verb, group, resource and name to match; an empty resourceNames allows every name', () => {
    const rule = { verbs: ['get'], apiGroups: ['apps'], resources: ['deployments'], resourceNames: ['web'] };
    const d = req({ apiGroup: 'apps', resource: 'deployments', name: 'web' });
    expect(ruleAllows(d, rule)).toBe(true);
    expect(ruleAllows({ ...d, name: 'db' }, rule)).toBe(false);
    expect(ruleAllows({ ...d, name: '' }, rule)).toBe(false);
    expect(ruleAllows({ ...d, verb: 'list' }, rule)).toBe(false);
    expect(ruleAllows({ ...d, apiGroup: 'extensions' }, rule)).toBe(false);
    expect(ruleAllows({ ...d, verb: 'GET' }, { ...rule, verbs: ['get'] })).toBe(false);
    expect(ruleAllows({ ...d, name: 'db' }, { ...rule, resourceNames: [] })).toBe(true);
  });

  it('a resource rule never allows a non-resource request and the reverse', () => {
    expect(
      ruleAllows(req({ resourceRequest: false, path: '/healthz' }), {
        verbs: ['*'],
        apiGroups: ['*'],
        resources: ['*'],
      }),
    ).toBe(false);
    expect(ruleAllows(req({}), { verbs: ['*'], nonResourceURLs: ['*'] })).toBe(false);
  });

  it('label selectors: matchLabels and every operator', () => {
    const labels = { 'rbac.example.com/aggregate-to-view': 'true', tier: 'a' };
    expect(selectorMatches({}, labels)).toBe(true);
    expect(selectorMatches({ matchLabels: { tier: 'a' } }, labels)).toBe(true);
    expect(selectorMatches({ matchLabels: { tier: 'b' } }, labels)).toBe(false);
    expect(
      selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['a', 'b'] }] }, labels),
    ).toBe(true);
    expect(
      selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['a'] }] }, labels),
    ).toBe(false);
    expect(
      selectorMatches({ matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, labels),
    ).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: 'zone', operator: 'Exists' }] }, labels)).toBe(false);
    expect(selectorMatches({ matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] }, labels)).toBe(
      true,
    );
  });
});

describe('subjects (rule.go appliesToUser)', () => {
  it('ServiceAccount subjects match the SA username; a RoleBinding SA without namespace means its own', () => {
    const sa = 'system:serviceaccount:ns1:builder';
    expect(subjectApplies({ kind: 'ServiceAccount', namespace: 'ns1', name: 'builder' }, sa, [], '')).toBe(
      true,
    );
    expect(subjectApplies({ kind: 'ServiceAccount', namespace: 'ns2', name: 'builder' }, sa, [], '')).toBe(
      false,
    );
    expect(subjectApplies({ kind: 'ServiceAccount', name: 'builder' }, sa, [], 'ns1')).toBe(true);
    expect(subjectApplies({ kind: 'ServiceAccount', name: 'builder' }, sa, [], '')).toBe(false);
    expect(subjectApplies({ kind: 'User', name: sa }, sa, [], '')).toBe(true);
  });
  it('the authenticator adds system:serviceaccounts and system:serviceaccounts:NS', () => {
    expect(authenticatedGroups('system:serviceaccount:ns1:builder').sort()).toEqual([
      'system:authenticated',
      'system:serviceaccounts',
      'system:serviceaccounts:ns1',
    ]);
    expect(authenticatedGroups('system:anonymous', ['system:unauthenticated'])).toEqual([
      'system:unauthenticated',
    ]);
  });
});

const CLUSTER = `apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: monitoring}
  aggregationRule:
    clusterRoleSelectors:
    - matchLabels: {rbac.example.com/aggregate-to-monitoring: "true"}
  rules: []
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata:
    name: monitoring-endpoints
    labels: {rbac.example.com/aggregate-to-monitoring: "true"}
  rules:
  - {apiGroups: [""], resources: [services, endpoints, pods], verbs: [get, list, watch]}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: pod-reader}
  rules:
  - {apiGroups: [""], resources: [pods, pods/log], verbs: [get, list]}
  - {nonResourceURLs: [/metrics, /logs/*], verbs: [get]}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: mon}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: monitoring}
  subjects:
  - {kind: Group, apiGroup: rbac.authorization.k8s.io, name: system:serviceaccounts:monitoring}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: read-pods, namespace: dev}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}
  subjects:
  - {kind: User, apiGroup: rbac.authorization.k8s.io, name: alice}
  - {kind: ServiceAccount, name: ci}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: dangling, namespace: dev}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: does-not-exist}
  subjects:
  - {kind: Group, apiGroup: rbac.authorization.k8s.io, name: system:authenticated}
`;

describe('RbacAuthorizer', () => {
  const authz = new RbacAuthorizer(loadRbacOrThrow(CLUSTER, 'cluster.yaml').rbac);

  it('fills an aggregated ClusterRole from the roles its selector matches', () => {
    const r = authz.authorize(
      req({
        user: 'system:serviceaccount:monitoring:prom',
        groups: authenticatedGroups('system:serviceaccount:monitoring:prom'),
        verb: 'watch',
        resource: 'endpoints',
        namespace: 'kube-system',
      }),
    );
    expect(r).toMatchObject({
      allowed: true,
      by: { binding: 'mon', role: 'monitoring', roleKind: 'ClusterRole', ruleIndex: 0 },
    });
  });

  it('a RoleBinding to a ClusterRole grants only in its namespace', () => {
    expect(authz.authorize(req({ namespace: 'dev' }))).toMatchObject({
      allowed: true,
      by: {
        bindingKind: 'RoleBinding',
        binding: 'read-pods',
        bindingNamespace: 'dev',
        role: 'pod-reader',
        ruleIndex: 0,
      },
    });
    expect(authz.authorize(req({ namespace: 'prod' })).allowed).toBe(false);
    expect(authz.authorize(req({ namespace: '' })).allowed).toBe(false);
    expect(authz.authorize(req({ namespace: 'dev', subresource: 'log' })).allowed).toBe(true);
    expect(authz.authorize(req({ namespace: 'dev', subresource: 'exec', verb: 'create' })).allowed).toBe(
      false,
    );
  });

  it('non-resource rules of a ClusterRole bound by a RoleBinding never apply (non-resource requests have no namespace)', () => {
    expect(authz.authorize(req({ resourceRequest: false, path: '/metrics', namespace: '' })).allowed).toBe(
      false,
    );
  });

  it('a RoleBinding ServiceAccount subject without namespace is the binding namespace SA', () => {
    expect(
      authz.authorize(req({ user: 'system:serviceaccount:dev:ci', namespace: 'dev', verb: 'list' })).allowed,
    ).toBe(true);
    expect(
      authz.authorize(req({ user: 'system:serviceaccount:other:ci', namespace: 'dev', verb: 'list' }))
        .allowed,
    ).toBe(false);
  });

  it('a binding to a role that does not exist grants nothing', () => {
    expect(authz.authorize(req({ user: 'bob', namespace: 'dev' })).allowed).toBe(false);
  });
});
