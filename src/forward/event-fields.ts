import type { AuditEvent } from '../model/event.js';

/** An event on its way to a platform: the event, its cluster, and its JSON as sent. */
export interface OutgoingEvent {
  event: AuditEvent;
  cluster: string;
  json: string;
}

/**
 * An outgoing event whose object is parsed only if an encoder asks for it: a sink without filters
 * whose platform takes the JSON as it is (http, datadog) never parses it (bench:forward).
 */
export function lazyEvent(json: string, cluster: string): OutgoingEvent {
  let parsed: AuditEvent | undefined;
  return {
    cluster,
    json,
    get event(): AuditEvent {
      parsed ??= JSON.parse(json) as AuditEvent;
      return parsed;
    },
  };
}

export const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

/** `read`, `write` or `other`: a label of low cardinality for platforms that index by label. */
export function verbClass(verb: string): string {
  if (WRITE_VERBS.has(verb)) return 'write';
  if (verb === 'get' || verb === 'list' || verb === 'watch') return 'read';
  return 'other';
}

export function timeMs(e: AuditEvent): number {
  const t = Date.parse(e.stageTimestamp ?? e.requestReceivedTimestamp);
  return Number.isNaN(t) ? Date.now() : t;
}

/** Epoch nanoseconds as a decimal string, keeping the microseconds kube-apiserver writes. */
export function timeNs(e: AuditEvent): string {
  const text = e.stageTimestamp ?? e.requestReceivedTimestamp;
  const ms = timeMs(e);
  const frac = /\.(\d+)Z$/.exec(text ?? '')?.[1] ?? '';
  const sub = (frac.slice(3) + '000000').slice(0, 6);
  return `${Math.floor(ms)}${sub}`;
}

/** The event without its bodies, marked as kube-apiserver's truncating backend marks it. */
export function withoutBodies(e: AuditEvent): AuditEvent {
  const { requestObject: _rq, responseObject: _rs, ...rest } = e;
  return { ...rest, annotations: { ...e.annotations, 'audit.k8s.io/truncated': 'true' } };
}
