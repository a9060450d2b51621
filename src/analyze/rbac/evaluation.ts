/**
 * Rule matching exactly as kube-apiserver does it: pkg/apis/rbac/v1/evaluation_helpers.go
 * (VerbMatches, APIGroupMatches, ResourceMatches, ResourceNameMatches, NonResourceURLMatches) and
 * plugin/pkg/auth/authorizer/rbac/rbac.go (RuleAllows).
 */
import type { LabelSelector, PolicyRule } from './types.js';

/** The authorizer's view of a request (k8s.io/apiserver authorizer.Attributes). */
export interface AuthzRequest {
  user: string;
  groups: readonly string[];
  verb: string;
  resourceRequest: boolean;
  apiGroup: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  /** The URL path, for non-resource requests. */
  path: string;
}

// evaluation_helpers.go VerbMatches: `*` or the exact verb; verbs are case-sensitive.
export function verbMatches(rule: PolicyRule, verb: string): boolean {
  return rule.verbs.some((v) => v === '*' || v === verb);
}

export function apiGroupMatches(rule: PolicyRule, group: string): boolean {
  return (rule.apiGroups ?? []).some((g) => g === '*' || g === group);
}

/**
 * evaluation_helpers.go ResourceMatches: `*` matches everything, `resource/subresource` matches
 * exactly, `*\/subresource` matches that subresource of any resource. There is no `resource/*`:
 * `pods/*` matches only a subresource literally named `*`, and `pods` does not match `pods/log`.
 */
export function resourceMatches(rule: PolicyRule, combined: string, subresource: string): boolean {
  for (const r of rule.resources ?? []) {
    if (r === '*' || r === combined) return true;
    if (subresource === '') continue;
    if (r.length === subresource.length + 2 && r.startsWith('*/') && r.endsWith(subresource)) return true;
  }
  return false;
}

// evaluation_helpers.go ResourceNameMatches: no names means every name; otherwise exact.
export function resourceNameMatches(rule: PolicyRule, name: string): boolean {
  const names = rule.resourceNames ?? [];
  return names.length === 0 || names.includes(name);
}

/** evaluation_helpers.go NonResourceURLMatches: `*`, the exact path, or a prefix ending in `*`. */
export function nonResourceURLMatches(rule: PolicyRule, path: string): boolean {
  for (const u of rule.nonResourceURLs ?? []) {
    if (u === '*' || u === path) return true;
    // strings.TrimRight drops every trailing `*`, so `/foo**` is the prefix `/foo`.
    if (u.endsWith('*') && path.startsWith(u.replace(/\*+$/, ''))) return true;
  }
  return false;
}

/** rbac.go RuleAllows. */
export function ruleAllows(req: AuthzRequest, rule: PolicyRule): boolean {
  if (req.resourceRequest) {
    const combined = req.subresource === '' ? req.resource : `${req.resource}/${req.subresource}`;
    return (
      verbMatches(rule, req.verb) &&
      apiGroupMatches(rule, req.apiGroup) &&
      resourceMatches(rule, combined, req.subresource) &&
      resourceNameMatches(rule, req.name)
    );
  }
  return verbMatches(rule, req.verb) && nonResourceURLMatches(rule, req.path);
}

/**
 * apimachinery labels selector semantics (metav1.LabelSelectorAsSelector): every matchLabels pair
 * and every expression must hold; an empty selector matches everything.
 */
export function selectorMatches(sel: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) {
    if (labels[k] !== v) return false;
  }
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const val = labels[e.key];
    const values = e.values ?? [];
    if (e.operator === 'In' && !(has && values.includes(val ?? ''))) return false;
    if (e.operator === 'NotIn' && has && values.includes(val ?? '')) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}
