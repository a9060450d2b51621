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
