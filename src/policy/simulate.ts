import type { AuditEvent, Level } from '../model/event.js';
import { LEVELS } from '../model/event.js';
import { evaluatePolicy } from './evaluate.js';
import { SENSITIVE_RESOURCES } from './known-api.js';
import { type PolicyFeatures, policyFeatures } from './kube-version.js';
import { attributesFromEvent } from './request-attributes.js';
import type { Policy } from './types.js';

export interface CapturedEvent {
  event: AuditEvent;
  /** Size of the event as captured, in bytes. */
  bytes: number;
}

export interface RuleOutcome {
  index: number;
  level: string;
  /** Captured events this rule is the first match for. */
  matched: number;
  /** Of those, the events the new log keeps (level not None, stage not omitted). */
  events: number;
  bytes: number;
}

export interface DroppedGroup {
  user: string;
  verb: string;
  resource: string;
  requests: number;
}

export interface SimulationReport {
  input: {
    events: number;
    bytes: number;
    requests: number;
    from: string | null;
    to: string | null;
    bytesPerDay: number | null;
  };
  output: {
    events: number;
    bytes: number;
    requests: number;
    bytesPerDay: number | null;
    ratio: number | null;
  };
  rules: RuleOutcome[];
  /** Captured events no rule matches (level None). */
  unmatched: { events: number; bytes: number };
  /** Kept events that would carry a request or response body of a secret-like resource. */
  sensitiveBodies: { events: number; byResource: Record<string, number> };
  /** Captured requests (auditIDs) of which the new log keeps no event at all. */
  dropped: { requests: number; events: number; top: DroppedGroup[] };
  /**
   * Kept events the new policy logs at a higher level than they were captured at: their bodies are not in
   * the capture, so their size is a lower bound.
   */
  bodiesNotCaptured: number;
}

export interface SimulateOptions {
  features?: PolicyFeatures;
  /** How many dropped (user, verb, resource) groups to list. */
  topDropped?: number;
}

const rank = (l: string) => LEVELS.indexOf(l as Level);
const bodyBytes = (key: string, v: unknown) =>
  v === undefined ? 0 : Buffer.byteLength(`,"${key}":${JSON.stringify(v)}`);

function managedFieldsBytes(body: unknown): number {
  if (typeof body !== 'object' || body === null) return 0;
  const o = body as { metadata?: { managedFields?: unknown }; items?: unknown };
  let n = o.metadata?.managedFields === undefined ? 0 : bodyBytes('managedFields', o.metadata.managedFields);
  if (Array.isArray(o.items)) for (const item of o.items) n += managedFieldsBytes(item);
  return n;
}

/**
 * The size the event would have at `level`: kube-apiserver logs no bodies at Metadata and no response
 * body at Request, and strips managedFields from bodies when omitManagedFields is set.
 */
export function estimateBytes(
  e: AuditEvent,
  captured: number,
  level: Level,
  omitManagedFields: boolean,
): number {
  let n = captured + Buffer.byteLength(level) - Buffer.byteLength(e.level ?? '');
  const keepRequest = rank(level) >= rank('Request');
  const keepResponse = level === 'RequestResponse';
  if (!keepRequest) n -= bodyBytes('requestObject', e.requestObject);
  if (!keepResponse) n -= bodyBytes('responseObject', e.responseObject);
  if (omitManagedFields) {
    if (keepRequest) n -= managedFieldsBytes(e.requestObject);
    if (keepResponse) n -= managedFieldsBytes(e.responseObject);
  }
  return Math.max(n, 0);
}

function sensitiveLabel(e: AuditEvent): string | undefined {
  const ref = e.objectRef;
  if (!ref) return undefined;
  return SENSITIVE_RESOURCES.find(
    (s) =>
      s.group === (ref.apiGroup ?? '') &&
      s.resource === ref.resource &&
      s.subresource === (ref.subresource ?? ''),
  )?.label;
}

/** Whether the event would carry a body at `level`: a write's request body, or a completed response. */
function carriesBody(e: AuditEvent, level: Level): boolean {
  if (rank(level) < rank('Request')) return false;
  const writes = e.verb === 'create' || e.verb === 'update' || e.verb === 'patch';
  if (writes || e.requestObject !== undefined) return true;
  return level === 'RequestResponse' && e.stage === 'ResponseComplete' && e.verb !== 'watch';
}

const perDay = (bytes: number, from: string | null, to: string | null): number | null => {
  if (from === null || to === null) return null;
  const seconds = (Date.parse(to) - Date.parse(from)) / 1000;
  return Number.isFinite(seconds) && seconds > 0 ? Math.round((bytes * 86_400) / seconds) : null;
};

