/**
 * RBAC from observed use, audit2rbac's model (liggitt/audit2rbac pkg/process.go, pkg/util.go):
 * requests sorted broadest first; each one the existing RBAC or what was generated so far already
 * allows is skipped; the rest become rules of a Role in the request's namespace or of a ClusterRole
 * (cluster-scoped resources, non-resource URLs, or a resource seen in several namespaces); rules are
 * compacted at the end without widening them.
 */
import type { RecordSource, RequestRecord } from '../request-record.js';
import { RbacAuthorizer, SERVICE_ACCOUNT_PREFIX } from './authorize.js';
import { compactRules } from './compact-rules.js';
import { defaultDiscoveryRbac } from './defaults.js';
import { type AuthzRequest, ruleAllows } from './evaluation.js';
import {
  authzRequestOf,
  recordMatchesSubject,
  subjectKey,
  subjectLabel,
  subjectOfUser,
  withAuthenticatedGroups,
} from './subjects.js';
import {
  type ClusterRole,
  type ClusterRoleBinding,
  mergeRbac,
  type PolicyRule,
  RBAC_API_VERSION,
  RBAC_GROUP,
  type RbacObject,
  type RbacSet,
  type Role,
  type RoleBinding,
  type Subject,
} from './types.js';

/** audit2rbac DefaultGenerateOptions: a watch or list client also gets and lists; an update or patch also reads. */
export const VERB_EXPANSIONS: Readonly<Record<string, readonly string[]>> = {
  watch: ['get', 'list'],
  list: ['get', 'watch'],
  update: ['get', 'patch'],
  patch: ['get', 'update'],
};

export type SubjectSelection = { all: true } | { subjects: Subject[] };

export interface GenerateOptions {
  select: SubjectSelection;
  /** Add the verbs of VERB_EXPANSIONS (audit2rbac default: on). */
  expandVerbs?: boolean;
  /** A resource seen in several namespaces becomes a ClusterRole rule (audit2rbac default: on). */
  expandMultiNamespace?: boolean;
  /** A resource seen with several names becomes a rule without resourceNames (audit2rbac default: on). */
  expandMultiName?: boolean;
  /** The cluster's RBAC: only what it does not already allow is generated. */
  existing?: RbacSet;
  /** Leave discovery and self-review requests to the bootstrap roles (default on). */
  leaveDiscovery?: boolean;
  /** First part of every generated name (default `kaudit`). */
  namePrefix?: string;
  /** Annotation `kaudit.io/generated-by` (which command made it). */
  generatedBy?: string;
}

export interface GeneratedForSubject {
  subject: Subject;
  requests: number;
  /** Requests the existing RBAC (or the bootstrap discovery roles) already allows. */
  alreadyAllowed: number;
  firstSeen: string | null;
  lastSeen: string | null;
  objects: RbacObject[];
}

export interface GenerateResult {
  subjects: GeneratedForSubject[];
  objects: RbacObject[];
}

// audit2rbac util.go sortRequests: non-resource first, cluster-scoped before namespaced, unnamed
// before named, list before get, then by group, resource, subresource, namespace, name, verb.
export function compareRequests(a: AuthzRequest, b: AuthzRequest): number {
  if (a.resourceRequest !== b.resourceRequest) return a.resourceRequest ? 1 : -1;
  const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  if (!a.resourceRequest) return cmp(a.verb, b.verb) || cmp(a.path, b.path);
  if ((a.namespace === '') !== (b.namespace === '')) return a.namespace === '' ? -1 : 1;
  if ((a.name === '') !== (b.name === '')) return a.name === '' ? -1 : 1;
  if (a.verb === 'list' && b.verb === 'get') return -1;
  if (a.verb === 'get' && b.verb === 'list') return 1;
  return (
    cmp(a.apiGroup, b.apiGroup) ||
    cmp(a.resource, b.resource) ||
    cmp(a.subresource, b.subresource) ||
    cmp(a.namespace, b.namespace) ||
    cmp(a.name, b.name) ||
    cmp(a.verb, b.verb)
  );
}

/** A name valid as an RBAC object name (a path segment: no `/` or `%`, not `.` or `..`). */
function objectName(s: string): string {
  const n = s.replace(/[/%]/g, '-');
  return n === '.' || n === '..' ? `-${n}` : n;
}

