/**
 * `kaudit rbac review`: the cluster's RBAC held against what each subject was seen doing. Per
 * subject: every rule granted to it and how often it was used, wildcard grants, cluster-admin
 * bindings, the risky permissions of risky-permissions.ts with the bindings and rules that grant
 * them and whether the subject used them in the window, and a tightened proposal from observed use.
 * Also: bindings whose subjects were never seen.
 */
import type { RecordSource, RequestRecord } from '../request-record.js';
import { authenticatedGroups, type Grant, RbacAuthorizer, subjectApplies } from './authorize.js';
import { type AuthzRequest, ruleAllows } from './evaluation.js';
import { generateRbac } from './generate.js';
import {
  PRIVILEGED_NAMESPACES,
  probeRequest,
  RISK_POLICIES,
  type RiskPolicy,
  type RiskScope,
  type RiskSeverity,
  requestUsesProbe,
} from './risky-permissions.js';
import { authzRequestOf, subjectKey, subjectLabel, subjectOfUser } from './subjects.js';
import type { PolicyRule, RbacObject, RbacSet, Subject } from './types.js';

export interface ReviewOptions {
  rbac: RbacSet;
  /** Review only these usernames (default: every user and service account seen). */
  users?: string[];
  /** Report never-seen binding subjects named `system:*` too (built-in components; default off). */
  includeSystemSubjects?: boolean;
}

export interface GrantRef {
  bindingKind: Grant['bindingKind'];
  binding: string;
  bindingNamespace: string;
  roleKind: Grant['roleKind'];
  role: string;
  ruleIndex: number;
}

export interface GrantUse extends GrantRef {
  rule: PolicyRule;
  /** Successful requests of the subject this rule allowed (the first rule the authorizer found). */
  used: number;
  wildcard: boolean;
}

export interface RiskFinding {
  id: string;
  severity: RiskSeverity;
  title: string;
  scope: RiskScope;
  /** Where it holds: '' cluster-wide (every namespace), else the namespace. */
  namespace: string;
  source: string;
  grants: GrantRef[];
  /** The subject made a successful request in the window that used this permission. */
  used: boolean;
  exampleAuditID: string | null;
}

export interface SubjectReview {
  subject: Subject;
  username: string;
  groups: string[];
  requests: number;
  succeeded: number;
  grants: GrantUse[];
  unusedGrants: number;
  wildcardGrants: number;
  /** Bindings that give the subject cluster-admin (the role, or a `*` on `*` ClusterRole rule). */
  clusterAdmin: Omit<GrantRef, 'ruleIndex'>[];
  risks: RiskFinding[];
  /** Roles and bindings that allow what the subject was seen doing successfully, no more. */
  proposal: RbacObject[];
}

export interface UnseenBinding {
  bindingKind: 'ClusterRoleBinding' | 'RoleBinding';
  binding: string;
  bindingNamespace: string;
  role: string;
  subject: Subject;
}

export interface ReviewReport {
  subjects: SubjectReview[];
  unseenBindingSubjects: UnseenBinding[];
  requests: number;
  from: string | null;
  to: string | null;
}

const SEVERITY_ORDER: Record<RiskSeverity, number> = { critical: 0, high: 1, medium: 2, low: 3 };

const refOf = (g: Grant): GrantRef => ({
  bindingKind: g.bindingKind,
  binding: g.binding,
  bindingNamespace: g.bindingNamespace,
  roleKind: g.roleKind,
  role: g.role,
  ruleIndex: g.ruleIndex,
});
const grantKey = (g: GrantRef) => `${g.bindingKind}/${g.bindingNamespace}/${g.binding}/${g.ruleIndex}`;

export function isWildcardRule(r: PolicyRule): boolean {
  return [r.verbs, r.apiGroups ?? [], r.resources ?? [], r.nonResourceURLs ?? []].some((xs) =>
    xs.includes('*'),
  );
}

function isClusterAdminRule(r: PolicyRule): boolean {
  return r.verbs.includes('*') && (r.apiGroups ?? []).includes('*') && (r.resources ?? []).includes('*');
}

