/**
 * `kaudit report denials`: every refused request grouped by who, what and where, classified (see
 * classify-denial.ts), with the smallest RBAC fix per subject for authorizer denials, unless the
 * pattern looks like probing rather than a missing permission.
 */

import { authenticatedGroups, RbacAuthorizer } from '../rbac/authorize.js';
import type { AuthzRequest } from '../rbac/evaluation.js';
import { coverRequests, generatedName, scopeObjects } from '../rbac/generate.js';
import { authzRequestOf, subjectKey, subjectOfUser } from '../rbac/subjects.js';
import type { RbacObject, RbacSet, Subject } from '../rbac/types.js';
import type { RecordSource, RequestRecord } from '../request-record.js';
import { type AdmissionKind, classifyDenial, type DenialClass, isDenied } from './classify-denial.js';
import { type ClosestGrant, closestGrant, type ExistingRole, smallestRoleAllowing } from './closest-grant.js';

export interface DenialsOptions {
  /** The cluster's RBAC: the closest existing role per denial, and fixes that only add what is missing. */
  rbac?: RbacSet;
  /** A subject denied on at least this many distinct resources is flagged suspicious (default 6). */
  suspiciousResources?: number;
  /** ... or in at least this many namespaces (default 5). */
  suspiciousNamespaces?: number;
  /** At most this many groups in the result, the largest first (default all). */
  limit?: number;
  /** Keep up to this many distinct values of each list (IPs, user agents, names) per group (default 5). */
  maxValues?: number;
  /**
   * Counts of every request of the window, when the source holds only the refused ones (the store
   * counts the rest without reading each event: denialsFromStore).
   */
  totals?: DenialTotals;
}

export interface DenialTotals {
  requests: number;
  from: string | null;
  to: string | null;
  /** Requests that succeeded (2xx, 3xx) per subject. */
  succeeded: ReadonlyMap<string, number>;
}

export interface DenialGroup {
  class: DenialClass;
  admission?: { kind: AdmissionKind; name?: string };
  subject: string;
  verb: string;
  apiGroup: string;
  resource: string;
  subresource: string;
  namespace: string;
  nonResourceURL: string;
  /** Object names seen (up to maxValues). */
  names: string[];
  codes: number[];
  count: number;
  firstSeen: string;
  lastSeen: string;
  sourceIPs: string[];
  userAgents: string[];
  exampleAuditID: string;
  /** responseStatus.message of the latest request. */
  message: string;
  /** responseStatus.reason, else authorization.k8s.io/reason. */
  reason: string;
  /** With the cluster RBAC: the closest rule bound to the subject and what it lacks. */
  closest?: ClosestGrant | null;
  /** With the cluster RBAC: the RBAC now allows it (it changed since the log was written). */
  allowedNow?: boolean;
}

export interface RbacFix {
  objects: RbacObject[];
  /** With the cluster RBAC: an existing role (no wildcards) that already allows every denied request; binding it is an alternative to the new objects. */
  existingRole?: ExistingRole;
  /** The denied requests (distinct) the fix allows. */
  requests: number;
}

export interface DenialSubject {
  subject: string;
  rbacSubject: Subject;
  denied: number;
  byClass: Record<DenialClass, number>;
  /** Requests of the subject that succeeded (2xx/3xx) in the window. */
  succeeded: number;
  /** Why the RBAC denials look like probing; a suspicious subject gets no fix. */
  suspicious: string[];
  fix: RbacFix | null;
}

export interface DenialsReport {
  requests: number;
  denied: number;
  byClass: Record<DenialClass, number>;
  groups: DenialGroup[];
  subjects: DenialSubject[];
  from: string | null;
  to: string | null;
}

const emptyByClass = (): Record<DenialClass, number> => ({
  rbac: 0,
  admission: 0,
  authentication: 0,
  other: 0,
});

function pushLimited(list: string[], v: string, max: number): void {
  if (v !== '' && list.length < max && !list.includes(v)) list.push(v);
}

interface SubjectState {
  subject: string;
  denied: number;
  byClass: Record<DenialClass, number>;
  succeeded: number;
  anonymous: boolean;
  rbacRequests: Map<string, AuthzRequest>;
  rbacResources: Set<string>;
  rbacNamespaces: Set<string>;
}

export function isAnonymous(r: Pick<RequestRecord, 'subject' | 'subjectGroups'>): boolean {
  return r.subject === 'system:anonymous' || r.subjectGroups.includes('system:unauthenticated');
}

