/**
 * One audit event flattened into what the analyses need: who asked (after impersonation), the
 * authorizer's attributes, and how the apiserver answered. Absent request fields are '' (as the
 * authorizer's AttributesRecord holds them), absent answers are null.
 */
import { type AuditEvent, DECISION_ANNOTATION, REASON_ANNOTATION, type Stage } from '../model/event.js';

export type Decision = 'allow' | 'forbid';

export interface RequestRecord {
  auditID: string;
  stage: Stage;
  /** requestReceivedTimestamp, RFC3339. */
  time: string;
  username: string;
  groups: string[];
  impersonatedUser: string | null;
  impersonatedGroups: string[] | null;
  /** The identity the authorizer checked: the impersonated user when there is one, else the user. */
  subject: string;
  subjectGroups: string[];
  verb: string;
  /** True when the request names an API object (objectRef), false for a non-resource URL. */
  resourceRequest: boolean;
  apiGroup: string;
  apiVersion: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  /** The requestURI's path when there is no objectRef (`/healthz`, `/apis`). */
  nonResourceURL: string;
  code: number | null;
  decision: Decision | null;
  /** authorization.k8s.io/reason. */
  reason: string;
  /** responseStatus.message. */
  message: string;
  /** responseStatus.reason (Forbidden, Unauthorized, TooManyRequests...). */
  statusReason: string;
  annotations: Record<string, string>;
  sourceIP: string;
  sourceIPs: string[];
  userAgent: string;
  /**
   * Requests this record stands for, when it is one shape of many identical requests (read from
   * the store's aggregates, `time` the first and `lastTime` the last of them); absent: one.
   */
  count?: number;
  lastTime?: string;
}

// kube-apiserver authorization.go (ForbiddenMessage / forbidden()): the RBAC authorizer's 403 reads
// `<what> is forbidden: User "<name>" cannot <verb> ...`; before 1.11 it had no `resource "..."` part.
// Admission rejections (`violates PodSecurity`, `admission webhook ... denied`) never say `User "...` cannot`.
const AUTHORIZER_FORBIDDEN = /(?:^|\s)forbidden: User "[^"]*" cannot /;

/** The authorization decision: the audit annotation, else read from an authorizer's 403 message (logs older than 1.11 have no annotation). */
export function decisionOf(e: AuditEvent): Decision | null {
  const a = e.annotations?.[DECISION_ANNOTATION];
  if (a === 'allow' || a === 'forbid') return a;
  const code = e.responseStatus?.code;
  if (code === 403 && AUTHORIZER_FORBIDDEN.test(e.responseStatus?.message ?? '')) return 'forbid';
  return null;
}

function pathOf(uri: string): string {
  const q = uri.indexOf('?');
  return q < 0 ? uri : uri.slice(0, q);
}

export function recordFromEvent(e: AuditEvent): RequestRecord {
  const ref = e.objectRef;
  const username = e.user.username ?? '';
  const groups = e.user.groups ?? [];
  const imp = e.impersonatedUser;
  const sourceIPs = e.sourceIPs ?? [];
  return {
    auditID: e.auditID,
    stage: e.stage,
    time: e.requestReceivedTimestamp,
    username,
    groups,
    impersonatedUser: imp?.username ?? null,
    impersonatedGroups: imp === undefined ? null : (imp.groups ?? []),
    subject: imp?.username ?? username,
    subjectGroups: imp === undefined ? groups : (imp.groups ?? []),
    verb: e.verb,
    resourceRequest: ref !== undefined,
    apiGroup: ref?.apiGroup ?? '',
    apiVersion: ref?.apiVersion ?? '',
    resource: ref?.resource ?? '',
    subresource: ref?.subresource ?? '',
    namespace: ref?.namespace ?? '',
    name: ref?.name ?? '',
    nonResourceURL: ref === undefined ? pathOf(e.requestURI) : '',
    code: e.responseStatus?.code ?? null,
    decision: decisionOf(e),
    reason: e.annotations?.[REASON_ANNOTATION] ?? '',
    message: e.responseStatus?.message ?? '',
    statusReason: e.responseStatus?.reason ?? '',
    annotations: e.annotations ?? {},
    sourceIP: sourceIPs[0] ?? '',
    sourceIPs,
    userAgent: e.userAgent ?? '',
  };
}

/**
 * Records of the events, one per request: its final stage (ResponseComplete or Panic), and for a
 * failed authentication the only event there is, ResponseStarted with 401
 * (apiserver filters/authn_audit.go WithFailedAuthenticationAudit).
 */
export async function* requestRecords(
  events: AsyncIterable<AuditEvent> | Iterable<AuditEvent>,
): AsyncGenerator<RequestRecord> {
  for await (const e of events) {
    const final = e.stage === 'ResponseComplete' || e.stage === 'Panic';
    const failedAuthn = e.stage === 'ResponseStarted' && e.responseStatus?.code === 401;
    if (final || failedAuthn) yield recordFromEvent(e);
  }
}

export type RecordSource = AsyncIterable<RequestRecord> | Iterable<RequestRecord>;

export async function collectRecords(source: RecordSource): Promise<RequestRecord[]> {
  const out: RequestRecord[] = [];
  for await (const r of source) out.push(r);
  return out;
}
