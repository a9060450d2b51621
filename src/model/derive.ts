/**
 * Fields computed once at ingest. This is the reference definition; a backend that computes them
 * in SQL (the embedded store's view) is tested against it.
 */
import type { AuditEvent } from './event.js';
import {
  DECISION_ANNOTATION,
  LATENCY_ANNOTATION_PREFIX,
  REASON_ANNOTATION,
  TRUNCATED_ANNOTATION,
} from './event.js';

// kube-apiserver BasicLongRunningRequestCheck as configured in its server options.
export const LONG_RUNNING_VERBS: ReadonlySet<string> = new Set(['watch', 'proxy']);
export const LONG_RUNNING_SUBRESOURCES: ReadonlySet<string> = new Set([
  'attach',
  'exec',
  'proxy',
  'log',
  'portforward',
]);

export interface DerivedFields {
  ts: string;
  stage_ts: string | null;
  audit_id: string;
  stage: string;
  level: string;
  verb: string;
  username: string | null;
  user_uid: string | null;
  groups: string[];
  impersonated_user: string | null;
  subject: string | null;
  source_ip: string | null;
  source_ips: string[];
  user_agent: string | null;
  api_group: string | null;
  api_version: string | null;
  resource: string | null;
  subresource: string | null;
  namespace: string | null;
  name: string | null;
  request_uri: string;
  code: number | null;
  decision: string | null;
  /** How the decision is known: the `authorization.k8s.io/decision` annotation, or the response (older events). */
  decision_source: 'annotation' | 'response' | null;
  reason: string | null;
  latency_ms: number | null;
  long_running: boolean;
  /** `apiserver.latency.k8s.io/<key>` annotations, in milliseconds, by key. */
  latency_breakdown: Record<string, number>;
  truncated: boolean;
  cluster: string;
}

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's time.Duration String() form (`1.5s`, `2m3.5s`, `350.123µs`) -> milliseconds; null if unparseable. */
export function parseGoDurationMs(text: string): number | null {
  const re = /([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)/g;
  let total = 0;
  let matched = '';
  for (const m of text.matchAll(re)) {
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? Number.NaN);
    matched += m[0];
  }
  const body = text.startsWith('-') ? text.slice(1) : text;
  if (text === '0s' || text === '0') return 0;
  // A duration past the float range (`1e400h` written out in digits) has no value in milliseconds.
  if (matched === '' || matched !== body || !Number.isFinite(total)) return null;
  return text.startsWith('-') ? -total : total;
}

/** RFC3339 with up to nanoseconds -> epoch microseconds (Date keeps only milliseconds). */
export function parseTimestampMicros(ts: string): number | null {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/.exec(ts);
  if (!m) return null;
  const base = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(base)) return null;
  const frac = (m[2] ?? '').padEnd(6, '0').slice(0, 6);
  return base * 1000 + Number(frac);
}

/**
 * responseStatus.code as the stores keep it: an integer within int32 (metav1.Status.Code is an int32,
 * so kube-apiserver writes nothing else). Anything else (`1e400`, 2^53+1, `200.5`, a string) is no
 * code: the event is stored as written and its code column is empty.
 */
export function statusCodeOf(code: unknown): number | null {
  return typeof code === 'number' && Number.isInteger(code) && code >= -2147483648 && code <= 2147483647
    ? code
    : null;
}

export function isLongRunning(verb: string, subresource: string | undefined): boolean {
  return (
    LONG_RUNNING_VERBS.has(verb) || (subresource !== undefined && LONG_RUNNING_SUBRESOURCES.has(subresource))
  );
}

/**
 * The authorizer's own refusal, as kube-apiserver words it (rbac/authorizer and
 * endpoints/handlers/responsewriters: `<resource> is forbidden: User "<name>" cannot <verb> resource
 * "<resource>" ...`, before 1.11 `... cannot <verb> <resource> in the namespace ...`, and
 * `... cannot <verb> path "<path>"` for non-resource URLs). Admission plugins
 * word their 403s differently, so they are not taken for RBAC denials.
 */
export const AUTHORIZER_FORBIDDEN = /forbidden: User "[^"]*" cannot \S+ /;

/**
 * The authorization decision: the annotation when the event has one; otherwise, for events older
 * than the annotation (Kubernetes before 1.11 wrote none), a 403 carrying the authorizer's message
 * is a `forbid`. Anything else is unknown.
 */
export function decisionOf(e: AuditEvent): {
  decision: string | null;
  source: 'annotation' | 'response' | null;
} {
  const ann = e.annotations?.[DECISION_ANNOTATION];
  if (ann !== undefined) return { decision: ann, source: 'annotation' };
  const status = e.responseStatus;
  if (status?.code === 403 && typeof status.message === 'string' && AUTHORIZER_FORBIDDEN.test(status.message))
    return { decision: 'forbid', source: 'response' };
  return { decision: null, source: null };
}

export function deriveFields(e: AuditEvent, cluster: string): DerivedFields {
  const ann = e.annotations ?? {};
  const ref = e.objectRef;
  // Events of old clusters (audit2rbac's demo, v1beta1) carry only `timestamp`.
  const received = e.requestReceivedTimestamp ?? (e as { timestamp?: string }).timestamp ?? '';
  const recv = parseTimestampMicros(received);
  const stage = e.stageTimestamp ? parseTimestampMicros(e.stageTimestamp) : null;
  const breakdown: Record<string, number> = {};
  for (const [k, v] of Object.entries(ann)) {
    if (!k.startsWith(LATENCY_ANNOTATION_PREFIX)) continue;
    const ms = parseGoDurationMs(v);
    if (ms !== null) breakdown[k.slice(LATENCY_ANNOTATION_PREFIX.length)] = ms;
  }
  const username = e.user?.username ?? null;
  const impersonated = e.impersonatedUser?.username ?? null;
  return {
    ts: received,
    // As the stores keep it: the stage time, else the receive time (so a row always has one).
    stage_ts: e.stageTimestamp ?? (received === '' ? null : received),
    audit_id: e.auditID,
    stage: e.stage,
    level: e.level,
    verb: e.verb,
    username,
    user_uid: e.user?.uid ?? null,
    groups: e.user?.groups ?? [],
    impersonated_user: impersonated,
    subject: impersonated ?? username,
    source_ip: e.sourceIPs?.[0] ?? null,
    source_ips: e.sourceIPs ?? [],
    user_agent: e.userAgent ?? null,
    api_group: ref ? (ref.apiGroup ?? '') : null,
    api_version: ref?.apiVersion ?? null,
    resource: ref?.resource ?? null,
    subresource: ref?.subresource ?? null,
    namespace: ref?.namespace ?? null,
    name: ref?.name ?? null,
    request_uri: e.requestURI,
    code: statusCodeOf(e.responseStatus?.code),
    ...(() => {
      const d = decisionOf(e);
      return { decision: d.decision, decision_source: d.source };
    })(),
    reason: ann[REASON_ANNOTATION] ?? null,
    latency_ms: recv !== null && stage !== null ? (stage - recv) / 1000 : null,
    long_running: isLongRunning(e.verb, ref?.subresource),
    latency_breakdown: breakdown,
    truncated: ann[TRUNCATED_ANNOTATION] === 'true',
    cluster,
  };
}
