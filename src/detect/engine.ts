/**
 * The detection engine: rules compiled once into predicates, dispatched on the event's verb and
 * resource so each event meets only the rules that can match it, then allowlists, then the state
 * of stateful rules. The same engine runs in `kaudit detect`, in backtests over the store and live
 * in the agent (a sink after the store), so all three raise the same alerts.
 */
import type { AuditEvent } from '../model/event.js';
import type { LoggedAlert } from './alert-log.js';
import { type Condition, cidrTest, compileEventCondition } from './condition.js';
import { compileGetter, EventContext, parsePath, valueText } from './fields.js';
import { ALLOW_KINDS, type Allowlist, type Rule, type RuleSource } from './rule.js';
import {
  DEFAULT_MAX_KEYS,
  type KeyOf,
  newTermMatcher,
  type StatefulMatcher,
  sequenceMatcher,
  thresholdMatcher,
} from './stateful.js';

/** One alert, one NDJSON line (docs/detect.md). */
export interface Alert extends LoggedAlert {
  time: string;
  rule: {
    id: string;
    title: string;
    severity: string;
    tactic: string[];
    technique: string[];
    equivalents: string[];
    source: RuleSource;
  };
  auditID: string;
  stage: string;
  subject: string | null;
  sourceIP: string | null;
  userAgent: string | null;
  verb: string;
  resource: string | null;
  namespace: string | null;
  name: string | null;
  cluster: string;
  message: string;
  /** Stateful rules: every event that together raised the alert, oldest first. */
  auditIDs?: string[];
}

export interface EngineOptions {
  /** Added to every rule's own allowlist (the agent config's `detect.allow`). */
  allow?: Partial<Allowlist>;
  /** Cap on keys each stateful rule keeps (least recently used are forgotten). */
  maxKeysPerRule?: number;
}

interface CompiledRule {
  rule: Rule;
  match: ((ctx: EventContext) => boolean) | undefined;
  allowed: ((ctx: EventContext) => boolean) | undefined;
  stateful: StatefulMatcher | undefined;
  message: (ctx: EventContext) => string;
  /** Verbs and resources the rule can match; undefined: any. */
  verbs: ReadonlySet<string> | undefined;
  resources: ReadonlySet<string> | undefined;
}

/** Distinct (verb, resource) pairs remembered for dispatch; beyond this, candidates are recomputed. */
const MAX_DISPATCH_ENTRIES = 10_000;

export class DetectionEngine {
  private readonly compiled: CompiledRule[];
  private readonly dispatch = new Map<string, CompiledRule[]>();
  private readonly counts = new Map<string, number>();

  constructor(
    readonly rules: readonly Rule[],
    options: EngineOptions = {},
  ) {
    const maxKeys = options.maxKeysPerRule ?? DEFAULT_MAX_KEYS;
    this.compiled = rules.map((r) => compileRule(r, options.allow ?? {}, maxKeys));
  }

  /** The alerts this event raises, in rule order. */
  process(event: AuditEvent, meta: { cluster: string }): Alert[] {
    const candidates = this.candidates(event.verb, event.objectRef?.resource);
    if (candidates.length === 0) return [];
    const ctx = new EventContext(event, meta.cluster);
    let out: Alert[] | undefined;
    for (const c of candidates) {
      if (c.match !== undefined && !c.match(ctx)) continue;
      if (c.allowed?.(ctx)) continue;
      let auditIDs: string[] | undefined;
      if (c.stateful !== undefined) {
        const fired = c.stateful.offer(ctx);
        if (fired === undefined) continue;
        auditIDs = fired.auditIDs;
      }
      const alert = buildAlert(c, ctx, auditIDs);
      this.counts.set(c.rule.id, (this.counts.get(c.rule.id) ?? 0) + 1);
      if (out === undefined) out = [alert];
      else out.push(alert);
    }
    return out ?? [];
  }

  /** Alerts raised so far, by rule id. */
  alertCounts(): ReadonlyMap<string, number> {
    return this.counts;
  }

