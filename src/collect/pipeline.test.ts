import { describe, expect, it } from 'vitest';
import { auditLine } from '../../test/fixtures/agent/make-events.js';
import { MemoryStore } from '../store/memory/memory-store.js';
import { ManualClock } from './clock.js';
import { memoryLogger } from './logger.js';
import { type DeadLetterEntry, Pipeline, type PipelineItem, type PipelineOptions } from './pipeline.js';

function setup(store: MemoryStore, queueEvents = 100, more: Partial<PipelineOptions> = {}) {
  const letters: DeadLetterEntry[] = [];
  const pipeline = new Pipeline({
    store,
    cluster: 'test',
    queueEvents,
    queueBytes: 64 << 20,
    batchEvents: 50,
    flushIntervalMs: 10,
    deadLetter: {
      count: 0,
      async add(e) {
        letters.push(e);
      },
    },
    log: memoryLogger(),
    ...more,
  });
  pipeline.start();
  return { pipeline, letters };
}

function item(ids: string[], retry = true): PipelineItem & { result: Promise<Error | undefined> } {
  let done: (err?: Error) => void = () => {};
  const result = new Promise<Error | undefined>((resolve) => {
    done = resolve;
  });
  return {
    source: 'test',
    events: ids.map((id) => Buffer.from(auditLine(id).trim())),
    deadLetters: [],
    retry,
    done,
    result,
  };
}

