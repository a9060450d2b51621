import type { Logger } from '../collect/logger.js';
import type { Sink, StoredBatch } from '../collect/sinks.js';
import type { AuditEvent } from '../model/event.js';
import type { Policy } from '../policy/types.js';
import { backoffMs, type Delivery, deliver } from './deliver.js';
import type { Encoder, Payload } from './encoders/encoder.js';
import { lazyEvent, type OutgoingEvent } from './event-fields.js';
import { applyPolicy } from './policy-filter.js';

/** Event fields the include/exclude lists test; each list is "any of". */
export interface FieldMatch {
  cluster?: string[];
  verb?: string[];
  namespace?: string[];
  resource?: string[];
  user?: string[];
}

export interface ForwarderStats {
  name: string;
  type: string;
  sentEvents: number;
  filteredEvents: number;
  truncatedEvents: number;
  deadLettered: number;
  retries: number;
  lastError: string | undefined;
  lastSentAt: string | undefined;
  /** Age of the oldest event being sent, in seconds: how far behind the platform is. */
  lagSeconds: number;
}

export interface ForwarderOptions {
  name: string;
  type: string;
  url: string;
  encoder: Encoder;
  /** Reads a 2xx answer that may still report failed items. */
  check?: (status: number, body: string) => Delivery;
  /**
   * After a 2xx: waits until the platform says the events are safe (Splunk's indexer
   * acknowledgement); a `retry` answer sends the payload again.
   */
  confirm?: (answer: string) => Promise<Delivery>;
  policy?: Policy;
  include?: FieldMatch;
  exclude?: FieldMatch;
  /** Events the platform refused for good, with its answer. */
  deadLetter: (events: readonly OutgoingEvent[], reason: string) => Promise<void>;
  log: Logger;
  /** Waits between retries; tests pass a fast one. */
  sleep?: (ms: number) => Promise<void>;
  fetch?: typeof fetch;
}

function matches(e: AuditEvent, cluster: string, m: FieldMatch): boolean {
  const has = (list: string[] | undefined, v: string | undefined) =>
    list === undefined || (v !== undefined && list.includes(v));
  return (
    has(m.cluster, cluster) &&
    has(m.verb, e.verb) &&
    has(m.namespace, e.objectRef?.namespace) &&
    has(m.resource, e.objectRef?.resource) &&
    has(m.user, e.user?.username)
  );
}

/**
 * Sends stored events on to a log platform, in order, at least once: each payload is retried with
 * exponential backoff and jitter (honouring Retry-After) until the platform takes it; a 413 sends it
 * in halves; an answer that will never succeed puts its events in the sink's dead letters with the
 * answer. Events are filtered first by the sink's audit policy (None: not sent; Metadata: no bodies)
 * and its include/exclude lists.
 */
export class Forwarder implements Sink {
  private readonly counters = { sent: 0, filtered: 0, truncated: 0, deadLettered: 0, retries: 0 };
  private lastError: string | undefined;
  private lastSentAt: Date | undefined;
  private sendingSince: number | undefined;
  private readonly stopped = new AbortController();
  /** The last batch handed over: the next one is sent after it. */
  private sending: Promise<void> = Promise.resolve();

  constructor(private readonly opts: ForwarderOptions) {}

  private get stopping(): boolean {
    return this.stopped.signal.aborted;
  }