function clusterAdminBindings(grants: readonly GrantUse[]): Omit<GrantRef, 'ruleIndex'>[] {
  const out = new Map<string, Omit<GrantRef, 'ruleIndex'>>();
  for (const g of grants) {
    if (g.role !== 'cluster-admin' && !(g.bindingKind === 'ClusterRoleBinding' && isClusterAdminRule(g.rule)))
      continue;
    const { bindingKind, binding, bindingNamespace, roleKind, role } = g;
    out.set(`${bindingKind}/${bindingNamespace}/${binding}`, {
      bindingKind,
      binding,
      bindingNamespace,
      roleKind,
      role,
    });
  }
  return [...out.values()];
}

function namespacesToProbe(scope: RiskScope, namespaces: readonly string[]): string[] {
  if (scope === 'cluster') return [''];
  if (scope === 'privileged-namespace') return PRIVILEGED_NAMESPACES;
  return ['', ...namespaces];
}

/**
 * One subject's grants per namespace, gathered once: the review asks thousands of questions about
 * the same subject, and rbac.go would walk every binding for each.
 */
class SubjectGrants {
  private readonly byNs = new Map<string, Grant[]>();
  constructor(
    private readonly authz: RbacAuthorizer,
    readonly user: string,
    readonly groups: readonly string[],
  ) {}

  in(namespace: string): Grant[] {
    let g = this.byNs.get(namespace);
    if (!g) {
      g = [...this.authz.grantsFor(this.user, this.groups, namespace)];
      this.byNs.set(namespace, g);
    }
    return g;
  }

  /** rbac.go Authorize for this subject: the first grant whose rule allows the request. */
  authorize(req: AuthzRequest): Grant | undefined {
    return this.in(req.namespace).find((g) => ruleAllows(req, g.rule));
  }
}

function evaluateRisk(
  subjectGrants: SubjectGrants,
  policy: RiskPolicy,
  namespaces: readonly string[],
  used: readonly { req: AuthzRequest; auditID: string }[],
): RiskFinding[] {
  const out: RiskFinding[] = [];
  for (const ns of namespacesToProbe(policy.scope, namespaces)) {
    const grants: Grant[] = [];
    for (const group of policy.requires) {
      let found: Grant | undefined;
      for (const probe of group) {
        found = subjectGrants.authorize(probeRequest(probe, subjectGrants.user, subjectGrants.groups, ns));
        if (found) break;
      }
      if (!found) break;
      grants.push(found);
    }
    if (grants.length !== policy.requires.length) continue;
    let example: string | null = null;
    for (const u of used) {
      if (policy.scope === 'privileged-namespace' && !PRIVILEGED_NAMESPACES.includes(u.req.namespace))
        continue;
      if (policy.scope === 'any-namespace' && ns !== '' && u.req.namespace !== ns) continue;
      const usesProbe = policy.requires.some((group) =>
        group.some((probe) => requestUsesProbe(u.req, probe)),
      );
      if (usesProbe && grants.some((g) => ruleAllows(u.req, g.rule))) {
        example = u.auditID;
        break;
      }
    }
    out.push({
      id: policy.id,
      severity: policy.severity,
      title: policy.title,
      scope: policy.scope,
      namespace: ns,
      source: policy.source,
      grants: grants.map(refOf),
      used: example !== null,
      exampleAuditID: example,
    });
    // Held cluster-wide: it holds in every namespace, no need to list them.
    if (ns === '' && policy.scope === 'any-namespace') break;
  }
  return out;
}

