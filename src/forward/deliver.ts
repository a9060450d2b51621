import type { Payload } from './encoders/encoder.js';

/** What became of one request. */
export type Delivery =
  /** Taken; `body` is the platform's answer (Splunk's ackId). */
  | { kind: 'ok'; body?: string }
  /** Worth sending again later (5xx, 429, the network). */
  | { kind: 'retry'; reason: string; afterMs?: number }
  /** Too large: send it in halves. */
  | { kind: 'split'; reason: string }
  /** Will never succeed as it is (4xx): the events go to the sink's dead letters with the answer. */
  | { kind: 'reject'; reason: string };

export interface DeliverOptions {
  url: string;
  timeoutMs?: number;
  /** Reads a 2xx answer that may still report failures (Elasticsearch's _bulk). */
  check?: (status: number, body: string) => Delivery;
  fetch?: typeof fetch;
}

/** Seconds or an HTTP date, as Retry-After allows. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (header === null) return undefined;
  const s = Number(header);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const t = Date.parse(header);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** One POST of a payload, classified. */
export async function deliver(payload: Payload, opts: DeliverOptions): Promise<Delivery> {
  const requestBody = await payload.body;
  let res: Response;
  try {
    res = await (opts.fetch ?? fetch)(opts.url, {
      method: 'POST',
      headers: payload.headers,
      body: requestBody,
      signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
    });
  } catch (err) {
    return { kind: 'retry', reason: `network: ${err instanceof Error ? err.message : String(err)}` };
  }
  const body = await res.text().catch(() => '');
  const answer = `HTTP ${res.status}${body === '' ? '' : `: ${body.slice(0, 300)}`}`;
  if (res.ok) return opts.check?.(res.status, body) ?? { kind: 'ok', body };
  if (res.status === 413) return { kind: 'split', reason: answer };
  if (res.status === 429 || res.status === 408 || res.status >= 500) {
    const after = retryAfterMs(res.headers.get('retry-after'));
    return after === undefined
      ? { kind: 'retry', reason: answer }
      : { kind: 'retry', reason: answer, afterMs: after };
  }
  return { kind: 'reject', reason: answer };
}

/** Exponential backoff with full jitter, capped. */
export function backoffMs(attempt: number, baseMs = 500, maxMs = 60_000, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Elasticsearch's _bulk answer: 409 (already indexed) is delivered; 429 and 5xx items are retried. */
export function checkBulk(_status: number, body: string): Delivery {
  let parsed: {
    errors?: boolean;
    items?: Record<string, { status?: number; error?: { type?: string; reason?: string } }>[];
  };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    return { kind: 'retry', reason: 'the _bulk answer is not JSON' };
  }
  if (parsed.errors !== true) return { kind: 'ok' };
  let retry: string | undefined;
  let reject: string | undefined;
  for (const item of parsed.items ?? []) {
    const r = Object.values(item)[0];
    const s = r?.status ?? 0;
    if (s < 300 || s === 409) continue;
    const why = `item ${s}: ${r?.error?.type ?? ''} ${r?.error?.reason ?? ''}`.trim();
    if (s === 429 || s >= 500) retry ??= why;
    else reject ??= why;
  }
  if (retry !== undefined) return { kind: 'retry', reason: retry };
  if (reject !== undefined) return { kind: 'reject', reason: reject };
  return { kind: 'ok' };
}