/** A label value: at most 63 of [A-Za-z0-9_.-], starting and ending alphanumeric. */
export function labelValue(s: string): string {
  return s
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

export function generatedName(prefix: string, s: Subject): string {
  if (s.kind === 'ServiceAccount') return objectName(`${prefix}:sa:${s.namespace ?? ''}:${s.name}`);
  if (s.kind === 'Group') return objectName(`${prefix}:group:${s.name}`);
  return objectName(`${prefix}:${s.name}`);
}

interface Scope {
  cluster: PolicyRule[];
  namespaced: Map<string, PolicyRule[]>;
}

function generatedAllows(scope: Scope, req: AuthzRequest): boolean {
  if (scope.cluster.some((r) => ruleAllows(req, r))) return true;
  if (req.namespace === '') return false;
  return (scope.namespaced.get(req.namespace) ?? []).some((r) => ruleAllows(req, r));
}

function resourceRule(req: AuthzRequest, expandVerbs: boolean): PolicyRule {
  const verbs = [req.verb, ...(expandVerbs ? (VERB_EXPANSIONS[req.verb] ?? []) : [])];
  const rule: PolicyRule = {
    verbs,
    apiGroups: [req.apiGroup],
    resources: [req.subresource === '' ? req.resource : `${req.resource}/${req.subresource}`],
  };
  if (req.name !== '') rule.resourceNames = [req.name];
  return rule;
}

/**
 * The rules that cover the requests (audit2rbac Generator.Generate), as a cluster part and one part
 * per namespace. `allowedBefore` says which requests need nothing.
 */
export function coverRequests(
  requests: readonly AuthzRequest[],
  options: {
    expandVerbs: boolean;
    expandMultiNamespace: boolean;
    expandMultiName: boolean;
    allowedBefore: (r: AuthzRequest) => boolean;
  },
): { scope: Scope; alreadyAllowed: number } {
  // The same request seen many times needs one look: dedupe before the quadratic widening pass.
  const distinct = new Map<string, AuthzRequest>();
  for (const r of requests) {
    const k = JSON.stringify([
      r.user,
      r.groups,
      r.verb,
      r.resourceRequest,
      r.apiGroup,
      r.resource,
      r.subresource,
      r.namespace,
      r.name,
      r.path,
    ]);
    if (!distinct.has(k)) distinct.set(k, r);
  }
  const sorted = [...distinct.values()].sort(compareRequests);
  const scope: Scope = { cluster: [], namespaced: new Map() };
  let alreadyAllowed = 0;
  const sameKind = (a: AuthzRequest, b: AuthzRequest) =>
    a.resourceRequest &&
    b.resourceRequest &&
    a.verb === b.verb &&
    a.apiGroup === b.apiGroup &&
    a.resource === b.resource &&
    a.subresource === b.subresource;
  for (const original of sorted) {
    if (options.allowedBefore(original)) {
      alreadyAllowed++;
      continue;
    }
    if (generatedAllows(scope, original)) continue;
    if (!original.resourceRequest) {
      scope.cluster.push({ verbs: [original.verb], nonResourceURLs: [original.path] });
      continue;
    }
    const req = { ...original };
    // process.go: widen to every namespace (or name) only when the same verb on the same resource
    // was seen in another namespace (or with another name).
    for (const other of sorted) {
      if (!sameKind(req, other)) continue;
      const sameNs = options.expandMultiNamespace || other.namespace === original.namespace;
      const sameName = options.expandMultiName || other.name === original.name;
      if (!sameNs || !sameName) continue;
      if (
        options.expandMultiNamespace &&
        original.namespace !== '' &&
        other.namespace !== '' &&
        other.namespace !== original.namespace
      )
        req.namespace = '';
      if (
        options.expandMultiName &&
        original.name !== '' &&
        other.name !== '' &&
        other.name !== original.name
      )
        req.name = '';
    }
    const rule = resourceRule(req, options.expandVerbs);
    if (req.namespace === '') scope.cluster.push(rule);
    else {
      const list = scope.namespaced.get(req.namespace) ?? [];
      list.push(rule);
      scope.namespaced.set(req.namespace, list);
    }
  }
  return { scope, alreadyAllowed };
}

export interface ObjectsMeta {
  name: string;
  subject: Subject;
  generatedBy: string;
  extraAnnotations?: Record<string, string>;
}

/** Roles and bindings (compacted) for one subject's rules. */
export function scopeObjects(scope: Scope, meta: ObjectsMeta): RbacObject[] {
  const labels = {
    'app.kubernetes.io/managed-by': 'kaudit',
    'kaudit.io/generated-for-kind': meta.subject.kind,
    'kaudit.io/generated-for': labelValue(
      meta.subject.kind === 'ServiceAccount'
        ? `${meta.subject.namespace ?? ''}.${meta.subject.name}`
        : meta.subject.name,
    ),
  };
  const annotations = {
    'kaudit.io/generated-by': meta.generatedBy,
    'kaudit.io/generated-for': subjectLabel(meta.subject),
    ...meta.extraAnnotations,
  };
  const metadata = (namespace?: string) => ({
    name: meta.name,
    ...(namespace === undefined ? {} : { namespace }),
    labels: { ...labels },
    annotations: { ...annotations },
  });
  const roleRefSubject: Subject = { ...meta.subject };
  const out: RbacObject[] = [];
  if (scope.cluster.length > 0) {
    const role: ClusterRole = {
      apiVersion: RBAC_API_VERSION,
      kind: 'ClusterRole',
      metadata: metadata(),
      rules: compactRules(scope.cluster),
    };
    const binding: ClusterRoleBinding = {
      apiVersion: RBAC_API_VERSION,
      kind: 'ClusterRoleBinding',
      metadata: metadata(),
      roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: meta.name },
      subjects: [roleRefSubject],
    };
    out.push(role, binding);
  }
  for (const ns of [...scope.namespaced.keys()].sort()) {
    const rules = scope.namespaced.get(ns) ?? [];
    if (rules.length === 0) continue;
    const m = metadata(ns) as Role['metadata'];
    const role: Role = {
      apiVersion: RBAC_API_VERSION,
      kind: 'Role',
      metadata: m,
      rules: compactRules(rules),
    };
    const binding: RoleBinding = {
      apiVersion: RBAC_API_VERSION,
      kind: 'RoleBinding',
      metadata: { ...m, labels: { ...labels }, annotations: { ...annotations } },
      roleRef: { apiGroup: RBAC_GROUP, kind: 'Role', name: meta.name },
      subjects: [roleRefSubject],
    };
    out.push(role, binding);
  }
  return out;
}