/** Applies `policy` to captured events: what the new log would keep, per rule, and what it would lose. */
export async function simulatePolicy(
  policy: Policy,
  events: AsyncIterable<CapturedEvent> | Iterable<CapturedEvent>,
  opts: SimulateOptions = {},
): Promise<SimulationReport> {
  const f = opts.features ?? policyFeatures();
  const rules: RuleOutcome[] = policy.rules.map((r, index) => ({
    index,
    level: r.level,
    matched: 0,
    events: 0,
    bytes: 0,
  }));
  const input = { events: 0, bytes: 0 };
  const output = { events: 0, bytes: 0 };
  const unmatched = { events: 0, bytes: 0 };
  const sensitive = { events: 0, byResource: {} as Record<string, number> };
  let bodiesNotCaptured = 0;
  let from: string | null = null;
  let to: string | null = null;
  let fromMs = Number.POSITIVE_INFINITY;
  let toMs = Number.NEGATIVE_INFINITY;
  const requests = new Map<string, { kept: boolean; events: number; key: string }>();

  for await (const { event: e, bytes } of events) {
    input.events++;
    input.bytes += bytes;
    const start = e.requestReceivedTimestamp ?? e.stageTimestamp;
    const end = e.stageTimestamp ?? e.requestReceivedTimestamp;
    // Compared as instants: timestamps differ in precision and may carry offsets.
    const startMs = start ? Date.parse(start) : Number.NaN;
    const endMs = end ? Date.parse(end) : Number.NaN;
    if (start && Number.isFinite(startMs) && startMs < fromMs) {
      fromMs = startMs;
      from = start;
    }
    if (end && Number.isFinite(endMs) && endMs > toMs) {
      toMs = endMs;
      to = end;
    }

    const d = evaluatePolicy(policy, attributesFromEvent(e), f);
    const kept = d.level !== 'None' && !d.omitStages.includes(e.stage);
    const id = e.auditID ?? `${input.events}`;
    const ref = e.objectRef;
    const resource = ref
      ? [ref.apiGroup, ref.subresource ? `${ref.resource}/${ref.subresource}` : ref.resource]
          .filter(Boolean)
          .join('/')
      : e.requestURI;
    const req = requests.get(id) ?? {
      kept: false,
      events: 0,
      key: `${e.user?.username ?? ''}\u0000${e.verb}\u0000${resource}`,
    };
    req.events++;
    requests.set(id, req);

    if (d.rule === null) {
      unmatched.events++;
      unmatched.bytes += bytes;
    }
    const outcome = d.rule === null ? undefined : rules[d.rule];
    if (outcome) outcome.matched++;
    if (!kept) continue;

    req.kept = true;
    const size = estimateBytes(e, bytes, d.level, d.omitManagedFields);
    output.events++;
    output.bytes += size;
    if (outcome) {
      outcome.events++;
      outcome.bytes += size;
    }
    if (rank(d.level) > rank(e.level)) bodiesNotCaptured++;
    const label = sensitiveLabel(e);
    if (label !== undefined && carriesBody(e, d.level)) {
      sensitive.events++;
      sensitive.byResource[label] = (sensitive.byResource[label] ?? 0) + 1;
    }
  }

  const groups = new Map<string, number>();
  let droppedRequests = 0;
  let droppedEvents = 0;
  let keptRequests = 0;
  for (const r of requests.values()) {
    if (r.kept) {
      keptRequests++;
      continue;
    }
    droppedRequests++;
    droppedEvents += r.events;
    groups.set(r.key, (groups.get(r.key) ?? 0) + 1);
  }
  const top = [...groups.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, opts.topDropped ?? 10)
    .map(([key, n]) => {
      const [user = '', verb = '', resource = ''] = key.split('\u0000');
      return { user, verb, resource, requests: n };
    });

  const inPerDay = perDay(input.bytes, from, to);
  const outPerDay = perDay(output.bytes, from, to);
  return {
    input: { ...input, requests: requests.size, from, to, bytesPerDay: inPerDay },
    output: {
      ...output,
      requests: keptRequests,
      bytesPerDay: outPerDay,
      ratio: input.bytes > 0 ? output.bytes / input.bytes : null,
    },
    rules,
    unmatched,
    sensitiveBodies: sensitive,
    dropped: { requests: droppedRequests, events: droppedEvents, top },
    bodiesNotCaptured,
  };
}
