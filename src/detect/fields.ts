/**
 * Field paths of the rule language: dotted paths into the audit Event, with bracket form for keys
 * that hold dots (`annotations["authorization.k8s.io/decision"]`), and the virtual fields the
 * engine derives once per event (subject, sourceIP, podSpec, containers, decision, cluster).
 */
import { decisionOf } from '../model/derive.js';
import type { AuditEvent } from '../model/event.js';

export const VIRTUAL_FIELDS = [
  'subject',
  'sourceIP',
  'podSpec',
  'containers',
  'decision',
  'cluster',
] as const;
export type VirtualField = (typeof VIRTUAL_FIELDS)[number];

/** One event as rules see it: the event and its virtual fields, each computed on first use. */
export class EventContext {
  private podSpecValue: unknown;
  private containersValue: unknown[] | undefined;
  private decisionValue: string | null | undefined;
  private timeMsValue: number | undefined;

  constructor(
    readonly event: AuditEvent,
    readonly cluster: string,
  ) {}

  get subject(): string | undefined {
    return this.event.impersonatedUser?.username ?? this.event.user?.username;
  }

  get sourceIP(): string | undefined {
    return this.event.sourceIPs?.[0];
  }

  /** The pod spec in the request body, whatever workload kind carries it. */
  get podSpec(): unknown {
    if (this.podSpecValue === undefined) this.podSpecValue = podSpecOf(this.event.requestObject) ?? null;
    return this.podSpecValue ?? undefined;
  }

  /** containers, initContainers and ephemeralContainers of the pod spec, as one list. */
  get containers(): unknown[] {
    if (this.containersValue === undefined) {
      const spec = this.podSpec as Record<string, unknown> | undefined;
      const out: unknown[] = [];
      if (spec !== undefined && spec !== null && typeof spec === 'object')
        for (const key of ['containers', 'initContainers', 'ephemeralContainers']) {
          const list = spec[key];
          if (Array.isArray(list)) out.push(...list);
        }
      this.containersValue = out;
    }
    return this.containersValue;
  }

  get decision(): string | undefined {
    if (this.decisionValue === undefined) this.decisionValue = decisionOf(this.event).decision;
    return this.decisionValue ?? undefined;
  }

  /** When the request was received, in ms since the epoch (windows of stateful rules use it). */
  get timeMs(): number {
    if (this.timeMsValue === undefined) {
      const t = Date.parse(this.event.requestReceivedTimestamp ?? this.event.stageTimestamp ?? '');
      this.timeMsValue = Number.isFinite(t) ? t : 0;
    }
    return this.timeMsValue;
  }
}

/** One accessor per virtual field: a fixed property read, not a lookup by name on every event. */
const VIRTUAL_ACCESSORS: Record<VirtualField, (ctx: EventContext) => unknown> = {
  subject: (ctx) => ctx.subject,
  sourceIP: (ctx) => ctx.sourceIP,
  podSpec: (ctx) => ctx.podSpec,
  containers: (ctx) => ctx.containers,
  decision: (ctx) => ctx.decision,
  cluster: (ctx) => ctx.cluster,
};

/** The pod spec of a Pod, a pod template (Deployment, DaemonSet, Job, ...) or a CronJob. */
function podSpecOf(body: unknown): unknown {
  const spec = (body as { spec?: Record<string, unknown> } | undefined)?.spec;
  if (spec === undefined || spec === null || typeof spec !== 'object') return undefined;
  const template = (spec.template as { spec?: unknown } | undefined)?.spec;
  if (template !== undefined) return template;
  const job = (spec.jobTemplate as { spec?: { template?: { spec?: unknown } } } | undefined)?.spec?.template
    ?.spec;
  if (job !== undefined) return job;
  // A Pod, or the Pod body of an ephemeralcontainers subresource request.
  return spec;
}