/** The subjects whose requests the records hold (users and service accounts, by who the authorizer checked). */
export function subjectsSeen(records: readonly RequestRecord[]): Subject[] {
  const seen = new Map<string, Subject>();
  for (const r of records) {
    if (r.subject === '') continue;
    const s = subjectOfUser(r.subject);
    seen.set(subjectKey(s), s);
  }
  return [...seen.values()].sort((a, b) => (subjectKey(a) < subjectKey(b) ? -1 : 1));
}

function toMs(t: string): string {
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? t : new Date(ms).toISOString();
}

export async function generateRbac(source: RecordSource, options: GenerateOptions): Promise<GenerateResult> {
  const records: RequestRecord[] = [];
  for await (const r of source) {
    // A 401 never reached the authorizer; there is nothing to grant.
    if (r.code === 401) continue;
    records.push(r);
  }
  const subjects = 'all' in options.select ? subjectsSeen(records) : options.select.subjects;
  const leaveDiscovery = options.leaveDiscovery ?? true;
  const base = mergeRbac(
    options.existing ?? { roles: [], clusterRoles: [], roleBindings: [], clusterRoleBindings: [] },
    leaveDiscovery
      ? defaultDiscoveryRbac()
      : { roles: [], clusterRoles: [], roleBindings: [], clusterRoleBindings: [] },
  );
  const existing = new RbacAuthorizer(base);
  const prefix = options.namePrefix ?? 'kaudit';
  const result: GenerateResult = { subjects: [], objects: [] };
  const byUser = new Map<string, RequestRecord[]>();
  for (const r of records) {
    const list = byUser.get(r.subject) ?? [];
    list.push(r);
    byUser.set(r.subject, list);
  }
  for (const subject of subjects) {
    const mine =
      subject.kind === 'Group'
        ? records.filter((r) => recordMatchesSubject(r, subject))
        : (byUser.get(
            subject.kind === 'User'
              ? subject.name
              : `${SERVICE_ACCOUNT_PREFIX}${subject.namespace ?? ''}:${subject.name}`,
          ) ?? []);
    const requests = mine.map(authzRequestOf);
    const { scope, alreadyAllowed } = coverRequests(requests, {
      expandVerbs: options.expandVerbs ?? true,
      expandMultiNamespace: options.expandMultiNamespace ?? true,
      expandMultiName: options.expandMultiName ?? true,
      allowedBefore: (r) => existing.authorize(withAuthenticatedGroups(r)).allowed,
    });
    // To the millisecond, as the store gives times, so a log and its store give the same annotation.
    const times = mine
      .flatMap((r) => (r.lastTime === undefined ? [r.time] : [r.time, r.lastTime]))
      .map(toMs)
      .sort();
    const requestCount = mine.reduce((n, r) => n + (r.count ?? 1), 0);
    const objects = scopeObjects(scope, {
      name: generatedName(prefix, subject),
      subject,
      generatedBy: options.generatedBy ?? 'kaudit rbac generate',
      ...(times.length > 0
        ? {
            extraAnnotations: {
              'kaudit.io/observed': `${requestCount} requests, ${times[0]} to ${times[times.length - 1]}`,
            },
          }
        : {}),
    });
    result.subjects.push({
      subject,
      requests: requestCount,
      alreadyAllowed,
      firstSeen: times[0] ?? null,
      lastSeen: times[times.length - 1] ?? null,
      objects,
    });
    result.objects.push(...objects);
  }
  return result;
}
