import { UserError } from '../model/errors.js';
import type { AuditEvent } from '../model/event.js';
import { normalizeValue } from '../model/normalize.js';
import type { RequestAttributes } from './types.js';

function str(v: unknown, field: string, where: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  throw new UserError('KAUDIT_BAD_REQUEST_ATTRIBUTES', `${where}: ${field} must be a string`);
}

/**
 * The attributes kube-apiserver's audit filter evaluates the policy with, rebuilt from a logged event.
 * The audit filter runs after authentication and before impersonation, so `user` (not
 * `impersonatedUser`) is what the policy saw.
 */
export function attributesFromEvent(e: AuditEvent): RequestAttributes {
  const ref = e.objectRef;
  const path = (e.requestURI ?? '').split('?')[0] ?? '';
  const user = e.user ? { username: e.user.username ?? '', groups: e.user.groups ?? [] } : null;
  if (!ref) {
    return {
      user,
      verb: e.verb,
      namespace: '',
      apiGroup: '',
      apiVersion: '',
      resource: '',
      subresource: '',
      name: '',
      resourceRequest: false,
      path,
    };
  }
  const subresource = ref.subresource ?? '';
  // A create names its object in the body, not the URL: the checker saw an empty name, although
  // the event's objectRef carries the name kube-apiserver filled in afterwards.
  const name = e.verb === 'create' && subresource === '' ? '' : (ref.name ?? '');
  return {
    user,
    verb: e.verb,
    namespace: ref.namespace ?? '',
    apiGroup: ref.apiGroup ?? '',
    apiVersion: ref.apiVersion ?? '',
    resource: ref.resource ?? '',
    subresource,
    name,
    resourceRequest: true,
    path,
  };
}

/** A record shaped like the `request` objects of k8s-policy-cases.json (missing fields are empty). */
export function attributesFromRecord(x: Record<string, unknown>, where = 'request'): RequestAttributes {
  let user: RequestAttributes['user'] = null;
  if (x.user !== undefined && x.user !== null) {
    if (typeof x.user !== 'object' || Array.isArray(x.user)) {
      throw new UserError(
        'KAUDIT_BAD_REQUEST_ATTRIBUTES',
        `${where}: user must be {username, groups} or null`,
      );
    }
    const u = x.user as Record<string, unknown>;
    const groups = u.groups ?? [];
    if (!Array.isArray(groups) || !groups.every((g): g is string => typeof g === 'string')) {
      throw new UserError('KAUDIT_BAD_REQUEST_ATTRIBUTES', `${where}: user.groups must be a list of strings`);
    }
    user = { username: str(u.username, 'user.username', where), groups };
  }
  const resource = str(x.resource, 'resource', where);
  let resourceRequest: boolean;
  if (typeof x.resourceRequest === 'boolean') resourceRequest = x.resourceRequest;
  else if (x.resourceRequest === undefined || x.resourceRequest === null) resourceRequest = resource !== '';
  else
    throw new UserError('KAUDIT_BAD_REQUEST_ATTRIBUTES', `${where}: resourceRequest must be true or false`);
  return {
    user,
    verb: str(x.verb, 'verb', where),
    namespace: str(x.namespace, 'namespace', where),
    apiGroup: str(x.apiGroup, 'apiGroup', where),
    apiVersion: str(x.apiVersion, 'apiVersion', where),
    resource,
    subresource: str(x.subresource, 'subresource', where),
    name: str(x.name, 'name', where),
    resourceRequest,
    path: str(x.path, 'path', where),
  };
}

/**
 * One line of a `--requests` file: an audit Event in any form the model reads (v1, v1beta1, EventList,
 * cloud export records), or a request-attributes record. An EventList yields one entry per event.
 */
export function attributesFromJson(x: unknown, where: string): RequestAttributes[] {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) {
    throw new UserError('KAUDIT_BAD_REQUEST_ATTRIBUTES', `${where}: expected a JSON object`);
  }
  const o = x as Record<string, unknown>;
  const n = normalizeValue(o);
  if (n.ok) return n.events.map(attributesFromEvent);
  if ('kind' in o || 'auditID' in o || 'protoPayload' in o) {
    throw new UserError(
      'KAUDIT_BAD_REQUEST_ATTRIBUTES',
      `${where}: looks like an audit event but cannot be read: ${n.reason}`,
    );
  }
  return [attributesFromRecord(o, where)];
}
