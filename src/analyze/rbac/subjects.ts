/** Who an analysis is about: a User, a ServiceAccount or a Group, and how requests map to them. */
import { UserError } from '../../model/errors.js';
import type { RequestRecord } from '../request-record.js';
import { authenticatedGroups, SERVICE_ACCOUNT_PREFIX, splitServiceAccount } from './authorize.js';
import type { AuthzRequest } from './evaluation.js';
import { RBAC_GROUP, type Subject } from './types.js';

/** The RBAC subject a username binds to: a ServiceAccount for `system:serviceaccount:NS:NAME`, else a User. */
export function subjectOfUser(username: string): Subject {
  const sa = splitServiceAccount(username);
  if (sa) return { kind: 'ServiceAccount', namespace: sa[0], name: sa[1] };
  return { kind: 'User', apiGroup: RBAC_GROUP, name: username };
}

export function subjectLabel(s: Subject): string {
  if (s.kind === 'ServiceAccount') return `ServiceAccount ${s.namespace ?? ''}/${s.name}`;
  return `${s.kind} ${s.name}`;
}

export function subjectKey(s: Subject): string {
  return s.kind === 'ServiceAccount'
    ? `ServiceAccount:${s.namespace ?? ''}:${s.name}`
    : `${s.kind}:${s.name}`;
}

/**
 * The usernames whose requests can match the subjects (recordMatchesSubject), for a store to
 * narrow its read to; undefined when a Group is among them (members are found by their groups,
 * which an impersonating request replaces).
 */
export function usernamesOf(subjects: readonly Subject[]): string[] | undefined {
  if (subjects.some((s) => s.kind === 'Group')) return undefined;
  return subjects.map((s) =>
    s.kind === 'ServiceAccount' ? `${SERVICE_ACCOUNT_PREFIX}${s.namespace ?? ''}:${s.name}` : s.name,
  );
}

/** Whether the request was made by (or, for a Group, by a member of) the subject. */
export function recordMatchesSubject(r: RequestRecord, s: Subject): boolean {
  if (s.kind === 'Group') return r.subjectGroups.includes(s.name);
  if (s.kind === 'ServiceAccount')
    return r.subject === `${SERVICE_ACCOUNT_PREFIX}${s.namespace ?? ''}:${s.name}`;
  return r.subject === s.name;
}

/** `NS:NAME` or `system:serviceaccount:NS:NAME` -> a ServiceAccount subject. */
export function parseServiceAccountFlag(value: string): Subject {
  const full = splitServiceAccount(value);
  if (full) return { kind: 'ServiceAccount', namespace: full[0], name: full[1] };
  const parts = value.split(':');
  if (parts.length === 2 && parts[0] !== '' && parts[1] !== '') {
    return { kind: 'ServiceAccount', namespace: parts[0] as string, name: parts[1] as string };
  }
  throw new UserError(
    'KAUDIT_FLAG_INVALID',
    `--serviceaccount ${JSON.stringify(value)}: expected NAMESPACE:NAME`,
    {
      hint: '--serviceaccount kube-system:coredns',
    },
  );
}

/**
 * The authorizer's attributes of a logged request. A create of a collection carries no name for the
 * authorizer (requestinfo.go reads the name from the URL, and a POST to a collection has none), even
 * when the audit objectRef shows the created object's name.
 */
export function authzRequestOf(r: RequestRecord): AuthzRequest {
  return {
    user: r.subject,
    groups: r.subjectGroups,
    verb: r.verb,
    resourceRequest: r.resourceRequest,
    apiGroup: r.apiGroup,
    resource: r.resource,
    subresource: r.subresource,
    namespace: r.namespace,
    name: r.verb === 'create' && r.subresource === '' ? '' : r.name,
    path: r.nonResourceURL,
  };
}

/** The same request with the groups the authenticator would have added (logs sometimes omit them). */
export function withAuthenticatedGroups(req: AuthzRequest): AuthzRequest {
  return { ...req, groups: authenticatedGroups(req.user, req.groups) };
}
