import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../collect/logger.js';
import { createForwarder, type ForwardConfig, forwardSchema } from './sink-types.js';

/**
 * A HEC with indexer acknowledgement: each POST to /event gets an ackId; /ack says true for an id
 * once it was asked about `pollsBeforeAck` times, or never when `neverAck` is set.
 */
let server: Server;
let base = '';
let pollsBeforeAck = 2;
/** ackIds the indexers never acknowledge. */
const lost = new Set<number>();
let loseNext = false;
let nextId = 0;
const polls = new Map<number, number>();
const posted: { ackId: number; channel: string; events: number }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const channel = String(req.headers['x-splunk-request-channel'] ?? '');
      if (req.url?.startsWith('/services/collector/event')) {
        const text = gunzipSync(Buffer.concat(chunks)).toString('utf8');
        const ackId = nextId++;
        if (loseNext) {
          lost.add(ackId);
          loseNext = false;
        }
        posted.push({ ackId, channel, events: text.split('\n').filter(Boolean).length });
        return void res.writeHead(200).end(JSON.stringify({ text: 'Success', code: 0, ackId }));
      }
      if (req.url?.startsWith('/services/collector/ack')) {
        const { acks } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { acks: number[] };
        const out: Record<string, boolean> = {};
        for (const id of acks) {
          const n = (polls.get(id) ?? 0) + 1;
          polls.set(id, n);
          out[String(id)] = !lost.has(id) && n > pollsBeforeAck;
        }
        return void res.writeHead(200).end(JSON.stringify({ acks: out }));
      }
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((r) => server.close(r)));

const quiet = createLogger({ out: { write: () => true } as unknown as NodeJS.WritableStream });
const batch = {
  cluster: 'prod',
  events: [1, 2, 3].map((i) =>
    Buffer.from(
      JSON.stringify({
        kind: 'Event',
        apiVersion: 'audit.k8s.io/v1',
        auditID: `a${i}`,
        stage: 'ResponseComplete',
        verb: 'get',
        requestURI: '/api/v1/pods',
        user: { username: 'alice' },
        requestReceivedTimestamp: '2026-01-15T09:00:00.000000Z',
        stageTimestamp: '2026-01-15T09:00:00.100000Z',
      }),
    ),
  ),
};

function sink(extra: Record<string, unknown>) {
  const cfg = forwardSchema.parse({
    type: 'splunk',
    url: base,
    token: { env: 'HEC' },
    ...extra,
  }) as ForwardConfig;
  return createForwarder(cfg, {
    log: quiet,
    env: { HEC: 'token-0123456789' },
    pathOf: (p) => p,
    deadLetter: async () => {},
  }) as ReturnType<typeof createForwarder> & { stats(): { sentEvents: number; retries: number } };
}

describe('Splunk indexer acknowledgement', () => {
  it('counts events sent only once the indexers acknowledged them, on the request channel', async () => {
    posted.length = 0;
    const s = sink({ ack: true });
    await s.export(batch);
    expect(posted).toHaveLength(1);
    expect(posted[0]?.channel).toMatch(/^[0-9a-f-]{36}$/);
    expect(polls.get(posted[0]?.ackId ?? -1)).toBe(pollsBeforeAck + 1);
    expect(s.stats()).toMatchObject({ sentEvents: 3, retries: 0 });
  });

  it('sends again what is not acknowledged in time (at least once)', async () => {
    posted.length = 0;
    pollsBeforeAck = 0;
    loseNext = true;
    const s = sink({ ack: true, ack_timeout_seconds: 1 });
    await s.export(batch);
    expect(posted).toHaveLength(2);
    expect(lost.has(posted[0]?.ackId ?? -1)).toBe(true);
    expect(s.stats().retries).toBeGreaterThanOrEqual(1);
    expect(s.stats().sentEvents).toBe(3);
  }, 20_000);

  it('without ack waits for nothing and sends no channel', async () => {
    posted.length = 0;
    const before = polls.size;
    const s = sink({});
    await s.export(batch);
    expect(posted[0]?.channel).toBe('');
    expect(polls.size).toBe(before);
  });
});
