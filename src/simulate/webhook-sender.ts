export interface WebhookSenderOptions {
  /** Where kube-apiserver's webhook backend would POST (`--audit-webhook-config-file`'s server). */
  readonly url: string;
  /** Sent as `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** Events per EventList; kube-apiserver's `--audit-webhook-batch-max-size` defaults to 400. */
  readonly batchMaxSize?: number;
  /** Attempts after the first for a batch answered 429 or 5xx (or not answered at all). */
  readonly maxRetries?: number;
  /** First backoff; doubles per retry. kube-apiserver's `--audit-webhook-initial-backoff` is 10 s. */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Per-request timeout. */
  readonly timeoutMs?: number;
}

export interface WebhookStats {
  batches: number;
  events: number;
  bytes: number;
  retries: number;
  /** Events in batches given up on; the backend drops them as kube-apiserver does. */
  dropped: number;
  /** The last reason a batch was dropped. */
  lastError: string | undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Batches JSON lines into `audit.k8s.io/v1` EventList bodies and POSTs them, retrying with
 * exponential backoff on 429, 5xx and network errors (honouring Retry-After). Batches that still
 * fail are dropped and counted, never thrown: the caller decides what a drop means.
 */
export class WebhookSender {
  readonly stats: WebhookStats = {
    batches: 0,
    events: 0,
    bytes: 0,
    retries: 0,
    dropped: 0,
    lastError: undefined,
  };
  private readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly batchMaxSize: number;
  private readonly maxRetries: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly timeoutMs: number;
  private batch: string[] = [];

  constructor(options: WebhookSenderOptions) {
    this.url = options.url;
    this.headers = { 'content-type': 'application/json' };
    if (options.token !== undefined) this.headers.authorization = `Bearer ${options.token}`;
    this.batchMaxSize = Math.max(1, options.batchMaxSize ?? 400);
    this.maxRetries = Math.max(0, options.maxRetries ?? 5);
    this.initialBackoffMs = options.initialBackoffMs ?? 500;
    this.maxBackoffMs = options.maxBackoffMs ?? 10_000;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Events waiting for the next POST. */
  get buffered(): number {
    return this.batch.length;
  }

  /** Queues one event line; true when the batch is full and should be flushed. */
  push(line: string): boolean {
    this.batch.push(line.endsWith('\n') ? line.slice(0, -1) : line);
    return this.batch.length >= this.batchMaxSize;
  }

  /** Queues one event line and sends the batch when it is full. */
  async add(line: string): Promise<void> {
    if (this.push(line)) await this.flush();
  }

  /** Sends whatever is queued. */
  async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    const items = this.batch;
    this.batch = [];
    const body = `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[${items.join(',')}]}`;
    let backoff = this.initialBackoffMs;
    for (let attempt = 0; ; attempt++) {
      let retryable: boolean;
      let reason: string;
      let retryAfterMs: number | undefined;
      try {
        const res = await fetch(this.url, {
          method: 'POST',
          headers: this.headers,
          body,
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          this.stats.batches++;
          this.stats.events += items.length;
          this.stats.bytes += Buffer.byteLength(body);
          return;
        }
        retryable = res.status === 429 || res.status >= 500;
        reason = `HTTP ${res.status} from ${this.url}`;
        const after = Number(res.headers.get('retry-after'));
        if (Number.isFinite(after) && after > 0) retryAfterMs = after * 1000;
      } catch (err) {
        retryable = true;
        const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
        reason = `${err instanceof Error ? err.message : String(err)}${cause} (${this.url})`;
      }
      if (!retryable || attempt >= this.maxRetries) {
        this.stats.dropped += items.length;
        this.stats.lastError = reason;
        return;
      }
      this.stats.retries++;
      await sleep(Math.min(retryAfterMs ?? backoff, this.maxBackoffMs));
      backoff = Math.min(backoff * 2, this.maxBackoffMs);
    }
  }
}
