/**
 * The RBAC authorizer (plugin/pkg/auth/authorizer/rbac/rbac.go) over a loaded RbacSet, with the
 * rule resolution of pkg/registry/rbac/validation/rule.go (VisitRulesFor, appliesTo) and the
 * ClusterRole aggregation of pkg/controller/clusterroleaggregation.
 */
import { type AuthzRequest, ruleAllows, selectorMatches } from './evaluation.js';
import type {
  ClusterRole,
  ClusterRoleBinding,
  PolicyRule,
  RbacSet,
  Role,
  RoleBinding,
  Subject,
} from './types.js';

export type { AuthzRequest } from './evaluation.js';

export interface Grant {
  bindingKind: 'ClusterRoleBinding' | 'RoleBinding';
  binding: string;
  /** The RoleBinding's namespace; '' for a ClusterRoleBinding. */
  bindingNamespace: string;
  roleKind: 'ClusterRole' | 'Role';
  role: string;
  ruleIndex: number;
  rule: PolicyRule;
}

export interface AuthzResult {
  allowed: boolean;
  by?: Grant;
}

export const SERVICE_ACCOUNT_PREFIX = 'system:serviceaccount:';

/** serviceaccount.SplitUsername: `system:serviceaccount:NS:NAME` -> [NS, NAME]. */
export function splitServiceAccount(username: string): [string, string] | null {
  if (!username.startsWith(SERVICE_ACCOUNT_PREFIX)) return null;
  const parts = username.slice(SERVICE_ACCOUNT_PREFIX.length).split(':');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') return null;
  return [parts[0] as string, parts[1] as string];
}

/**
 * rule.go appliesToUser: a User subject by exact name, a Group by membership, a ServiceAccount by
 * its `system:serviceaccount:NS:NAME` username (a ServiceAccount subject without namespace matches
 * nothing). The `system:serviceaccounts[:NS]` groups come from the authenticator, so they are in
 * `groups` like any other group.
 */
export function subjectApplies(
  s: Subject,
  user: string,
  groups: readonly string[],
  bindingNamespace: string,
): boolean {
  if (s.kind === 'User') return s.name === user;
  if (s.kind === 'Group') return groups.includes(s.name);
  // rule.go: a RoleBinding's ServiceAccount subject with no namespace defaults to the binding's.
  const ns = s.namespace ?? bindingNamespace;
  if (ns === '') return false;
  return user === `${SERVICE_ACCOUNT_PREFIX}${ns}:${s.name}`;
}

/** The groups the authenticator adds for a user: service accounts get theirs, everyone system:authenticated. */
export function authenticatedGroups(user: string, groups: readonly string[] = []): string[] {
  const out = new Set(groups);
  const sa = splitServiceAccount(user);
  if (sa) {
    out.add('system:serviceaccounts');
    out.add(`system:serviceaccounts:${sa[0]}`);
  }
  if (user !== 'system:anonymous') out.add('system:authenticated');
  return [...out];
}

/**
 * Fills aggregated ClusterRoles as the clusterrole-aggregation controller does: the rules of every
 * other ClusterRole any selector matches, in name order, without exact duplicates; repeated to a
 * fixed point so aggregates of aggregates fill too. Rules already present (as `kubectl get` shows
 * them) are kept.
 */
export function aggregateClusterRoles(roles: readonly ClusterRole[]): Map<string, PolicyRule[]> {
  const out = new Map<string, PolicyRule[]>();
  for (const r of roles) out.set(r.metadata.name, [...r.rules]);
  const sorted = [...roles].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  const key = (r: PolicyRule) =>
    JSON.stringify([
      r.verbs,
      r.apiGroups ?? [],
      r.resources ?? [],
      r.resourceNames ?? [],
      r.nonResourceURLs ?? [],
    ]);
  for (let changed = true, round = 0; changed && round < roles.length + 1; round++) {
    changed = false;
    for (const agg of roles) {
      const selectors = agg.aggregationRule?.clusterRoleSelectors;
      if (!selectors) continue;
      const rules = out.get(agg.metadata.name) ?? [];
      const seen = new Set(rules.map(key));
      for (const src of sorted) {
        if (src.metadata.name === agg.metadata.name) continue;
        const labels = src.metadata.labels ?? {};
        if (!selectors.some((s) => selectorMatches(s, labels))) continue;
        for (const r of out.get(src.metadata.name) ?? []) {
          const k = key(r);
          if (seen.has(k)) continue;
          seen.add(k);
          rules.push(r);
          changed = true;
        }
      }
      out.set(agg.metadata.name, rules);
    }
  }
  return out;
}