  private candidates(verb: string, resource: string | undefined): CompiledRule[] {
    const key = `${verb}\u0000${resource ?? ''}`;
    let list = this.dispatch.get(key);
    if (list !== undefined) return list;
    list = this.compiled.filter(
      (c) =>
        (c.verbs === undefined || c.verbs.has(verb)) &&
        (c.resources === undefined || (resource !== undefined && c.resources.has(resource))),
    );
    if (this.dispatch.size < MAX_DISPATCH_ENTRIES) this.dispatch.set(key, list);
    return list;
  }
}

function compileRule(rule: Rule, extra: Partial<Allowlist>, maxKeys: number): CompiledRule {
  const match = rule.match === undefined ? undefined : compileEventCondition(rule.match);
  const dispatchOn = rule.kind === 'sequence' ? undefined : rule.match;
  let stateful: StatefulMatcher | undefined;
  if (rule.kind === 'threshold' && rule.threshold !== undefined) {
    const t = rule.threshold;
    stateful = thresholdMatcher(
      t,
      keyOf(t.groupBy),
      t.distinct === undefined ? undefined : keyOf([t.distinct]),
      maxKeys,
    );
  } else if (rule.kind === 'new_term' && rule.newTerm !== undefined) {
    stateful = newTermMatcher(rule.newTerm, keyOf(rule.newTerm.key), keyOf(rule.newTerm.value), maxKeys);
  } else if (rule.kind === 'sequence' && rule.sequence !== undefined) {
    const steps = rule.sequence.steps.map(compileEventCondition);
    stateful = sequenceMatcher(rule.sequence, steps, keyOf(rule.sequence.by), maxKeys);
  }
  const sequenceDispatch =
    rule.kind === 'sequence' && rule.sequence !== undefined ? { any: rule.sequence.steps } : undefined;
  return {
    rule,
    match,
    allowed: compileAllowlist(mergeAllow(rule.allow, extra)),
    stateful,
    message: compileMessage(rule.message),
    verbs: required(dispatchOn, ['verb'], sequenceDispatch?.any),
    resources: required(dispatchOn, ['objectRef', 'resource'], sequenceDispatch?.any),
  };
}

/**
 * The values a field must take for the condition to hold, when the condition says so at its top
 * (`{all: [{field: verb, in: [...]}, ...]}`); undefined when it may hold for any value. For a
 * sequence, the union over its steps.
 */
export function required(
  c: Condition | undefined,
  field: string[],
  anyOf?: Condition[],
): Set<string> | undefined {
  if (anyOf !== undefined) {
    const out = new Set<string>();
    for (const step of anyOf) {
      const s = required(step, field);
      if (s === undefined) return undefined;
      for (const v of s) out.add(v);
    }
    return out;
  }
  if (c === undefined) return undefined;
  const same = (f: string[]) => f.length === field.length && f.every((x, i) => x === field[i]);
  if (c.kind === 'test' && same(c.field) && !c.ignoreCase && (c.op === 'equals' || c.op === 'in')) {
    const list = Array.isArray(c.value) ? c.value : [c.value];
    if (list.every((v) => typeof v === 'string')) return new Set(list as string[]);
    return undefined;
  }
  if (c.kind === 'all') {
    for (const part of c.of) {
      const s = required(part, field);
      if (s !== undefined) return s;
    }
    return undefined;
  }
  if (c.kind === 'any') {
    const out = new Set<string>();
    for (const part of c.of) {
      const s = required(part, field);
      if (s === undefined) return undefined;
      for (const v of s) out.add(v);
    }
    return out;
  }
  return undefined;
}

function keyOf(fields: readonly string[][]): KeyOf {
  const getters = fields.map((f) => compileGetter(f, false));
  const text = valueText;
  if (getters.length === 1) {
    const g = getters[0] as (root: unknown) => unknown;
    return (ctx) => text(g(ctx));
  }
  return (ctx) => {
    const parts: string[] = [];
    for (const g of getters) {
      const t = text(g(ctx));
      if (t === undefined) return undefined;
      parts.push(t);
    }
    return parts.join('\u0000');
  };
}

