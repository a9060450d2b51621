import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { auditEvent } from '../../test/fixtures/agent/make-events.js';
import { DEFAULT_PREPARE_OPTIONS, prepareLine, prepareValue } from '../model/prepare.js';
import type { WebhookSourceConfig } from './agent-config.js';
import { ManualClock } from './clock.js';
import { defaultWebhookLimits } from './config/source-config.js';
import { memoryLogger } from './logger.js';
import type { PipelineItem } from './pipeline.js';
import { WebhookHandler } from './webhook-source.js';

const config: WebhookSourceConfig = {
  type: 'webhook',
  name: 'hook',
  listen: { host: '127.0.0.1', port: 0 },
  path: '/audit',
  source: 'kubernetes.audit',
  service: 'audit',
  maxBodyBytes: 64 * 1024,
};

function handler(
  opts: { token?: string; accept?: 'store' | 'full' | 'fail'; cfg?: WebhookSourceConfig } = {},
) {
  const offered: PipelineItem[] = [];
  const h = new WebhookHandler({
    config: opts.cfg ?? config,
    prepare: {
      options: DEFAULT_PREPARE_OPTIONS,
      line: (b) => prepareLine(b, DEFAULT_PREPARE_OPTIONS),
      value: (v) => prepareValue(v, DEFAULT_PREPARE_OPTIONS),
    },
    tryOffer: (item) => {
      if (opts.accept === 'full') return false;
      offered.push(item);
      setTimeout(
        () => item.done?.(opts.accept === 'fail' ? new Error('store unavailable: disk full') : undefined),
        5,
      );
      return true;
    },
    log: memoryLogger(),
    ...(opts.token === undefined ? {} : { token: opts.token }),
  });
  return { h, offered };
}

const eventList = (n: number) => ({
  kind: 'EventList',
  apiVersion: 'audit.k8s.io/v1',
  items: Array.from({ length: n }, (_, i) => auditEvent(`w-${i}`)),
});

function post(body: string | Buffer, headers: Record<string, string> = {}): Request {
  return new Request('http://127.0.0.1/audit', { method: 'POST', body, headers });
}

