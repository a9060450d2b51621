import type { SimulatedEvent, Simulation } from './generator.js';
import type { RotatingWriter } from './rotating-writer.js';
import type { WebhookSender } from './webhook-sender.js';

export interface DriveOptions {
  /** Write each event when the wall clock reaches its stageTimestamp (the simulation must start now). */
  readonly follow?: boolean;
  /** Stops the run early; what was written stays consistent with the truth. */
  readonly signal?: AbortSignal;
  /** Wall clock in ms; injectable for tests. */
  readonly now?: () => number;
  /** Called after each flush in follow mode and every 100 000 events otherwise. */
  readonly onProgress?: (events: number) => void;
}

/** Where a run writes events: a rotating file, a webhook, a stream. */
export interface EventSink {
  write(event: SimulatedEvent): void | Promise<void>;
  /** Called when a follow-mode run waits for the clock; defaults to flush. */
  idle?(): void | Promise<void>;
  flush(): void | Promise<void>;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Pulls events from `sim` into `sink`: as fast as possible, or paced to the wall clock with
 * `follow`. Yields to the event loop now and then so signals and sockets are served.
 */
export async function drive(sim: Simulation, sink: EventSink, options: DriveOptions = {}): Promise<number> {
  const now = options.now ?? Date.now;
  const signal = options.signal;
  let n = 0;
  for (const e of sim) {
    if (signal?.aborted) break;
    if (options.follow) {
      const waitMs = e.t / 1000 - now();
      if (waitMs > 5) {
        await (sink.idle ?? sink.flush).call(sink);
        options.onProgress?.(n);
        await sleep(waitMs, signal);
        if (signal?.aborted) break;
      }
    }
    const r = sink.write(e);
    if (r !== undefined) await r;
    n++;
    if (n % 100_000 === 0) {
      options.onProgress?.(n);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  await sink.flush();
  return n;
}

export function fileSink(writer: RotatingWriter): EventSink {
  return {
    write: (e) => writer.write(e.line, e.t, e.ascii),
    flush: () => writer.drain(),
  };
}

/**
 * Batches go out when full or, while a follow-mode run waits, once the oldest queued event is
 * `maxWaitMs` old (kube-apiserver's `--audit-webhook-batch-max-wait`, shortened for live demos).
 */
export function webhookSink(
  sender: WebhookSender,
  maxWaitMs = 1000,
  now: () => number = Date.now,
): EventSink {
  let oldest = 0;
  return {
    write: (e) => {
      if (sender.buffered === 0) oldest = now();
      return sender.push(e.line) ? sender.flush() : undefined;
    },
    idle: () => (sender.buffered > 0 && now() - oldest >= maxWaitMs ? sender.flush() : undefined),
    flush: () => sender.flush(),
  };
}

export { type SimulateToFileResult, simulateToFile } from './rotating-writer.js';
export { writeTruth } from './truth.js';
