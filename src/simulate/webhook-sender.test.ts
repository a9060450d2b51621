import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventList } from '../model/event.js';
import { Simulation } from './generator.js';
import { drive, webhookSink } from './run.js';
import { WebhookSender } from './webhook-sender.js';

interface Received {
  auth: string | undefined;
  contentType: string | undefined;
  body: EventList;
}

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A real HTTP server on 127.0.0.1; `answer` picks the status for the n-th request. */
async function listen(
  answer: (n: number) => number,
): Promise<{ url: string; received: Received[]; hits: () => number }> {
  const received: Received[] = [];
  let n = 0;
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = answer(n++);
      if (status === 200) {
        received.push({
          auth: req.headers.authorization,
          contentType: req.headers['content-type'],
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as EventList,
        });
      }
      res.writeHead(status, status === 429 ? { 'retry-after': '0' } : {});
      res.end();
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/audit`, received, hits: () => n };
}

describe('WebhookSender', () => {
  it('POSTs EventList batches with the bearer token and delivers every event once', async () => {
    const { url, received } = await listen(() => 200);
    const sim = new Simulation({ seed: 4, count: 1000 });
    const sender = new WebhookSender({ url, token: 's3cret', batchMaxSize: 300 });
    const ids: string[] = [];
    const sink = webhookSink(sender);
    const n = await drive(sim, {
      write: (e) => {
        ids.push(`${e.auditID}/${e.stage}`);
        return sink.write(e);
      },
      flush: () => sink.flush(),
    });
    expect(n).toBe(1000);
    expect(received.map((r) => r.body.items.length)).toEqual([300, 300, 300, 100]);
    for (const r of received) {
      expect(r.auth).toBe('Bearer s3cret');
      expect(r.contentType).toBe('application/json');
      expect(r.body.kind).toBe('EventList');
      expect(r.body.apiVersion).toBe('audit.k8s.io/v1');
    }
    expect(received.flatMap((r) => r.body.items.map((e) => `${e.auditID}/${e.stage}`))).toEqual(ids);
    expect(sender.stats).toMatchObject({ batches: 4, events: 1000, retries: 0, dropped: 0 });
  });

  it('retries a batch answered 429 or 5xx, then succeeds', async () => {
    const { url, received, hits } = await listen((n) => [429, 503, 200][n] ?? 200);
    const sender = new WebhookSender({ url, initialBackoffMs: 5 });
    await sender.add('{"kind":"Event"}\n');
    await sender.flush();
    expect(hits()).toBe(3);
    expect(received).toHaveLength(1);
    expect(sender.stats).toMatchObject({ batches: 1, retries: 2, dropped: 0 });
  });

  it('drops and counts a batch the server keeps refusing, without retrying a 400', async () => {
    const { url, hits } = await listen(() => 400);
    const sender = new WebhookSender({ url, initialBackoffMs: 5 });
    await sender.add('{"kind":"Event"}');
    await sender.add('{"kind":"Event"}');
    await sender.flush();
    expect(hits()).toBe(1);
    expect(sender.stats.dropped).toBe(2);
    expect(sender.stats.lastError).toContain('HTTP 400');
  });

  it('gives up after maxRetries when nothing listens', async () => {
    const { url } = await listen(() => 200);
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    server = undefined;
    const sender = new WebhookSender({ url, initialBackoffMs: 1, maxRetries: 2 });
    await sender.add('{"kind":"Event"}');
    await sender.flush();
    expect(sender.stats).toMatchObject({ retries: 2, dropped: 1 });
  });
});
