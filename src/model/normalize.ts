/**
 * Turns every accepted input shape into audit.k8s.io/v1 Events: v1 itself, v1beta1 and
 * apiVersion-less events (older clusters, Falco traces), GKE Cloud Audit Log entries and AKS
 * diagnostic records. Returns the events, or a reason why the value is not an audit event.
 */
import type { AuditEvent, Stage } from './event.js';
import { STAGES } from './event.js';
import { isRecord, parseJsonKeepingNumbers } from './json.js';

type Json = Record<string, unknown>;

export type Normalized = { ok: true; events: AuditEvent[] } | { ok: false; reason: string };

const SOURCE_FORMAT_ANNOTATION = 'kaudit.io/source-format';

/** A field's bad value for a message: strings quoted (and cut), anything else by its type only. */
function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 100 ? `${v.slice(0, 100)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return `a JSON ${v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v}`;
}

/** Validates the fields every stored event needs; names the first missing one. */
function checkEvent(e: Json): string | null {
  if (typeof e.auditID !== 'string' || e.auditID === '') return 'missing field auditID';
  if (typeof e.stage !== 'string' || !STAGES.includes(e.stage as Stage)) {
    return `field stage: ${e.stage === undefined ? 'missing' : `unknown stage ${shown(e.stage)}`}`;
  }
  if (typeof e.verb !== 'string') return 'missing field verb';
  if (
    typeof e.requestReceivedTimestamp !== 'string' ||
    Number.isNaN(Date.parse(e.requestReceivedTimestamp))
  ) {
    return 'field requestReceivedTimestamp: missing or not a timestamp';
  }
  if (e.user !== undefined && !isRecord(e.user)) return 'field user: not an object';
  return null;
}

/** v1beta1 / v1alpha1 / no apiVersion -> v1: the field names are the same; drop what v1 removed. */
function toV1(e: Json): Json {
  const out: Json = { kind: 'Event', apiVersion: 'audit.k8s.io/v1' };
  const legacyTs = typeof e.timestamp === 'string' ? e.timestamp : undefined;
  for (const [k, v] of Object.entries(e)) {
    if (k === 'kind' || k === 'apiVersion' || k === 'metadata' || k === 'timestamp') continue;
    out[k] = v;
  }
  // v1beta1 events written before requestReceivedTimestamp existed carry only `timestamp`.
  if (out.requestReceivedTimestamp === undefined && legacyTs !== undefined)
    out.requestReceivedTimestamp = legacyTs;
  if (out.stageTimestamp === undefined && out.requestReceivedTimestamp !== undefined) {
    out.stageTimestamp = out.requestReceivedTimestamp;
  }
  if (out.user === undefined) out.user = {};
  if (out.requestURI === undefined) out.requestURI = '';
  if (out.level === undefined) out.level = 'Metadata';
  return out;
}

// google.rpc.Code -> HTTP, as GKE maps kube-apiserver statuses into Cloud Audit Logs.
const RPC_TO_HTTP: Record<number, number> = {
  0: 200,
  1: 499,
  2: 500,
  3: 400,
  4: 504,
  5: 404,
  6: 409,
  7: 403,
  8: 429,
  9: 400,
  10: 409,
  11: 400,
  12: 501,
  13: 500,
  14: 503,
  15: 500,
  16: 401,
};

/** GKE `resourceName`: `core/v1/namespaces/ns/pods/name/exec` or `apps/v1/namespaces/ns/deployments`. */
function gkeObjectRef(resourceName: string): { ref: Json; uri: string } {
  const parts = resourceName.split('/').filter((p) => p !== '');
  const group = parts[0] === 'core' ? '' : (parts[0] ?? '');
  const version = parts[1] ?? '';
  let rest = parts.slice(2);
  const ref: Json = { apiVersion: version };
  if (group !== '') ref.apiGroup = group;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    ref.namespace = rest[1];
    rest = rest.slice(2);
  }
  if (rest[0] !== undefined) ref.resource = rest[0];
  if (rest[1] !== undefined) ref.name = rest[1];
  if (rest[2] !== undefined) ref.subresource = rest[2];
  if (ref.resource === 'namespaces' && ref.name !== undefined && ref.namespace === undefined) {
    ref.namespace = ref.name;
  }
  const prefix = group === '' ? `/api/${version}` : `/apis/${group}/${version}`;
  return { ref, uri: `${prefix}/${parts.slice(2).join('/')}` };
}

function fromGke(entry: Json, p: Json): Normalized {
  const method = typeof p.methodName === 'string' ? p.methodName : '';
  const verb = method.split('.').pop() ?? '';
  const auth = isRecord(p.authenticationInfo) ? p.authenticationInfo : {};
  const meta = isRecord(p.requestMetadata) ? p.requestMetadata : {};
  const status = isRecord(p.status) ? p.status : {};
  const labels = isRecord(entry.labels) ? entry.labels : {};
  const op = isRecord(entry.operation) ? entry.operation : {};
  const id = typeof op.id === 'string' ? op.id : typeof entry.insertId === 'string' ? entry.insertId : '';
  const ts = typeof entry.timestamp === 'string' ? entry.timestamp : '';
  const { ref, uri } = gkeObjectRef(typeof p.resourceName === 'string' ? p.resourceName : '');
  // No code is OK; a code that is not one of google.rpc.Code's (a huge number kept as text, a
  // string) is taken for an unknown failure, as any other code outside the table.
  const rpc = status.code === undefined ? 0 : typeof status.code === 'number' ? status.code : -1;
  const annotations: Record<string, string> = { [SOURCE_FORMAT_ANNOTATION]: 'gke' };
  for (const [k, v] of Object.entries(labels)) if (typeof v === 'string') annotations[k] = v;
  const event: Json = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: p.request !== undefined || p.response !== undefined ? 'RequestResponse' : 'Metadata',
    auditID: id,
    stage: 'ResponseComplete',
    requestURI: uri,
    verb,
    user: { username: typeof auth.principalEmail === 'string' ? auth.principalEmail : '' },
    sourceIPs: typeof meta.callerIp === 'string' ? [meta.callerIp] : [],
    objectRef: ref,
    responseStatus: {
      metadata: {},
      code: RPC_TO_HTTP[rpc] ?? 500,
      ...(typeof status.message === 'string' && status.message !== '' ? { message: status.message } : {}),
    },
    requestReceivedTimestamp: ts,
    stageTimestamp: ts,
    annotations,
  };
  if (typeof meta.callerSuppliedUserAgent === 'string') event.userAgent = meta.callerSuppliedUserAgent;
  if (p.request !== undefined) event.requestObject = p.request;
  if (p.response !== undefined) event.responseObject = p.response;
  const problem = checkEvent(event);
  return problem
    ? { ok: false, reason: `GKE audit entry: ${problem}` }
    : { ok: true, events: [event as unknown as AuditEvent] };
}

function fromAks(props: Json): Normalized {
  let log: unknown = props.log;
  if (typeof log === 'string') {
    try {
      log = parseJsonKeepingNumbers(log);
    } catch {
      return { ok: false, reason: 'AKS record: properties.log is a string but not JSON' };
    }
  }
  if (!isRecord(log)) return { ok: false, reason: 'AKS record: properties.log is not an object' };
  const inner = normalizeValue(log);
  if (inner.ok)
    for (const e of inner.events) e.annotations = { ...e.annotations, [SOURCE_FORMAT_ANNOTATION]: 'aks' };
  return inner.ok ? inner : { ok: false, reason: `AKS record: ${inner.reason}` };
}

/** A list item (or the whole value) that is not an audit event. */
export interface NormalizeProblem {
  /** Where it sits: `item 3`, `EventList item 3`; empty for the whole value. */
  where: string;
  reason: string;
  value: unknown;
}

export interface NormalizedBatch {
  /** The value is a list (array, EventList, Azure `records`): its items stand or fall alone. */
  list: boolean;
  events: AuditEvent[];
  /** Where each of `events` sits, as NormalizeProblem.where. */
  wheres: string[];
  problems: NormalizeProblem[];
}

/** Lists inside lists (an array of EventLists, say) deeper than this are not audit input. */
const MAX_LIST_NESTING = 4;

/** `where: reason`, or the reason alone for the whole value. */
export function problemText(p: NormalizeProblem): string {
  return p.where === '' ? p.reason : `${p.where}: ${p.reason}`;
}

function walk(value: unknown, where: string, lists: number, out: NormalizedBatch): void {
  const items = listItems(value);
  if (items !== undefined) {
    if (!items.ok) {
      out.problems.push({ where, reason: items.reason, value });
      return;
    }
    if (lists >= MAX_LIST_NESTING) {
      out.problems.push({ where, reason: `lists nested more than ${MAX_LIST_NESTING} deep`, value });
      return;
    }
    if (lists === 0) out.list = true;
    for (const [i, item] of items.items.entries()) {
      walk(item, `${where === '' ? '' : `${where} `}${items.label}item ${i}`, lists + 1, out);
    }
    return;
  }
  const r = isRecord(value)
    ? normalizeObject(value)
    : { ok: false as const, reason: `not an audit Event: a JSON ${value === null ? 'null' : typeof value}` };
  if (!r.ok) {
    out.problems.push({ where, reason: r.reason, value });
    return;
  }
  for (const e of r.events) {
    out.events.push(e);
    out.wheres.push(where);
  }
}

/** The items of a list (array, EventList, Azure `records`); undefined for anything else. */
function listItems(
  value: unknown,
): { ok: true; items: unknown[]; label: string } | { ok: false; reason: string } | undefined {
  if (Array.isArray(value)) return { ok: true, items: value, label: '' };
  if (!isRecord(value)) return undefined;
  if (value.kind === 'EventList') {
    return Array.isArray(value.items)
      ? { ok: true, items: value.items, label: 'EventList ' }
      : { ok: false, reason: 'EventList without items' };
  }
  if (Array.isArray(value.records)) return { ok: true, items: value.records, label: '' };
  return undefined;
}

/**
 * Any parsed JSON value -> v1 events, item by item: in a list (array, EventList, Azure `records`)
 * one bad item costs only itself and is returned in `problems` with its place.
 */
export function normalizeBatch(value: unknown): NormalizedBatch {
  const out: NormalizedBatch = { list: false, events: [], wheres: [], problems: [] };
  walk(value, '', 0, out);
  return out;
}

/** Any parsed JSON value -> v1 events, all or nothing: the first bad item fails the whole value. */
export function normalizeValue(value: unknown): Normalized {
  const b = normalizeBatch(value);
  const first = b.problems[0];
  return first === undefined ? { ok: true, events: b.events } : { ok: false, reason: problemText(first) };
}

/** One object that is not a list: an Event in any of its forms, a GKE entry, an AKS record. */
function normalizeObject(value: Json): Normalized {
  if (isRecord(value.protoPayload)) return fromGke(value, value.protoPayload);
  if (isRecord(value.properties) && 'log' in value.properties) return fromAks(value.properties);
  const apiVersion = value.apiVersion;
  if (apiVersion !== undefined && typeof apiVersion === 'string' && !apiVersion.startsWith('audit.k8s.io/')) {
    return { ok: false, reason: `not an audit Event: apiVersion ${shown(apiVersion)}` };
  }
  if (value.kind !== undefined && value.kind !== 'Event') {
    return { ok: false, reason: `not an audit Event: kind ${shown(value.kind)}` };
  }
  const isPlainV1 =
    apiVersion === 'audit.k8s.io/v1' &&
    value.kind === 'Event' &&
    typeof value.requestReceivedTimestamp === 'string';
  const event = isPlainV1 ? value : toV1(value);
  const problem = checkEvent(event);
  if (problem) return { ok: false, reason: `not an audit Event: ${problem}` };
  return { ok: true, events: [event as unknown as AuditEvent] };
}