/** An RbacSet indexed for authorization; build once, ask many times. */
export class RbacAuthorizer {
  readonly clusterRoleRules: Map<string, PolicyRule[]>;
  private readonly roles = new Map<string, Role>();
  private readonly roleBindingsByNs = new Map<string, RoleBinding[]>();
  readonly clusterRoleBindings: readonly ClusterRoleBinding[];

  constructor(readonly rbac: RbacSet) {
    this.clusterRoleRules = aggregateClusterRoles(rbac.clusterRoles);
    for (const r of rbac.roles) this.roles.set(`${r.metadata.namespace}/${r.metadata.name}`, r);
    for (const b of rbac.roleBindings) {
      const list = this.roleBindingsByNs.get(b.metadata.namespace) ?? [];
      list.push(b);
      this.roleBindingsByNs.set(b.metadata.namespace, list);
    }
    this.clusterRoleBindings = rbac.clusterRoleBindings;
  }

  /** The rules a roleRef points at; undefined when the role does not exist (rule.go GetRoleReferenceRules errors, the binding grants nothing). */
  rulesOf(kind: 'Role' | 'ClusterRole', name: string, namespace: string): PolicyRule[] | undefined {
    if (kind === 'ClusterRole') return this.clusterRoleRules.get(name);
    return this.roles.get(`${namespace}/${name}`)?.rules;
  }

  roleBindingsIn(namespace: string): readonly RoleBinding[] {
    return this.roleBindingsByNs.get(namespace) ?? [];
  }

  /**
   * Every (binding, role, rule) that applies to the user in the namespace, in rule.go VisitRulesFor
   * order: ClusterRoleBindings first, then the namespace's RoleBindings when the request is namespaced.
   */
  *grantsFor(user: string, groups: readonly string[], namespace: string): Generator<Grant> {
    for (const b of this.clusterRoleBindings) {
      if (!b.subjects.some((s) => subjectApplies(s, user, groups, ''))) continue;
      const rules = this.rulesOf('ClusterRole', b.roleRef.name, '');
      if (!rules) continue;
      for (let i = 0; i < rules.length; i++) {
        yield {
          bindingKind: 'ClusterRoleBinding',
          binding: b.metadata.name,
          bindingNamespace: '',
          roleKind: 'ClusterRole',
          role: b.roleRef.name,
          ruleIndex: i,
          rule: rules[i] as PolicyRule,
        };
      }
    }
    if (namespace === '') return;
    for (const b of this.roleBindingsIn(namespace)) {
      if (!b.subjects.some((s) => subjectApplies(s, user, groups, namespace))) continue;
      const rules = this.rulesOf(b.roleRef.kind, b.roleRef.name, namespace);
      if (!rules) continue;
      for (let i = 0; i < rules.length; i++) {
        yield {
          bindingKind: 'RoleBinding',
          binding: b.metadata.name,
          bindingNamespace: namespace,
          roleKind: b.roleRef.kind,
          role: b.roleRef.name,
          ruleIndex: i,
          rule: rules[i] as PolicyRule,
        };
      }
    }
  }

  /** rbac.go Authorize: allowed by the first rule that allows the request, else no opinion (denied). */
  authorize(req: AuthzRequest): AuthzResult {
    for (const g of this.grantsFor(req.user, req.groups, req.namespace)) {
      if (ruleAllows(req, g.rule)) return { allowed: true, by: g };
    }
    return { allowed: false };
  }
}

/** One-shot authorization; build an RbacAuthorizer to ask many questions. */
export function authorize(rbac: RbacSet | RbacAuthorizer, req: AuthzRequest): AuthzResult {
  return (rbac instanceof RbacAuthorizer ? rbac : new RbacAuthorizer(rbac)).authorize(req);
}