/** `a.b["c.d"].e` -> ['a', 'b', 'c.d', 'e']; undefined when the path is not well formed. */
export function parsePath(path: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  while (i < path.length) {
    if (path[i] === '[') {
      const m = /^\["((?:[^"\\]|\\.)*)"\]/.exec(path.slice(i));
      if (m === null) return undefined;
      out.push((m[1] ?? '').replace(/\\(.)/g, '$1'));
      i += m[0].length;
      if (path[i] === '.') i++;
      continue;
    }
    let j = i;
    while (j < path.length && path[j] !== '.' && path[j] !== '[') j++;
    if (j === i) return undefined;
    out.push(path.slice(i, j));
    i = j;
    if (path[i] === '.') {
      i++;
      if (i === path.length) return undefined;
    }
  }
  return out.length === 0 ? undefined : out;
}

/** Reads a field; an array met before the last step is walked element by element (flattened). */
export type Getter = (root: unknown) => unknown;

function walk(value: unknown, segs: readonly string[], from: number): unknown {
  let v = value;
  for (let i = from; i < segs.length; i++) {
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v)) {
      const out: unknown[] = [];
      for (const el of v) {
        const r = walk(el, segs, i);
        if (Array.isArray(r)) out.push(...r);
        else if (r !== undefined && r !== null) out.push(r);
      }
      return out;
    }
    if (typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[segs[i] as string];
  }
  return v;
}

/**
 * A getter for a path. At the top (`relative` false) the root is an EventContext: a virtual field
 * as first step reads it, anything else reads the event. Inside an array quantifier the root is
 * the element itself.
 */
export function compileGetter(segs: readonly string[], relative: boolean): Getter {
  const first = segs[0] as string;
  if (!relative && (VIRTUAL_FIELDS as readonly string[]).includes(first)) {
    const read = VIRTUAL_ACCESSORS[first as VirtualField];
    if (segs.length === 1) return (root) => read(root as EventContext);
    return (root) => walk(read(root as EventContext), segs, 1);
  }
  if (relative) {
    if (segs.length === 1) return (root) => (root as Record<string, unknown> | null)?.[first];
    return (root) => walk(root, segs, 0);
  }
  const hot = HOT_PATHS[segs.join('.')];
  if (hot !== undefined) return hot as Getter;
  if (segs.length === 1) return (root) => (root as EventContext).event[first as keyof AuditEvent];
  if (segs.length === 2) {
    const second = segs[1] as string;
    return (root) => {
      const v = (root as EventContext).event[first as keyof AuditEvent];
      if (v === undefined || v === null) return undefined;
      if (Array.isArray(v)) return walk(v, segs, 1);
      return (v as unknown as Record<string, unknown>)[second];
    };
  }
  return (root) => walk((root as EventContext).event, segs, 0);
}

/**
 * The fields nearly every rule tests, read by fixed property names: a read by a name held in a
 * variable costs V8 a generic lookup, and these run for every event (bench:detect).
 */
const HOT_PATHS: Record<string, (ctx: EventContext) => unknown> = {
  stage: (ctx) => ctx.event.stage,
  verb: (ctx) => ctx.event.verb,
  userAgent: (ctx) => ctx.event.userAgent,
  requestURI: (ctx) => ctx.event.requestURI,
  sourceIPs: (ctx) => ctx.event.sourceIPs,
  'objectRef.resource': (ctx) => ctx.event.objectRef?.resource,
  'objectRef.subresource': (ctx) => ctx.event.objectRef?.subresource,
  'objectRef.namespace': (ctx) => ctx.event.objectRef?.namespace,
  'objectRef.name': (ctx) => ctx.event.objectRef?.name,
  'objectRef.apiGroup': (ctx) => ctx.event.objectRef?.apiGroup,
  'responseStatus.code': (ctx) => ctx.event.responseStatus?.code,
  'user.username': (ctx) => ctx.event.user?.username,
  'user.groups': (ctx) => ctx.event.user?.groups,
  'impersonatedUser.username': (ctx) => ctx.event.impersonatedUser?.username,
};

/** A field's value for messages and state keys: the first of several, as a string. */
export function valueText(v: unknown): string | undefined {
  const first = Array.isArray(v) ? v[0] : v;
  if (first === undefined || first === null) return undefined;
  return typeof first === 'object' ? JSON.stringify(first) : String(first);
}
