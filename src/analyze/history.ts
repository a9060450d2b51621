/**
 * Who changed an object, and how: every mutation of it in order (create, update, patch, delete,
 * and its subresources such as scale and status), with who made it, from where and with which
 * tool, the response code, and the request body (the patch or the object) when the policy logged one.
 */
import { UserError } from '../model/errors.js';
import type { EventReader, Row } from '../store/contract.js';
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

const COLUMNS = [
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
] as const;

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

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
  const byName = target.name;
  // The rows first, without their bodies, and then the bodies of the changes kept: a store may
  // have to read the body of every row its filters cannot skip (the embedded store decompresses
  // `raw` before it applies an IN list), which over 1M events costs 0.3-1 s where the rest costs
  // 20 ms.
  // Kept: the object's own requests; a deletecollection, which names no object, when it covers the
  // object's namespace; a create that names no object in its URL, when its body names it.
  const scans =
    byName === undefined
      ? [filter]
      : [
          { ...filter, name: [byName] },
          { ...filter, verb: ['create', 'deletecollection'] },
        ];
  // Several stages of one request: the last one logged tells the outcome.
  const latest = new Map<string, { row: Row; bodyNamed: boolean }>();
  for (const scanFilter of scans)
    for await (const page of reader.scan({ filter: scanFilter, columns: COLUMNS }))
      for (const row of page) {
        const name = str(row.name);
        if (byName !== undefined && name !== byName && name !== null) continue;
        latest.set(String(row.audit_id), {
          row,
          bodyNamed: byName !== undefined && name === null && row.verb === 'create',
        });
      }
  const changes: Change[] = [];
  for (const { row, bodyNamed } of latest.values()) {
    const raw = await bodyOf(reader, row);
    if (bodyNamed && bodyName(raw) !== byName) continue;
    if (target.uid !== undefined && !mentionsUid(raw, target.uid)) continue;
    const change: Change = {
      ts: String(row.ts),
      auditId: String(row.audit_id),
      verb: String(row.verb),
      subresource: str(row.subresource),
      namespace: str(row.namespace),
      name: str(row.name),
      subject: str(row.subject),
      username: str(row.impersonated_user) !== null ? str(row.username) : null,
      sourceIp: str(row.source_ip),
      userAgent: str(row.user_agent),
      code: typeof row.code === 'number' ? row.code : null,
    };
    if (raw?.requestObject !== undefined) change.requestObject = raw.requestObject;
    if (raw?.responseObject !== undefined) change.responseObject = raw.responseObject;
    changes.push(change);
  }
  changes.sort((a, b) => a.ts.localeCompare(b.ts) || a.auditId.localeCompare(b.auditId));
  return { target, changes: changes.slice(0, limit), truncated: changes.length > limit };
}

/** The stored event of one row, found by its identity and its time (which narrows the read). */
async function bodyOf(reader: EventReader, row: Row): Promise<RawEvent | undefined> {
  const ts = String(row.ts);
  const filter: EventFilter = {
    auditId: [String(row.audit_id)],
    stage: [String(row.stage)],
    since: ts,
    until: new Date(Date.parse(ts) + 1).toISOString(),
  };
  for await (const page of reader.scan({ filter, columns: ['raw'] }))
    for (const r of page) return parse(r.raw);
  return undefined;
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

function bodyName(e: RawEvent | undefined): string | null {
  const nameOf = (o: unknown) => (o as { metadata?: { name?: unknown } } | undefined)?.metadata?.name;
  const n = nameOf(e?.responseObject) ?? nameOf(e?.requestObject);
  return typeof n === 'string' ? n : null;
}

function mentionsUid(e: RawEvent | undefined, uid: string): boolean {
  if (e === undefined) return false;
  if (e.objectRef?.uid === uid) return true;
  const uidOf = (o: unknown) => (o as { metadata?: { uid?: unknown } } | undefined)?.metadata?.uid;
  return uidOf(e.requestObject) === uid || uidOf(e.responseObject) === uid;
}