export async function reportDenials(
  source: RecordSource,
  options: DenialsOptions = {},
): Promise<DenialsReport> {
  const maxValues = options.maxValues ?? 5;
  const groups = new Map<string, DenialGroup & { request: AuthzRequest }>();
  const subjects = new Map<string, SubjectState>();
  const report: DenialsReport = {
    requests: 0,
    denied: 0,
    byClass: emptyByClass(),
    groups: [],
    subjects: [],
    from: null,
    to: null,
  };
  const totals = options.totals;
  if (totals !== undefined)
    Object.assign(report, { requests: totals.requests, from: totals.from, to: totals.to });
  for await (const r of source) {
    if (totals === undefined) {
      report.requests++;
      if (report.from === null || r.time < report.from) report.from = r.time;
      if (report.to === null || r.time > report.to) report.to = r.time;
    }
    let s = subjects.get(r.subject);
    if (!s) {
      s = {
        subject: r.subject,
        denied: 0,
        byClass: emptyByClass(),
        succeeded: totals?.succeeded.get(r.subject) ?? 0,
        anonymous: false,
        rbacRequests: new Map(),
        rbacResources: new Set(),
        rbacNamespaces: new Set(),
      };
      subjects.set(r.subject, s);
    }
    if (isAnonymous(r)) s.anonymous = true;
    if (totals === undefined && r.code !== null && r.code >= 200 && r.code < 400) s.succeeded++;
    if (!isDenied(r)) continue;
    const c = classifyDenial(r);
    report.denied++;
    report.byClass[c.class]++;
    s.denied++;
    s.byClass[c.class]++;
    const req = authzRequestOf(r);
    if (c.class === 'rbac') {
      const k = JSON.stringify([
        req.verb,
        req.apiGroup,
        req.resource,
        req.subresource,
        req.namespace,
        req.name,
        req.path,
      ]);
      if (!s.rbacRequests.has(k))
        s.rbacRequests.set(k, { ...req, groups: authenticatedGroups(req.user, req.groups) });
      s.rbacResources.add(
        r.resourceRequest ? `${r.apiGroup}/${r.resource}/${r.subresource}` : r.nonResourceURL,
      );
      if (r.namespace !== '') s.rbacNamespaces.add(r.namespace);
    }
    const key = JSON.stringify([
      c.class,
      c.admission?.kind ?? '',
      c.admission?.name ?? '',
      r.subject,
      r.verb,
      r.apiGroup,
      r.resource,
      r.subresource,
      r.namespace,
      r.nonResourceURL,
    ]);
    let g = groups.get(key);
    if (!g) {
      g = {
        class: c.class,
        ...(c.admission ? { admission: c.admission } : {}),
        subject: r.subject,
        verb: r.verb,
        apiGroup: r.apiGroup,
        resource: r.resource,
        subresource: r.subresource,
        namespace: r.namespace,
        nonResourceURL: r.nonResourceURL,
        names: [],
        codes: [],
        count: 0,
        firstSeen: r.time,
        lastSeen: r.time,
        sourceIPs: [],
        userAgents: [],
        exampleAuditID: r.auditID,
        message: r.message,
        reason: r.statusReason || r.reason,
        request: { ...req, groups: authenticatedGroups(req.user, req.groups) },
      };
      groups.set(key, g);
    }
    g.count++;
    if (r.time < g.firstSeen) g.firstSeen = r.time;
    if (r.time >= g.lastSeen) {
      g.lastSeen = r.time;
      g.message = r.message;
      g.reason = r.statusReason || r.reason;
      g.exampleAuditID = r.auditID;
    }
    if (r.code !== null && !g.codes.includes(r.code)) g.codes.push(r.code);
    pushLimited(g.names, r.name, maxValues);
    for (const ip of r.sourceIPs) pushLimited(g.sourceIPs, ip, maxValues);
    pushLimited(g.userAgents, r.userAgent, maxValues);
  }

  const authz = options.rbac ? new RbacAuthorizer(options.rbac) : undefined;
  const list = [...groups.values()].sort(
    (a, b) => b.count - a.count || (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0),
  );
  report.groups = list.slice(0, options.limit ?? list.length).map(({ request, ...g }) => {
    if (authz && g.class === 'rbac') {
      const allowedNow = authz.authorize(request).allowed;
      return { ...g, allowedNow, closest: allowedNow ? null : (closestGrant(authz, request) ?? null) };
    }
    return g;
  });

  const maxResources = options.suspiciousResources ?? 6;
  const maxNamespaces = options.suspiciousNamespaces ?? 5;
  for (const s of [...subjects.values()].sort((a, b) => (a.subject < b.subject ? -1 : 1))) {
    if (s.denied === 0) continue;
    const suspicious: string[] = [];
    if (s.anonymous) suspicious.push('anonymous user');
    if (s.byClass.rbac > 0) {
      // A workload deployed without its Role never succeeds either, but it retries the same few
      // requests; never succeeding counts as probing for the anonymous or once denials spread out.
      if (s.succeeded === 0 && (s.anonymous || s.rbacResources.size >= 3 || s.rbacNamespaces.size >= 2)) {
        suspicious.push('never seen succeeding');
      }
      if (s.rbacResources.size >= maxResources)
        suspicious.push(`denied on ${s.rbacResources.size} distinct resources`);
      if (s.rbacNamespaces.size >= maxNamespaces)
        suspicious.push(`denied in ${s.rbacNamespaces.size} namespaces`);
    }
    const rbacSubject = subjectOfUser(s.subject);
    let fix: RbacFix | null = null;
    if (s.byClass.rbac > 0 && suspicious.length === 0) {
      const requests = [...s.rbacRequests.values()];
      const { scope, alreadyAllowed } = coverRequests(requests, {
        expandVerbs: false,
        expandMultiName: false,
        expandMultiNamespace: true,
        allowedBefore: (q) => authz?.authorize(q).allowed ?? false,
      });
      const objects = scopeObjects(scope, {
        name: generatedName('kaudit-fix', rbacSubject),
        subject: rbacSubject,
        generatedBy: 'kaudit report denials',
      });
      if (objects.length > 0) {
        const missing = authz ? requests.filter((q) => !authz.authorize(q).allowed) : [];
        const existingRole = authz ? smallestRoleAllowing(authz, missing) : undefined;
        fix = {
          objects,
          requests: requests.length - alreadyAllowed,
          ...(existingRole ? { existingRole } : {}),
        };
      }
    }
    report.subjects.push({
      subject: s.subject,
      rbacSubject,
      denied: s.denied,
      byClass: s.byClass,
      succeeded: s.succeeded,
      suspicious,
      fix,
    });
  }
  report.subjects.sort(
    (a, b) => b.denied - a.denied || subjectKey(a.rbacSubject).localeCompare(subjectKey(b.rbacSubject)),
  );
  return report;
}