export async function reviewRbac(source: RecordSource, options: ReviewOptions): Promise<ReviewReport> {
  const records: RequestRecord[] = [];
  for await (const r of source) records.push(r);
  const authz = new RbacAuthorizer(options.rbac);
  const times = records.map((r) => r.time).sort();
  const namespaces = [
    ...new Set([
      ...options.rbac.roleBindings.map((b) => b.metadata.namespace),
      ...records.map((r) => r.namespace).filter((n) => n !== ''),
    ]),
  ].sort();

  const byUser = new Map<string, RequestRecord[]>();
  for (const r of records) {
    if (r.subject === '' || r.code === 401) continue;
    const list = byUser.get(r.subject) ?? [];
    list.push(r);
    byUser.set(r.subject, list);
  }
  const users = options.users ?? [...byUser.keys()].sort();
  const subjects: SubjectReview[] = [];
  for (const user of users) {
    const mine = byUser.get(user) ?? [];
    const groups = authenticatedGroups(user, [...new Set(mine.flatMap((r) => r.subjectGroups))]);
    const grants = new Map<string, GrantUse>();
    const subjectGrants = new SubjectGrants(authz, user, groups);
    for (const ns of ['', ...namespaces]) {
      for (const g of subjectGrants.in(ns)) {
        const k = grantKey(g);
        if (!grants.has(k))
          grants.set(k, { ...refOf(g), rule: g.rule, used: 0, wildcard: isWildcardRule(g.rule) });
      }
    }
    if (grants.size === 0) continue;
    const succeeded = mine.filter((r) => r.code !== null && r.code < 400);
    const used: { req: AuthzRequest; auditID: string }[] = [];
    for (const r of succeeded) {
      const req = { ...authzRequestOf(r), groups: authenticatedGroups(r.subject, r.subjectGroups) };
      used.push({ req, auditID: r.auditID });
      // The subject's groups as seen over the window, not this request's: they rarely differ.
      const by = subjectGrants.authorize({ ...req, groups });
      if (by) {
        const g = grants.get(grantKey(by));
        if (g) g.used++;
      }
    }
    const risks = RISK_POLICIES.flatMap((p) => evaluateRisk(subjectGrants, p, namespaces, used)).sort(
      (a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity],
    );
    const subject = subjectOfUser(user);
    const proposal = await generateRbac(succeeded, {
      select: { subjects: [subject] },
      namePrefix: 'kaudit-tight',
      generatedBy: 'kaudit rbac review',
    });
    const list = [...grants.values()];
    subjects.push({
      subject,
      username: user,
      groups,
      requests: mine.length,
      succeeded: succeeded.length,
      grants: list,
      unusedGrants: list.filter((g) => g.used === 0).length,
      wildcardGrants: list.filter((g) => g.wildcard).length,
      clusterAdmin: clusterAdminBindings(list),
      risks,
      proposal: proposal.objects,
    });
  }

  const seenUsers = new Set(records.map((r) => r.subject));
  const seenGroups = new Set(records.flatMap((r) => r.subjectGroups));
  const unseen: UnseenBinding[] = [];
  const seen = (s: Subject, ns: string) => {
    if (s.kind === 'Group') return seenGroups.has(s.name);
    for (const u of seenUsers) if (subjectApplies(s, u, [], ns)) return true;
    return false;
  };
  const consider = (
    kind: UnseenBinding['bindingKind'],
    name: string,
    ns: string,
    role: string,
    subs: readonly Subject[],
  ) => {
    for (const s of subs) {
      if (!options.includeSystemSubjects && s.name.startsWith('system:')) continue;
      if (!seen(s, ns))
        unseen.push({ bindingKind: kind, binding: name, bindingNamespace: ns, role, subject: s });
    }
  };
  for (const b of options.rbac.clusterRoleBindings)
    consider('ClusterRoleBinding', b.metadata.name, '', b.roleRef.name, b.subjects);
  for (const b of options.rbac.roleBindings)
    consider('RoleBinding', b.metadata.name, b.metadata.namespace, b.roleRef.name, b.subjects);
  unseen.sort((a, b) => subjectKey(a.subject).localeCompare(subjectKey(b.subject)));

  return {
    subjects: subjects.sort((a, b) => subjectLabel(a.subject).localeCompare(subjectLabel(b.subject))),
    unseenBindingSubjects: unseen,
    requests: records.length,
    from: times[0] ?? null,
    to: times[times.length - 1] ?? null,
  };
}
