import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';
import { FanOut, MemorySink, type StoredBatch } from './sinks.js';

const quiet = createLogger({ out: { write: () => true } as unknown as NodeJS.WritableStream });

function batch(n: number, tag = 'e'): StoredBatch {
  return { cluster: 'c', events: Array.from({ length: n }, (_, i) => Buffer.from(`${tag}${i}`)) };
}

describe('FanOut', () => {
  it('gives every sink every batch, in order', async () => {
    const a = new MemorySink('a');
    const b = new MemorySink('b');
    const fan = new FanOut([a, b], { log: quiet });
    fan.publish(batch(2, 'x'));
    fan.publish(batch(1, 'y'));
    await fan.shutdown();
    for (const s of [a, b]) {
      expect(s.events.map(String)).toEqual(['x0', 'x1', 'y0']);
      expect(s.shutDown).toBe(true);
    }
  });

  it('drops and counts what a stalled sink cannot queue, without holding up the others', async () => {
    const slow = new MemorySink('slow');
    let open: () => void = () => undefined;
    slow.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const fast = new MemorySink('fast');
    const fan = new FanOut([slow, fast], { log: quiet, maxQueueEvents: 10 });
    const tick = () => new Promise((r) => setImmediate(r));
    fan.publish(batch(6)); // the stalled export takes it
    await tick();
    fan.publish(batch(6)); // queued behind it: an empty queue takes any batch
    await tick();
    fan.publish(batch(6)); // 18 events > 10: dropped for the stalled sink only
    await tick();
    expect(fast.events).toHaveLength(18);
    const before = fan.stats().find((s) => s.name === 'slow');
    expect(before?.droppedEvents).toBe(6);
    // The sink is told what it missed (a forwarder then reads it from the store).
    expect(slow.droppedBatches.map((b) => b.events.length)).toEqual([6]);
    open();
    await fan.shutdown();
    expect(slow.events).toHaveLength(12);
    expect(fan.stats().find((s) => s.name === 'slow')).toMatchObject({
      exportedEvents: 12,
      droppedEvents: 6,
      queuedEvents: 0,
    });
  });

  it('counts a failed export and goes on with the next batch', async () => {
    const s = new MemorySink();
    s.failWith = new Error('endpoint down');
    const fan = new FanOut([s], { log: quiet });
    fan.publish(batch(1));
    await new Promise((r) => setImmediate(r));
    s.failWith = undefined;
    fan.publish(batch(2));
    await fan.shutdown();
    expect(fan.stats()[0]).toMatchObject({ failedExports: 1, exportedEvents: 2, lastError: 'endpoint down' });
  });

  it('ignores empty batches', async () => {
    const s = new MemorySink();
    const fan = new FanOut([s], { log: quiet });
    fan.publish(batch(0));
    await fan.shutdown();
    expect(s.batches).toHaveLength(0);
  });
});
