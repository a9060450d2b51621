/**
 * For a request the RBAC denied: the rule bound to the subject that came closest to allowing it,
 * and what that rule lacks. Closeness counts the attributes a rule matches (evaluation.go's four
 * checks: verb, API group, resource, resource name); a tie goes to the first rule the authorizer visits.
 */
import type { RbacAuthorizer } from '../rbac/authorize.js';
import {
  type AuthzRequest,
  apiGroupMatches,
  nonResourceURLMatches,
  resourceMatches,
  resourceNameMatches,
  ruleAllows,
  verbMatches,
} from '../rbac/evaluation.js';
import type { PolicyRule } from '../rbac/types.js';

export interface ClosestGrant {
  bindingKind: 'ClusterRoleBinding' | 'RoleBinding';
  binding: string;
  bindingNamespace: string;
  roleKind: 'ClusterRole' | 'Role';
  role: string;
  ruleIndex: number;
  rule: PolicyRule;
  /** What the rule would need, e.g. `verb "list"`, `resource "secrets"`. */
  lacks: string[];
}

function missing(req: AuthzRequest, rule: PolicyRule): string[] {
  const out: string[] = [];
  if (!req.resourceRequest) {
    if ((rule.nonResourceURLs ?? []).length === 0)
      return ['a non-resource rule', `nonResourceURL "${req.path}"`];
    if (!verbMatches(rule, req.verb)) out.push(`verb "${req.verb}"`);
    if (!nonResourceURLMatches(rule, req.path)) out.push(`nonResourceURL "${req.path}"`);
    return out;
  }
  if ((rule.resources ?? []).length === 0) return ['a resource rule'];
  const combined = req.subresource === '' ? req.resource : `${req.resource}/${req.subresource}`;
  if (!verbMatches(rule, req.verb)) out.push(`verb "${req.verb}"`);
  if (!apiGroupMatches(rule, req.apiGroup)) out.push(`apiGroup "${req.apiGroup}"`);
  if (!resourceMatches(rule, combined, req.subresource)) out.push(`resource "${combined}"`);
  if (!resourceNameMatches(rule, req.name))
    out.push(req.name === '' ? 'all names (the rule lists resourceNames)' : `resourceName "${req.name}"`);
  return out;
}

export function closestGrant(authz: RbacAuthorizer, req: AuthzRequest): ClosestGrant | undefined {
  let best: ClosestGrant | undefined;
  for (const g of authz.grantsFor(req.user, req.groups, req.namespace)) {
    const lacks = missing(req, g.rule);
    if (best === undefined || lacks.length < best.lacks.length) best = { ...g, lacks };
  }
  return best;
}

export interface ExistingRole {
  kind: 'Role' | 'ClusterRole';
  name: string;
  /** The Role's namespace; '' for a ClusterRole. */
  namespace: string;
  rules: number;
}

const hasWildcard = (r: PolicyRule) =>
  [r.verbs, r.apiGroups ?? [], r.resources ?? [], r.nonResourceURLs ?? []].some((xs) => xs.includes('*'));

/**
 * An existing role that already allows every one of the requests, bound or not: binding it is
 * often a better fix than a new role. Roles with wildcard rules are passed over (binding
 * cluster-admin is never the answer); of the rest, the one with the fewest rules wins.
 */
export function smallestRoleAllowing(
  authz: RbacAuthorizer,
  requests: readonly AuthzRequest[],
): ExistingRole | undefined {
  if (requests.length === 0) return undefined;
  const allows = (rules: readonly PolicyRule[]) =>
    !rules.some(hasWildcard) && requests.every((q) => rules.some((r) => ruleAllows(q, r)));
  let best: ExistingRole | undefined;
  const consider = (c: ExistingRole, rules: readonly PolicyRule[]) => {
    if ((best === undefined || rules.length < best.rules) && allows(rules)) best = c;
  };
  const namespaces = new Set(requests.map((q) => q.namespace));
  for (const [name, rules] of authz.clusterRoleRules) {
    consider({ kind: 'ClusterRole', name, namespace: '', rules: rules.length }, rules);
  }
  if (namespaces.size === 1 && !namespaces.has('')) {
    for (const role of authz.rbac.roles) {
      if (!namespaces.has(role.metadata.namespace)) continue;
      consider(
        {
          kind: 'Role',
          name: role.metadata.name,
          namespace: role.metadata.namespace,
          rules: role.rules.length,
        },
        role.rules,
      );
    }
  }
  return best;
}
