/**
 * `kaudit forward`: stored events replayed to the sinks of a config, through an endpoint that first
 * fails: every event arrives once, in store order; filters and --since narrow what is sent; a
 * platform that refuses for good leaves the events in the dead letters and exit 1.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const dir = tempDir('kaudit-forward-replay-');
const data = join(dir, 'data');
let server: Server;
let base = '';
let fail = 0;
let refuse = false;
const got: { auditID: string; stage: string; ts: string; verb: string }[] = [];

beforeAll(async () => {
  const log = join(dir, 'audit.log');
  const s = await runCli([
    'simulate',
    '--out',
    log,
    '--count',
    '3000',
    '--seed',
    '6',
    '--start',
    '2026-01-15T09:00:00Z',
  ]);
  expect(s.code, s.stderr).toBe(0);
  const i = await runCli(['ingest', '--data', data, '--no-progress', log]);
  expect(i.code, i.stderr).toBe(0);
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (refuse) return void res.writeHead(400).end('bad request: never');
      if (fail > 0) {
        fail--;
        return void res.writeHead(503).end('later');
      }
      const body = gunzipSync(Buffer.concat(chunks)).toString('utf8');
      for (const line of body.split('\n').filter(Boolean)) {
        const { event } = JSON.parse(line) as {
          event: { auditID: string; stage: string; requestReceivedTimestamp: string; verb: string };
        };
        got.push({
          auditID: event.auditID,
          stage: event.stage,
          ts: event.requestReceivedTimestamp,
          verb: event.verb,
        });
      }
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 120_000);

afterAll(() => new Promise((r) => server.close(r)));

describe('kaudit forward', () => {
  it('replays every stored event once, in order, through an endpoint that fails first', async () => {
    const cfg = join(dir, 'kaudit.yaml');
    writeFileSync(cfg, `forward:\n  - type: http\n    name: lake\n    url: ${base}/in\n`);
    fail = 2;
    got.length = 0;
    const r = await runCli(['forward', '--to', cfg, '--data', data, '--batch', '500', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse((await runCli(['store', 'info', '--data', data, '--json'])).stdout) as {
      rows: number;
    };
    expect(got).toHaveLength(rows.rows);
    expect(new Set(got.map((g) => `${g.auditID}/${g.stage}`)).size).toBe(rows.rows);
    const ts = got.map((g) => g.ts);
    expect(ts).toEqual([...ts].sort());
    const out = JSON.parse(r.stdout) as { sinks: { name: string; sentEvents: number; retries: number }[] };
    expect(out.sinks[0]).toMatchObject({ name: 'lake', sentEvents: rows.rows, retries: 2 });
  });

  it('sends only what the sink filters let through, within --since', async () => {
    const cfg = join(dir, 'deletes.yaml');
    writeFileSync(cfg, `- type: http\n  url: ${base}/in\n  include: {verb: [delete]}\n`);
    got.length = 0;
    const r = await runCli(['forward', '--to', cfg, '--data', data, '--since', '2026-01-15T09:00:10Z']);
    expect(r.code, r.stderr).toBe(0);
    expect(got.length).toBeGreaterThan(0);
    expect(got.every((g) => g.verb === 'delete' && g.ts >= '2026-01-15T09:00:10')).toBe(true);
    expect(r.stderr).toMatch(/http: \d+ sent, \d+ filtered out, 0 dead-lettered/);
  });

  it('exits 1 with the events in the dead letters when the platform refuses them for good', async () => {
    const cfg = join(dir, 'refusing.yaml');
    writeFileSync(cfg, `- type: http\n  url: ${base}/in\n  include: {verb: [deletecollection]}\n`);
    refuse = true;
    const r = await runCli(['forward', '--to', cfg, '--data', data]);
    refuse = false;
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('last error: HTTP 400');
    expect(readFileSync(join(data, 'dead-letter.ndjson'), 'utf8')).toContain('forward:http');
  });

  it('names a bad sink entry by line', async () => {
    const cfg = join(dir, 'bad.yaml');
    writeFileSync(cfg, 'forward:\n  - type: htp\n    url: x\n');
    const r = await runCli(['forward', '--to', cfg, '--data', data]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${cfg}:2:`);
  });
});