  /** Waits between retries, or less once shut down. */
  private pause(ms: number): Promise<void> {
    if (this.opts.sleep !== undefined) return this.opts.sleep(ms);
    const signal = this.stopped.signal;
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  get name(): string {
    return this.opts.name;
  }

  async export(batch: StoredBatch): Promise<void> {
    const out: OutgoingEvent[] = [];
    const filters =
      this.opts.include !== undefined || this.opts.exclude !== undefined || this.opts.policy !== undefined;
    if (!filters) {
      for (const buf of batch.events) out.push(lazyEvent(buf.toString('utf8'), batch.cluster));
      return this.sendAll(out);
    }
    for (const buf of batch.events) {
      let event: AuditEvent;
      try {
        event = JSON.parse(buf.toString('utf8')) as AuditEvent;
      } catch {
        continue;
      }
      const kept = this.select(event, batch.cluster);
      if (kept === undefined) {
        this.counters.filtered++;
        continue;
      }
      out.push({
        event: kept,
        cluster: batch.cluster,
        json: kept === event ? buf.toString('utf8') : JSON.stringify(kept),
      });
    }
    return this.sendAll(out);
  }

  /**
   * Encodes now (the compression starts in its thread at once), and sends once every batch handed
   * over before has been sent: a caller with two batches in flight overlaps the encoding and
   * compression of the second with the request of the first, and the platform still receives them
   * in order, one request at a time. A batch whose predecessor failed (only once shut down) is not
   * sent either.
   */
  private sendAll(out: OutgoingEvent[]): Promise<void> {
    if (out.length === 0) return this.sending;
    const payloads = this.opts.encoder.encode(out);
    // A compression that fails is reported when its payload is sent; never an unhandled rejection
    // for a payload that is not sent because the one before it failed.
    for (const p of payloads) if (p.body instanceof Promise) p.body.catch(() => undefined);
    // How far behind: the batch's first event is its oldest (the store hands them over in order).
    const first = out[0] as OutgoingEvent;
    const since = /"requestReceivedTimestamp":"([^"]+)"/.exec(first.json)?.[1];
    const sinceMs = (since === undefined ? Number.NaN : Date.parse(since)) || Date.now();
    const run = this.sending.then(async () => {
      this.sendingSince = sinceMs;
      try {
        for (const payload of payloads) await this.send(payload);
      } finally {
        this.sendingSince = undefined;
      }
    });
    this.sending = run;
    return run;
  }

  private select(e: AuditEvent, cluster: string): AuditEvent | undefined {
    if (this.opts.include !== undefined && !matches(e, cluster, this.opts.include)) return undefined;
    if (this.opts.exclude !== undefined && matches(e, cluster, this.opts.exclude)) return undefined;
    return this.opts.policy === undefined ? e : applyPolicy(e, this.opts.policy);
  }

  private async send(payload: Payload): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const d = await deliver(payload, {
        url: this.opts.url,
        ...(this.opts.check === undefined ? {} : { check: this.opts.check }),
        ...(this.opts.fetch === undefined ? {} : { fetch: this.opts.fetch }),
      });
      const confirmed =
        d.kind === 'ok' && this.opts.confirm !== undefined
          ? await this.opts.confirm(d.body ?? '')
          : undefined;
      if (confirmed !== undefined && confirmed.kind !== 'ok') {
        if (this.stopping) throw new Error(`forwarding stopped before confirmation: ${confirmed.reason}`);
        this.counters.retries++;
        this.lastError = confirmed.reason;
        this.opts.log.warn('forwarding: not confirmed; sending again', {
          sink: this.name,
          reason: confirmed.reason,
        });
        await this.pause(backoffMs(attempt));
        continue;
      }
      if (d.kind === 'ok') {
        this.counters.sent += payload.events.length;
        this.counters.truncated += payload.truncated;
        this.lastSentAt = new Date();
        return;
      }
      this.lastError = d.reason;
      if (d.kind === 'split' && payload.events.length > 1) {
        const half = Math.ceil(payload.events.length / 2);
        for (const part of [payload.events.slice(0, half), payload.events.slice(half)])
          for (const p of this.opts.encoder.encode(part)) await this.send(p);
        return;
      }
      if (d.kind === 'reject' || d.kind === 'split') {
        this.counters.deadLettered += payload.events.length;
        this.opts.log.warn('forwarding: events refused, kept in the dead letters', {
          sink: this.name,
          reason: d.reason,
        });
        await this.opts.deadLetter(payload.events, d.reason);
        return;
      }
      // Shut down while the platform is failing: the events stay unsent (the store still has them,
      // and the sink's cursor has not passed them), never dead-lettered for a passing outage.
      if (this.stopping) throw new Error(`forwarding stopped before delivery: ${d.reason}`);
      this.counters.retries++;
      if (attempt === 0)
        this.opts.log.warn('forwarding failed; retrying', { sink: this.name, reason: d.reason });
      await this.pause(d.afterMs ?? backoffMs(attempt));
    }
  }

  async shutdown(): Promise<void> {
    this.stopped.abort();
  }

  stats(): ForwarderStats {
    return {
      name: this.opts.name,
      type: this.opts.type,
      sentEvents: this.counters.sent,
      filteredEvents: this.counters.filtered,
      truncatedEvents: this.counters.truncated,
      deadLettered: this.counters.deadLettered,
      retries: this.counters.retries,
      lastError: this.lastError,
      lastSentAt: this.lastSentAt?.toISOString(),
      lagSeconds: this.sendingSince === undefined ? 0 : Math.max(0, (Date.now() - this.sendingSince) / 1000),
    };
  }
}
