/**
 * Splunk HEC indexer acknowledgement: with `useACK` on, a 200 from `/services/collector/event` only
 * says the events were received; they are safe once `/services/collector/ack` says their ackId is
 * true. Until then they are polled for; one not acknowledged in time is sent again (at least once:
 * the indexers may then hold it twice, as Splunk's own forwarders do).
 */
import { randomUUID } from 'node:crypto';
import type { Delivery } from './deliver.js';

export interface SplunkAckOptions {
  /** The HEC base URL (…:8088). */
  url: string;
  token: string;
  channel: string;
  timeoutMs: number;
  pollMs?: number;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

export function newChannel(): string {
  return randomUUID();
}

export function splunkAck(opts: SplunkAckOptions): (answer: string) => Promise<Delivery> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const doFetch = opts.fetch ?? fetch;
  return async (answer) => {
    let ackId: number | undefined;
    try {
      const a = JSON.parse(answer) as { ackId?: unknown };
      if (typeof a.ackId === 'number') ackId = a.ackId;
    } catch {
      // not JSON: no ack to wait for
    }
    // A HEC token without indexer acknowledgement answers no ackId: received is all it promises.
    if (ackId === undefined) return { kind: 'ok' };
    const deadline = Date.now() + opts.timeoutMs;
    let wait = opts.pollMs ?? 500;
    while (Date.now() < deadline) {
      await sleep(wait);
      wait = Math.min(wait * 2, 5000);
      try {
        const res = await doFetch(
          `${opts.url}/services/collector/ack?channel=${encodeURIComponent(opts.channel)}`,
          {
            method: 'POST',
            headers: {
              authorization: `Splunk ${opts.token}`,
              'x-splunk-request-channel': opts.channel,
              'content-type': 'application/json',
            },
            body: JSON.stringify({ acks: [ackId] }),
            signal: AbortSignal.timeout(10_000),
          },
        );
        if (!res.ok) continue;
        const acks = ((await res.json()) as { acks?: Record<string, boolean> }).acks ?? {};
        if (acks[String(ackId)] === true) return { kind: 'ok' };
      } catch {
        // the ack endpoint is down: keep asking until the deadline
      }
    }
    return {
      kind: 'retry',
      reason: `Splunk did not acknowledge ackId ${ackId} within ${opts.timeoutMs / 1000} s`,
    };
  };
}