function mergeAllow(a: Allowlist, b: Partial<Allowlist>): Allowlist {
  const out = { ...a };
  for (const k of ALLOW_KINDS) out[k] = [...a[k], ...(b[k] ?? [])];
  return out;
}

function compileAllowlist(allow: Allowlist): ((ctx: EventContext) => boolean) | undefined {
  const tests: ((ctx: EventContext) => boolean)[] = [];
  if (allow.subjects.length > 0) {
    const s = new Set(allow.subjects);
    tests.push((ctx) => s.has(ctx.subject ?? '') || s.has(ctx.event.user?.username ?? ''));
  }
  if (allow.groups.length > 0) {
    const s = new Set(allow.groups);
    tests.push(
      (ctx) =>
        (ctx.event.user?.groups ?? []).some((g) => s.has(g)) ||
        (ctx.event.impersonatedUser?.groups ?? []).some((g) => s.has(g)),
    );
  }
  if (allow.namespaces.length > 0) {
    const s = new Set(allow.namespaces);
    tests.push((ctx) => s.has(ctx.event.objectRef?.namespace ?? '\u0000'));
  }
  if (allow.images.length > 0) {
    const imageAllowed = (image: string) =>
      allow.images.some((a) =>
        a.endsWith('/*') || a.endsWith(':*') ? image.startsWith(a.slice(0, -1)) : image === a,
      );
    // Allowed only when every container runs an allowed image: one unknown image is reason enough.
    tests.push((ctx) => {
      const images = ctx.containers.map((c) => (c as { image?: unknown })?.image);
      return images.length > 0 && images.every((i) => typeof i === 'string' && imageAllowed(i));
    });
  }
  if (allow.userAgents.length > 0) {
    const prefixes = allow.userAgents;
    tests.push((ctx) => {
      const ua = ctx.event.userAgent ?? '';
      return prefixes.some((p) => ua.startsWith(p));
    });
  }
  if (allow.sourceCidrs.length > 0) {
    const inRange = cidrTest(allow.sourceCidrs);
    tests.push((ctx) => inRange(ctx.sourceIP));
  }
  if (tests.length === 0) return undefined;
  return (ctx) => tests.some((t) => t(ctx));
}

function compileMessage(template: string): (ctx: EventContext) => string {
  // Each placeholder's getter is compiled once, with the rule, not at every alert.
  const parts: (string | ((ctx: EventContext) => unknown))[] = [];
  let last = 0;
  for (const m of template.matchAll(/\{([^}]*)\}/g)) {
    parts.push(template.slice(last, m.index));
    parts.push(compileGetter(parsePath(m[1] ?? '') ?? [], false) as (ctx: EventContext) => unknown);
    last = (m.index ?? 0) + m[0].length;
  }
  parts.push(template.slice(last));
  return (ctx) => parts.map((p) => (typeof p === 'string' ? p : (valueText(p(ctx)) ?? ''))).join('');
}

function buildAlert(c: CompiledRule, ctx: EventContext, auditIDs: string[] | undefined): Alert {
  const e = ctx.event;
  const r = c.rule;
  const ref = e.objectRef;
  const resource =
    ref?.resource === undefined
      ? null
      : ref.subresource
        ? `${ref.resource}/${ref.subresource}`
        : ref.resource;
  const alert: Alert = {
    time: e.stageTimestamp ?? e.requestReceivedTimestamp,
    rule: {
      id: r.id,
      title: r.title,
      severity: r.severity,
      tactic: r.tactic,
      technique: r.technique,
      equivalents: r.equivalents,
      source: r.source,
    },
    auditID: e.auditID,
    stage: e.stage,
    subject: ctx.subject ?? null,
    sourceIP: ctx.sourceIP ?? null,
    userAgent: e.userAgent ?? null,
    verb: e.verb,
    resource,
    namespace: ref?.namespace ?? null,
    name: ref?.name ?? null,
    cluster: ctx.cluster,
    message: c.message(ctx),
  };
  if (auditIDs !== undefined) alert.auditIDs = auditIDs;
  return alert;
}
