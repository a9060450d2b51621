/**
 * Who changed an object, and how: every mutation of it in order (create, update, patch, delete,
 * and its subresources such as scale and status), with who made it, from where and with which
 * tool, the response code, and the request body (the patch or the object) when the policy logged one.
 */
import { UserError } from '../model/errors.js';
import type { EventReader } from '../store/contract.js';
import type { EventFilter } from '../store/query.js';

export interface ObjectTarget {
  resource: string;
  /** The API group when given as `deployments.apps`. */
  apiGroup?: string;
  namespace?: string;
  name?: string;
  /** metadata.uid: follows the object even across a delete and re-create of the same name. */
  uid?: string;
}

export interface HistoryOptions {
  target: ObjectTarget;
  filter: EventFilter;
  /** At most this many changes, oldest first; default 500. */
  limit?: number;
}

export interface Change {
  ts: string;
  auditId: string;
  verb: string;
  subresource: string | null;
  namespace: string | null;
  name: string | null;
  subject: string | null;
  /** The authenticated user when the request impersonated another. */
  username: string | null;
  sourceIp: string | null;
  userAgent: string | null;
  code: number | null;
  /** The request body as logged (Request level and above): the patch, or the object written. */
  requestObject?: unknown;
  /** The object as the server returned it (RequestResponse). */
  responseObject?: unknown;
}

export interface HistoryReport {
  target: ObjectTarget;
  changes: Change[];
  /** More changes matched than the limit. */
  truncated: boolean;
}

const MUTATING = ['create', 'update', 'patch', 'delete', 'deletecollection'];

/**
 * `pods/payments/api-7f9c`, `deployments.apps/payments/api`, `namespaces/payments`,
 * `clusterroles/admin` (cluster-scoped: RESOURCE/NAME).
 */
export function parseObjectTarget(text: string, uid?: string): ObjectTarget {
  const parts = text.split('/');
  if (parts.length < 1 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new UserError(
      'KAUDIT_FLAG_INVALID',
      `object ${JSON.stringify(text)}: expected RESOURCE/NAMESPACE/NAME or RESOURCE/NAME (cluster-scoped)`,
      { hint: 'e.g. deployments.apps/payments/api, or clusterroles/admin' },
    );
  }
  const [res = '', a, b] = parts;
  const dot = res.indexOf('.');
  const target: ObjectTarget = { resource: dot < 0 ? res : res.slice(0, dot) };
  if (dot >= 0) target.apiGroup = res.slice(dot + 1);
  if (b !== undefined) {
    target.namespace = a as string;
    target.name = b;
  } else if (a !== undefined) target.name = a;
  if (uid !== undefined) target.uid = uid;
  return target;
}

export async function objectHistory(reader: EventReader, opts: HistoryOptions): Promise<HistoryReport> {
  const { target } = opts;
  const limit = opts.limit ?? 500;
  const filter: EventFilter = {
    ...opts.filter,
    verb: MUTATING,
    resource: [{ resource: target.resource, subresource: '*' }],
  };
  if (target.apiGroup !== undefined) filter.apiGroup = [target.apiGroup];
  if (target.namespace !== undefined) filter.namespace = [target.namespace];
  // A deletecollection names no object: it is kept when it covers the object's namespace.
  const byName = target.name;
  // Several stages of one request: the last one logged tells the outcome.
  const latest = new Map<string, Change>();
  for await (const page of reader.scan({
    filter,
    columns: [
      'ts',
      'audit_id',
      'stage',
      'verb',
      'subresource',
      'namespace',
      'name',
      'subject',
      'username',
      'impersonated_user',
      'source_ip',
      'user_agent',
      'code',
      'raw',
    ],
  })) {
    for (const r of page) {
      const name = typeof r.name === 'string' ? r.name : null;
      if (byName !== undefined && name !== byName && !(r.verb === 'deletecollection' && name === null))
        continue;
      const raw = parse(r.raw);
      if (target.uid !== undefined && !mentionsUid(raw, target.uid)) continue;
      const change: Change = {
        ts: String(r.ts),
        auditId: String(r.audit_id),
        verb: String(r.verb),
        subresource: typeof r.subresource === 'string' ? r.subresource : null,
        namespace: typeof r.namespace === 'string' ? r.namespace : null,
        name,
        subject: typeof r.subject === 'string' ? r.subject : null,
        username:
          typeof r.impersonated_user === 'string' && typeof r.username === 'string' ? r.username : null,
        sourceIp: typeof r.source_ip === 'string' ? r.source_ip : null,
        userAgent: typeof r.user_agent === 'string' ? r.user_agent : null,
        code: typeof r.code === 'number' ? r.code : null,
      };
      if (raw?.requestObject !== undefined) change.requestObject = raw.requestObject;
      if (raw?.responseObject !== undefined) change.responseObject = raw.responseObject;
      latest.set(change.auditId, change);
    }
  }
  const changes = [...latest.values()].sort(
    (a, b) => a.ts.localeCompare(b.ts) || a.auditId.localeCompare(b.auditId),
  );
  return { target, changes: changes.slice(0, limit), truncated: changes.length > limit };
}

interface RawEvent {
  objectRef?: { uid?: string };
  requestObject?: unknown;
  responseObject?: unknown;
}

function parse(raw: unknown): RawEvent | undefined {
  if (typeof raw !== 'string') return undefined;
  try {
    return JSON.parse(raw) as RawEvent;
  } catch {
    return undefined;
  }
}

function mentionsUid(e: RawEvent | undefined, uid: string): boolean {
  if (e === undefined) return false;
  if (e.objectRef?.uid === uid) return true;
  const uidOf = (o: unknown) => (o as { metadata?: { uid?: unknown } } | undefined)?.metadata?.uid;
  return uidOf(e.requestObject) === uid || uidOf(e.responseObject) === uid;
}