describe('Pipeline', () => {
  it('makes a producer wait while the queue is full, so memory stays bounded under a slow store', async () => {
    const store = new MemoryStore();
    store.delayMs = 30;
    const { pipeline } = setup(store, 100);
    let peak = 0;
    for (let i = 0; i < 40; i++) {
      await pipeline.offer(item(Array.from({ length: 10 }, (_, j) => `b-${i}-${j}`)));
      peak = Math.max(peak, pipeline.stats().queuedEvents);
    }
    await pipeline.shutdown();
    expect(peak).toBeLessThanOrEqual(100);
    expect(store.rows.size).toBe(400);
  });

  it('acknowledges items in the order offered even when a later batch is stored first', async () => {
    const store = new MemoryStore();
    store.delaysMs = [150, 0];
    const { pipeline } = setup(store, 100, { batchEvents: 1, flushIntervalMs: 0, writesInFlight: 2 });
    const acked: string[] = [];
    const first = item(['first']);
    const second = item(['second']);
    for (const [name, it] of [
      ['first', first],
      ['second', second],
    ] as const) {
      const done = it.done;
      it.done = (err) => {
        acked.push(name);
        done?.(err);
      };
    }
    await pipeline.offer(first);
    await pipeline.offer(second);
    await Promise.all([first.result, second.result]);
    await pipeline.shutdown();
    expect([...store.rows.values()].map((r) => `${r.audit_id}/${r.stage}`)).toEqual([
      'second/ResponseComplete',
      'first/ResponseComplete',
    ]);
    expect(acked).toEqual(['first', 'second']);
  });

  it('answers a stored webhook item without waiting for earlier file items', async () => {
    const store = new MemoryStore();
    store.delaysMs = [300, 0];
    const { pipeline } = setup(store, 100, { flushIntervalMs: 0, writesInFlight: 2 });
    const file = item(['v-1']);
    const hook = item(['v-2'], false);
    await pipeline.offer(file);
    while (store.writes === 0) await new Promise((r) => setTimeout(r, 1));
    expect(pipeline.tryOffer(hook)).toBe(true);
    expect(await hook.result).toBeUndefined();
    // The file item's slow write is still running.
    expect(store.rows.has('v-1/ResponseComplete')).toBe(false);
    expect(await file.result).toBeUndefined();
    await pipeline.shutdown();
  });

  it('cuts batches of exactly batch_events, splitting items, and acknowledges each item once whole', async () => {
    const store = new MemoryStore();
    store.delayMs = 20;
    const { pipeline } = setup(store, 100, { batchEvents: 4, flushIntervalMs: 50, writesInFlight: 2 });
    const items = [0, 1, 2].map((k) => item([`s${k}-a`, `s${k}-b`, `s${k}-c`]));
    const acked: number[] = [];
    items.forEach((it, k) => {
      const done = it.done;
      it.done = (err) => {
        acked.push(k);
        done?.(err);
      };
    });
    for (const it of items) await pipeline.offer(it);
    expect(await Promise.all(items.map((it) => it.result))).toEqual([undefined, undefined, undefined]);
    await pipeline.shutdown();
    expect(store.batchSizes).toEqual([4, 4, 1]);
    expect(store.rows.size).toBe(9);
    expect(acked).toEqual([0, 1, 2]);
  });

  it('holds a short batch past the flush interval while its source says more is coming, not after', async () => {
    const clock = new ManualClock();
    const store = new MemoryStore();
    const { pipeline } = setup(store, 100, { batchEvents: 5, flushIntervalMs: 100, clock });
    const first = item(['m-a', 'm-b', 'm-c']);
    first.more = true;
    await pipeline.offer(first);
    await clock.advance(200);
    // Past the interval, yet nothing written: the source is still reading.
    expect(store.batchSizes).toEqual([]);
    const second = item(['m-d', 'm-e', 'm-f']);
    second.more = true;
    await pipeline.offer(second);
    await clock.advance(0);
    await first.result;
    expect(store.batchSizes).toEqual([5]);
    // m-f waits for more past its interval; the source's next item says it is done, and both go at
    // once rather than when the wait (four intervals) runs out.
    await clock.advance(150);
    expect(store.batchSizes).toEqual([5]);
    const last = item(['m-g']);
    await pipeline.offer(last);
    await clock.advance(0);
    await Promise.all([second.result, last.result]);
    expect(store.batchSizes).toEqual([5, 2]);
    // A source that said more and then sent nothing: written once the wait (four intervals) runs out.
    const lone = item(['m-h']);
    lone.more = true;
    await pipeline.offer(lone);
    await clock.advance(399);
    expect(store.batchSizes).toEqual([5, 2]);
    await clock.advance(1);
    await lone.result;
    expect(store.batchSizes).toEqual([5, 2, 1]);
    const stopped = pipeline.shutdown();
    await clock.advance(0);
    await stopped;
  });

  it('sends a failed part of a file item again, and stores every event once', async () => {
    const clock = new ManualClock();
    const store = new MemoryStore();
    store.failWith = new Error('disk full');
    const { pipeline } = setup(store, 100, { batchEvents: 4, flushIntervalMs: 0, writesInFlight: 2, clock });
    const items = [0, 1, 2].map((k) => item([`r${k}-a`, `r${k}-b`, `r${k}-c`]));
    for (const it of items) await pipeline.offer(it);
    // Three backoffs (250, 500, 1000 ms): written, failed and written again each time.
    await clock.advance(2000);
    expect(store.writes).toBeGreaterThan(3);
    expect(store.rows.size).toBe(0);
    store.failWith = undefined;
    await clock.advance(10_000);
    expect(await Promise.all(items.map((it) => it.result))).toEqual([undefined, undefined, undefined]);
    await pipeline.shutdown();
    expect(store.rows.size).toBe(9);
    expect(pipeline.stats()).toMatchObject({ eventsStored: 9, duplicates: 0 });
  });

  it('lets go of events the store has taken in, and retries with its copy until it is stored', async () => {
    const store = new MemoryStore();
    store.failWith = new Error('disk full');
    const { pipeline } = setup(store, 100, { batchEvents: 4, flushIntervalMs: 0, writesInFlight: 2 });
    const items = [0, 1].map((k) => item([`c${k}-a`, `c${k}-b`, `c${k}-c`]));
    for (const it of items) await pipeline.offer(it);
    while (store.writes < 3) await new Promise((r) => setTimeout(r, 5));
    // Both batches staged and failed at least once: the queue holds none of the events' bytes.
    expect(items.flatMap((it) => it.events.map((e) => e.length))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(pipeline.stats().queuedEvents).toBe(6);
    store.failWith = undefined;
    expect(await Promise.all(items.map((it) => it.result))).toEqual([undefined, undefined]);
    await pipeline.shutdown();
    expect([...store.rows.values()].map((r) => `${r.audit_id}/${r.stage}`).sort()).toEqual(
      ['c0-a', 'c0-b', 'c0-c', 'c1-a', 'c1-b', 'c1-c'].map((id) => `${id}/ResponseComplete`),
    );
    // Retries wrote the same two batches again, never re-cut ones.
    expect(store.holds).toBe(2);
    expect(store.writes).toBeGreaterThan(2);
    expect(store.held).toBe(0);
  });

  it('offers a batch again from its items when the store could not take it in', async () => {
    const store = new MemoryStore();
    store.holdFailWith = new Error('staging directory full');
    const { pipeline } = setup(store, 100, { flushIntervalMs: 0 });
    const file = item(['t-1', 't-2']);
    await pipeline.offer(file);
    while (pipeline.stats().storeErrors === 0) await new Promise((r) => setTimeout(r, 5));
    expect(pipeline.stats().storeError).toBe('staging directory full');
    store.holdFailWith = undefined;
    expect(await file.result).toBeUndefined();
    await pipeline.shutdown();
    expect([...store.rows.values()].map((r) => `${r.audit_id}/${r.stage}`).sort()).toEqual([
      't-1/ResponseComplete',
      't-2/ResponseComplete',
    ]);
    expect(store.held).toBe(0);
  });

  it('dead-letters nothing of a webhook item refused while part of it was being stored', async () => {
    const store = new MemoryStore();
    // The item is cut in two batches: the first (with a bad event) is slow and stored, the second
    // fails at once, so the item is refused before the first is done.
    store.delaysMs = [100, 0];
    store.failures = [undefined, new Error('disk full')];
    const { pipeline, letters } = setup(store, 100, {
      batchEvents: 2,
      flushIntervalMs: 0,
      writesInFlight: 2,
    });
    const hook = item(['h-1'], false);
    hook.events.push(Buffer.from('{"kind":"Event"}'), Buffer.from(auditLine('h-2').trim()));
    expect(pipeline.tryOffer(hook)).toBe(true);
    expect((await hook.result)?.message).toMatch(/disk full/);
    await pipeline.shutdown();
    expect(store.batchSizes).toEqual([2, 1]);
    // kube-apiserver sends the item again; its bad event is dead-lettered then, not twice.
    expect(letters).toEqual([]);
    expect(pipeline.stats()).toMatchObject({ rejected: 1, deadLettered: 0 });
  });

  it('refuses webhook items while a failed batch waits to be written again', async () => {
    const store = new MemoryStore();
    store.failures = [new Error('disk full')];
    store.delaysMs = [0, 300];
    const { pipeline } = setup(store, 100, { flushIntervalMs: 0 });
    const file = item(['q-1']);
    await pipeline.offer(file);
    while (pipeline.stats().storeErrors === 0) await new Promise((r) => setTimeout(r, 5));
    expect(pipeline.tryOffer(item(['q-2'], false))).toBe(false);
    expect(await file.result).toBeUndefined();
    expect(pipeline.tryOffer(item(['q-3'], false))).toBe(true);
    await pipeline.shutdown();
    expect([...store.rows.values()].map((r) => `${r.audit_id}/${r.stage}`).sort()).toEqual([
      'q-1/ResponseComplete',
      'q-3/ResponseComplete',
    ]);
  });

  it('refuses a webhook item at once when the store cannot take its batch in', async () => {
    const store = new MemoryStore();
    store.holdFailWith = new Error('staging directory full');
    const { pipeline } = setup(store, 100, { flushIntervalMs: 0 });
    const hook = item(['x-1'], false);
    expect(pipeline.tryOffer(hook)).toBe(true);
    expect((await hook.result)?.message).toMatch(/store unavailable: staging directory full/);
    await pipeline.shutdown();
    expect(pipeline.stats().queuedEvents).toBe(0);
  });

  it('puts file items and webhook items in separate batches', async () => {
    const store = new MemoryStore();
    const { pipeline } = setup(store, 100, { flushIntervalMs: 50 });
    const items = [item(['k-1', 'k-2']), item(['k-3'], false), item(['k-4', 'k-5'])];
    await pipeline.offer(items[0] as PipelineItem);
    pipeline.tryOffer(items[1] as PipelineItem);
    await pipeline.offer(items[2] as PipelineItem);
    expect(await Promise.all(items.map((it) => it.result))).toEqual([undefined, undefined, undefined]);
    await pipeline.shutdown();
    expect(store.batchSizes).toEqual([4, 1]);
  });

  it('refuses with tryOffer when full and counts nothing as stored', async () => {
    const store = new MemoryStore();
    store.delayMs = 200;
    const { pipeline } = setup(store, 20);
    expect(pipeline.tryOffer(item(Array.from({ length: 15 }, (_, j) => `f-${j}`)))).toBe(true);
    expect(pipeline.tryOffer(item(Array.from({ length: 15 }, (_, j) => `g-${j}`)))).toBe(false);
    await pipeline.shutdown();
    expect(store.rows.size).toBe(15);
  });

  it('fails webhook items at once when the store fails, and retries file items until it recovers', async () => {
    const store = new MemoryStore();
    store.failWith = new Error('disk full');
    const { pipeline } = setup(store);
    const hook = item(['w-1'], false);
    const file = item(['f-1'], true);
    pipeline.tryOffer(hook);
    await pipeline.offer(file);
    expect((await hook.result)?.message).toMatch(/store unavailable: disk full/);
    expect(pipeline.stats().storeError).toBe('disk full');
    store.failWith = undefined;
    expect(await file.result).toBeUndefined();
    expect([...store.rows.values()].map((r) => `${r.audit_id}/${r.stage}`)).toEqual(['f-1/ResponseComplete']);
    expect(pipeline.stats().storeErrors).toBeGreaterThan(0);
    await pipeline.shutdown();
  });

  it('dead-letters what the store rejects, naming the source', async () => {
    const store = new MemoryStore();
    const { pipeline, letters } = setup(store);
    const it1 = item(['ok-1']);
    it1.events.push(Buffer.from('{"kind":"Event"}'));
    await pipeline.offer(it1);
    await it1.result;
    await pipeline.shutdown();
    expect(letters).toHaveLength(1);
    expect(letters[0]?.reason).toMatch(/auditID/);
    expect(pipeline.stats()).toMatchObject({ eventsStored: 1, rejected: 1, deadLettered: 1 });
  });

  it('on shutdown with a failing store gives up after the timeout, frees blocked producers, acknowledges nothing', async () => {
    const clock = new ManualClock();
    const store = new MemoryStore();
    store.failWith = new Error('disk full');
    const { pipeline } = setup(store, 10, { clock });
    const first = item(Array.from({ length: 10 }, (_, j) => `s-${j}`));
    await pipeline.offer(first);
    const blocked = pipeline.offer(item(['s-10'])).then(
      () => undefined,
      (err: unknown) => err,
    );
    let stopped = false;
    const stopping = pipeline.shutdown(300).then(() => {
      stopped = true;
    });
    await clock.advance(299);
    expect(stopped).toBe(false);
    await clock.advance(1);
    await stopping;
    expect(stopped).toBe(true);
    expect(String(await blocked)).toMatch(/shut down/);
    expect((await first.result)?.message).toMatch(/stopped before the store took it/);
    expect(store.rows.size).toBe(0);
    // The failed batch the store still held is let go.
    expect(store.held).toBe(0);
  });
});
