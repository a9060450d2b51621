import type { Level, Stage } from '../model/event.js';
import { STAGES } from '../model/event.js';
import { type PolicyFeatures, policyFeatures } from './kube-version.js';
import type { AuditDecision, GroupResources, Policy, PolicyRule, RequestAttributes } from './types.js';

/** The set union of stage lists, in the canonical stage order. */
export function unionStages(...lists: ReadonlyArray<readonly string[] | null | undefined>): Stage[] {
  const seen = new Set<string>();
  for (const l of lists) for (const s of l ?? []) seen.add(s);
  return STAGES.filter((s) => seen.has(s));
}

/** Every stage not in `stages` (kube-apiserver util.go InvertStages). */
export function invertStages(stages: readonly string[]): Stage[] {
  return STAGES.filter((s) => !stages.includes(s));
}

/** nonResourceURLs: `*` matches all, else exact, else a trailing `*` is a prefix match (checker.go pathMatches). */
export function pathMatches(path: string, spec: string): boolean {
  if (spec === '*' || spec === path) return true;
  return spec.endsWith('*') && path.startsWith(spec.replace(/\*+$/, ''));
}

function resourceEntryMatches(gr: GroupResources, a: RequestAttributes, f: PolicyFeatures): boolean {
  const group = gr.group ?? '';
  if (group !== a.apiGroup && !(f.groupWildcard && group === '*')) return false;
  const resources = gr.resources ?? [];
  // A group entry without resources matches every resource and subresource of the group.
  if (resources.length === 0) return true;
  const names = gr.resourceNames ?? [];
  if (names.length > 0 && !names.includes(a.name)) return false;
  const combined = a.subresource === '' ? a.resource : `${a.resource}/${a.subresource}`;
  return resources.some(
    (res) =>
      res === '*' ||
      res === combined ||
      (a.subresource !== '' && res.startsWith('*/') && res.slice(2) === a.subresource) ||
      // checker.go: "pods/*" also matches the bare resource "pods".
      (res.endsWith('/*') && res.slice(0, -2) === a.resource),
  );
}

/** Whether one rule matches the request, exactly as kube-apiserver's checker.go ruleMatches. */
export function ruleMatches(
  rule: PolicyRule,
  a: RequestAttributes,
  f: PolicyFeatures = policyFeatures(),
): boolean {
  const users = rule.users ?? [];
  if (users.length > 0 && (a.user === null || !users.includes(a.user.username))) return false;
  const groups = rule.userGroups ?? [];
  if (groups.length > 0 && (a.user === null || !a.user.groups.some((g) => groups.includes(g)))) return false;
  const verbs = rule.verbs ?? [];
  if (verbs.length > 0 && !verbs.includes(a.verb)) return false;
  const namespaces = rule.namespaces ?? [];
  const resources = rule.resources ?? [];
  // A rule with namespaces or resources only ever matches resource requests.
  if (namespaces.length > 0 || resources.length > 0) {
    if (!a.resourceRequest) return false;
    // "" selects cluster-scoped requests, whose namespace is empty.
    if (namespaces.length > 0 && !namespaces.includes(a.namespace)) return false;
    return resources.length === 0 || resources.some((gr) => resourceEntryMatches(gr, a, f));
  }
  const urls = rule.nonResourceURLs ?? [];
  if (urls.length > 0) return !a.resourceRequest && urls.some((u) => pathMatches(a.path, u));
  return true;
}

/** Decides level, stages and managed-field omission for one request: first matching rule wins. */
export function evaluatePolicy(
  policy: Policy,
  a: RequestAttributes,
  f: PolicyFeatures = policyFeatures(),
): AuditDecision {
  const policyOmitManagedFields = f.omitManagedFields && policy.omitManagedFields === true;
  for (const [i, rule] of policy.rules.entries()) {
    if (!ruleMatches(rule, a, f)) continue;
    return {
      level: rule.level as Level,
      // checker.go: the policy-wide omitStages are added to every rule's own.
      omitStages: unionStages(policy.omitStages, rule.omitStages),
      // A rule's omitManagedFields, even false, overrides the policy default.
      omitManagedFields:
        f.omitManagedFields && rule.omitManagedFields !== undefined
          ? rule.omitManagedFields
          : policyOmitManagedFields,
      rule: i,
    };
  }
  return {
    level: 'None',
    omitStages: unionStages(policy.omitStages),
    omitManagedFields: policyOmitManagedFields,
    rule: null,
  };
}
