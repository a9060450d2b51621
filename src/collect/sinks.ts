/**
 * Consumers after the store: detectors, forwarders, the dashboard's live view. The pipeline hands
 * each batch to them only once the store acknowledged it, so whatever they say points at a stored
 * event; each sees every stored event once (duplicates and rejects left out). Shaped like
 * OpenTelemetry's BatchSpanProcessor: a bounded queue per sink, exports one at a time, what does not
 * fit is dropped and counted (and said once in the log), never waited for: a slow sink must not slow
 * collection down.
 */
import type { Logger } from './logger.js';

/** Events the store has just stored, for the sinks. */
export interface StoredBatch {
  readonly cluster: string;
  /** Prepared audit events (JSON), each stored once by this batch. */
  readonly events: readonly Buffer[];
}

export interface Sink {
  readonly name: string;
  /**
   * Takes one batch; resolves when done with it. A failure is the sink's to report (its stats);
   * a rejection is logged and counted, and the next batch is exported anyway.
   */
  export(batch: StoredBatch): Promise<void>;
  /** Finishes what it holds; called once, after the last export. */
  shutdown(): Promise<void>;
  /**
   * Told of each batch its queue had no room for. A sink that can read the store (a forwarder)
   * sends those events from there; others only count them.
   */
  dropped?(batch: StoredBatch): void;
}

export interface SinkStats {
  name: string;
  /** Batches and events waiting in its queue. */
  queuedEvents: number;
  exportedEvents: number;
  /** Events dropped because its queue was full. */
  droppedEvents: number;
  failedExports: number;
  lastError: string | undefined;
}

export interface FanOutOptions {
  log: Logger;
  /** Events a sink may have waiting before batches for it are dropped; default 100,000. */
  maxQueueEvents?: number;
}

const DEFAULT_MAX_QUEUE_EVENTS = 100_000;

class SinkQueue {
  private readonly queue: StoredBatch[] = [];
  private queuedEvents = 0;
  private running: Promise<void> | undefined;
  private warned = false;
  private exported = 0;
  private dropped = 0;
  private failed = 0;
  private lastError: string | undefined;

  constructor(
    readonly sink: Sink,
    private readonly maxQueueEvents: number,
    private readonly log: Logger,
  ) {}

  offer(batch: StoredBatch): void {
    const n = batch.events.length;
    // An empty queue takes any batch, however large: a big batch is never dropped for its size alone.
    if (this.queue.length > 0 && this.queuedEvents + n > this.maxQueueEvents) {
      this.dropped += n;
      this.sink.dropped?.(batch);
      if (!this.warned) {
        this.warned = true;
        this.log.warn('a sink is behind: batches for it are dropped until it catches up', {
          sink: this.sink.name,
          max_queue_events: this.maxQueueEvents,
        });
      }
      return;
    }
    this.queue.push(batch);
    this.queuedEvents += n;
    this.running ??= this.drain();
  }

  private async drain(): Promise<void> {
    for (let batch = this.queue.shift(); batch !== undefined; batch = this.queue.shift()) {
      try {
        await this.sink.export(batch);
        this.exported += batch.events.length;
      } catch (err) {
        this.failed++;
        this.lastError = err instanceof Error ? err.message : String(err);
        this.log.error('sink export failed', { sink: this.sink.name, error: this.lastError });
      } finally {
        this.queuedEvents -= batch.events.length;
      }
    }
    this.running = undefined;
    this.warned = false;
  }

  /** Resolves once the queue is empty. */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  stats(): SinkStats {
    return {
      name: this.sink.name,
      queuedEvents: this.queuedEvents,
      exportedEvents: this.exported,
      droppedEvents: this.dropped,
      failedExports: this.failed,
      lastError: this.lastError,
    };
  }
}

/** Every sink behind the store, each with its own bounded queue. */
export class FanOut {
  private readonly queues: SinkQueue[];

  constructor(sinks: readonly Sink[], opts: FanOutOptions) {
    const max = opts.maxQueueEvents ?? DEFAULT_MAX_QUEUE_EVENTS;
    this.queues = sinks.map((s) => new SinkQueue(s, max, opts.log));
  }

  get size(): number {
    return this.queues.length;
  }

  /** Hands a stored batch to every sink; never waits for them. */
  publish(batch: StoredBatch): void {
    if (batch.events.length === 0) return;
    for (const q of this.queues) q.offer(batch);
  }

  /** Waits for every queue to empty (or `timeoutMs`), then shuts every sink down. */
  async shutdown(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.all(this.queues.map((q) => q.idle())), deadline]);
    clearTimeout(timer);
    await Promise.all(
      this.queues.map((q) =>
        q.sink.shutdown().catch(() => {
          // shutting down anyway
        }),
      ),
    );
  }

  stats(): SinkStats[] {
    return this.queues.map((q) => q.stats());
  }
}

/**
 * A sink that keeps what it is given, with knobs to be slow or to fail: the test sink (as
 * OpenTelemetry ships InMemorySpanExporter), also usable by the dashboard's live view.
 */
export class MemorySink implements Sink {
  readonly batches: StoredBatch[] = [];
  /** Each export waits until this resolves, when set. */
  gate: Promise<void> | undefined;
  failWith: Error | undefined;
  shutDown = false;
  /** Batches its queue dropped, in order. */
  readonly droppedBatches: StoredBatch[] = [];

  constructor(readonly name = 'memory') {}

  async export(batch: StoredBatch): Promise<void> {
    if (this.gate !== undefined) await this.gate;
    if (this.failWith !== undefined) throw this.failWith;
    this.batches.push(batch);
  }

  async shutdown(): Promise<void> {
    this.shutDown = true;
  }

  dropped(batch: StoredBatch): void {
    this.droppedBatches.push(batch);
  }

  get events(): Buffer[] {
    return this.batches.flatMap((b) => [...b.events]);
  }
}