describe('WebhookHandler', () => {
  it('answers 200 with an EventList once the pipeline stored it', async () => {
    const { h, offered } = handler();
    const res = await h.fetch(post(JSON.stringify(eventList(3))));
    expect(res.status).toBe(200);
    expect(offered[0]?.events).toHaveLength(3);
    expect(h.status()).toMatchObject({ requests: 1, events: 3, responses: { 200: 1 } });
  });

  it('accepts a JSON array, a single Event and a gzip body', async () => {
    const { h, offered } = handler();
    expect((await h.fetch(post(JSON.stringify([auditEvent('a'), auditEvent('b')])))).status).toBe(200);
    expect((await h.fetch(post(JSON.stringify(auditEvent('c'))))).status).toBe(200);
    const gz = gzipSync(Buffer.from(JSON.stringify(eventList(2))));
    expect((await h.fetch(post(gz, { 'content-encoding': 'gzip' }))).status).toBe(200);
    expect(offered.map((i) => i.events.length)).toEqual([2, 1, 2]);
  });

  it('answers 400 naming what is wrong for bodies that are not audit events', async () => {
    const { h, offered } = handler();
    const garbage = await h.fetch(post('this is not json'));
    expect(garbage.status).toBe(400);
    expect(((await garbage.json()) as { error: string }).error).toMatch(/not JSON/);
    const notEvents = await h.fetch(post(JSON.stringify({ kind: 'Pod', apiVersion: 'v1' })));
    expect(notEvents.status).toBe(400);
    expect(((await notEvents.json()) as { error: string }).error).toMatch(/no audit events/);
    expect(offered).toHaveLength(0);
  });

  it('stores the good items of a batch with one bad item, keeps the bad one aside by index, answers 200', async () => {
    const { h, offered } = handler();
    const list = eventList(100);
    list.items[37] = { kind: 'Event', apiVersion: 'audit.k8s.io/v1', auditID: 'broken' };
    const res = await h.fetch(post(JSON.stringify(list)));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      stored: 99,
      rejected: ['EventList item 37: not an audit Event: field stage: missing'],
    });
    expect(offered[0]?.events).toHaveLength(99);
    expect(offered[0]?.deadLetters.map((d) => d.reason)).toEqual([
      'EventList item 37: not an audit Event: field stage: missing',
    ]);
    expect(JSON.parse(String(offered[0]?.deadLetters[0]?.data))).toEqual(list.items[37]);
    expect(h.status()).toMatchObject({ events: 99, malformed: 1 });
  });

  it('answers 200 to an event nested 5000 deep: stored without its bodies, the record kept aside', async () => {
    const { h, offered } = handler({ cfg: { ...config, maxBodyBytes: 1024 * 1024 } });
    // Written as text: JSON.stringify itself would run out of stack on it.
    const deep = `${'{"a":'.repeat(4999)}{}${'}'.repeat(4999)}`;
    const body = JSON.stringify(eventList(1)).replace('"verb"', `"requestObject":${deep},"verb"`);
    const res = await h.fetch(post(body));
    expect(res.status).toBe(200);
    expect(offered[0]?.events).toHaveLength(1);
    expect(JSON.parse(String(offered[0]?.events[0])).requestObject).toBeUndefined();
    expect(offered[0]?.deadLetters[0]?.reason).toMatch(
      /^EventList item 0: bodies nested deeper than 1000 levels/,
    );
  });

  it('answers 401 without or with a wrong bearer token', async () => {
    const { h, offered } = handler({ token: 's3cret' });
    const body = JSON.stringify(eventList(1));
    expect((await h.fetch(post(body))).status).toBe(401);
    expect((await h.fetch(post(body, { authorization: 'Bearer wrong' }))).status).toBe(401);
    expect((await h.fetch(post(body, { authorization: 'Bearer s3cret' }))).status).toBe(200);
    expect(offered).toHaveLength(1);
  });

  it('answers 401 without a verified client certificate and 403 for one not allowed', async () => {
    const cfg: WebhookSourceConfig = {
      ...config,
      tls: { cert: 'c', key: 'k', clientCa: 'ca', allowedNames: ['kube-apiserver'] },
    };
    const { h } = handler({ cfg });
    const body = JSON.stringify(eventList(1));
    expect((await h.fetch(post(body))).status).toBe(401);
    expect((await h.fetch(post(body), { authorized: false, names: ['kube-apiserver'] })).status).toBe(401);
    expect((await h.fetch(post(body), { authorized: true, names: ['someone'] })).status).toBe(403);
    expect((await h.fetch(post(body), { authorized: true, names: ['kube-apiserver'] })).status).toBe(200);
  });

  it('answers 413 over the body limit, by Content-Length or by counting, also after gunzip', async () => {
    const { h, offered } = handler();
    const big = JSON.stringify(eventList(300));
    expect(Buffer.byteLength(big)).toBeGreaterThan(64 * 1024);
    expect((await h.fetch(post(big))).status).toBe(413);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode(big));
        c.close();
      },
    });
    const chunked = new Request('http://127.0.0.1/audit', {
      method: 'POST',
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect((await h.fetch(chunked)).status).toBe(413);
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 9, 0x20));
    expect((await h.fetch(post(bomb, { 'content-encoding': 'gzip' }))).status).toBe(413);
    expect(offered).toHaveLength(0);
  });

  it('answers 429 with Retry-After when the pipeline is full, 503 when the store fails', async () => {
    const full = handler({ accept: 'full' }).h;
    const r429 = await full.fetch(post(JSON.stringify(eventList(2))));
    expect(r429.status).toBe(429);
    expect(r429.headers.get('retry-after')).toBe('1');
    expect(full.status().dropped).toBe(2);
    const failing = handler({ accept: 'fail' }).h;
    const r503 = await failing.fetch(post(JSON.stringify(eventList(2))));
    expect(r503.status).toBe(503);
    expect(failing.status().events).toBe(0);
  });

  it('answers 404 elsewhere and 405 for other methods', async () => {
    const { h } = handler();
    expect(
      (await h.fetch(new Request('http://127.0.0.1/other', { method: 'POST', body: '[]' }))).status,
    ).toBe(404);
    expect((await h.fetch(new Request('http://127.0.0.1/audit'))).status).toBe(405);
  });

  it('admits by bytes buffered: held bodies up to the budget, then 429, room again once stored', async () => {
    const held: PipelineItem[] = [];
    const body = JSON.stringify(eventList(1));
    const h = new WebhookHandler({
      config,
      prepare: {
        options: DEFAULT_PREPARE_OPTIONS,
        line: (b) => prepareLine(b, DEFAULT_PREPARE_OPTIONS),
        value: (v) => prepareValue(v, DEFAULT_PREPARE_OPTIONS),
      },
      tryOffer: (item) => {
        held.push(item);
        return true;
      },
      log: memoryLogger(),
      limits: { maxBufferedBytes: 2 * Buffer.byteLength(body) },
    });
    const pending = [h.fetch(post(body)), h.fetch(post(body))];
    await new Promise((r) => setTimeout(r, 50));
    expect(held).toHaveLength(2);
    expect(h.bufferedBytes).toBe(2 * Buffer.byteLength(body));
    const refused = await h.fetch(post(body));
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: string }).error).toMatch(/holds \d+ bytes of bodies/);
    for (const item of held) item.done?.();
    expect((await Promise.all(pending)).map((r) => r.status)).toEqual([200, 200]);
    expect(h.bufferedBytes).toBe(0);
    const again = h.fetch(post(body));
    await new Promise((r) => setTimeout(r, 20));
    held[2]?.done?.();
    expect((await again).status).toBe(200);
  });

  it('gives no room to stalled bodies: 408 after the idle time, and a good batch meanwhile gets 200', async () => {
    const clock = new ManualClock();
    const offered: PipelineItem[] = [];
    const h = new WebhookHandler({
      config,
      prepare: {
        options: DEFAULT_PREPARE_OPTIONS,
        line: (b) => prepareLine(b, DEFAULT_PREPARE_OPTIONS),
        value: (v) => prepareValue(v, DEFAULT_PREPARE_OPTIONS),
      },
      tryOffer: (item) => {
        offered.push(item);
        setTimeout(() => item.done?.(), 1);
        return true;
      },
      log: memoryLogger(),
      limits: { bodyIdleMs: 300 },
      clock,
    });
    const stalled = Array.from({ length: 50 }, () =>
      h.fetch(
        new Request('http://127.0.0.1/audit', {
          method: 'POST',
          body: new ReadableStream<Uint8Array>({
            start(c) {
              c.enqueue(new TextEncoder().encode('{"kind":"EventList","items":['));
            },
          }),
          duplex: 'half',
        } as RequestInit),
      ),
    );
    expect((await h.fetch(post(JSON.stringify(eventList(2))))).status).toBe(200);
    let answered = 0;
    for (const s of stalled) void s.then(() => answered++);
    await clock.advance(299);
    expect(answered).toBe(0);
    await clock.advance(1);
    expect((await Promise.all(stalled)).map((r) => r.status)).toEqual(Array(50).fill(408));
    expect(h.bufferedBytes).toBe(0);
    expect(offered).toHaveLength(1);
  });

  it('takes max_decompressed_bytes and max_buffered_bytes from the config', async () => {
    const body = JSON.stringify(eventList(300));
    const gz = gzipSync(Buffer.from(body));
    const limits = {
      ...defaultWebhookLimits(config.maxBodyBytes),
      maxDecompressedBytes: 2 * Buffer.byteLength(body),
    };
    const roomy = handler({ cfg: { ...config, limits } });
    expect((await roomy.h.fetch(post(gz, { 'content-encoding': 'gzip' }))).status).toBe(200);
    // Room for the compressed body but not for it decompressed beside it.
    const tight = handler({ cfg: { ...config, limits: { ...limits, maxBufferedBytes: gz.length + 1024 } } });
    expect((await tight.h.fetch(post(gz, { 'content-encoding': 'gzip' }))).status).toBe(429);
  });

  it('bounds a gzip body by its decompressed size', async () => {
    const { h, offered } = handler();
    const body = JSON.stringify(eventList(300));
    expect(Buffer.byteLength(body)).toBeGreaterThan(64 * 1024);
    const gz = gzipSync(Buffer.from(body));
    expect(gz.length).toBeLessThan(64 * 1024);
    const res = await h.fetch(post(gz, { 'content-encoding': 'gzip' }));
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toMatch(
      /once decompressed \(max_decompressed_bytes\)/,
    );
    expect(offered).toHaveLength(0);
  });

  it('on requestStop abandons bodies still arriving and answers new requests 503', async () => {
    const { h } = handler();
    const arriving = h.fetch(
      new Request('http://127.0.0.1/audit', {
        method: 'POST',
        body: new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(new TextEncoder().encode('['));
          },
        }),
        duplex: 'half',
      } as RequestInit),
    );
    await new Promise((r) => setTimeout(r, 20));
    h.requestStop();
    expect((await arriving).status).toBe(503);
    expect((await h.fetch(post(JSON.stringify(eventList(1))))).status).toBe(503);
  });
});
