import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../collect/logger.js';
import type { LoggedAlert } from '../detect/alert-log.js';
import { createAlertOutputs, slackLine } from './alert-outputs.js';

const dir = mkdtempSync(join(tmpdir(), 'kaudit-alert-outputs-'));
const logPath = join(dir, 'alerts.ndjson');
const log = createLogger({ level: 'error', out: { write: () => true } as unknown as NodeJS.WritableStream });
let server: Server;
let url = '';
let up = true;
const bodies: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      if (!up) {
        res.writeHead(503).end();
        return;
      }
      bodies.push(body);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

function alert(i: number, rule = 'r1'): LoggedAlert {
  return {
    time: `2026-01-15T09:00:${String(i).padStart(2, '0')}Z`,
    rule: { id: rule, severity: 'high', title: 'T' },
    auditID: `a${i}`,
    message: `m${i}`,
  };
}

function append(alerts: LoggedAlert[]): void {
  appendFileSync(logPath, alerts.map((a) => `${JSON.stringify(a)}\n`).join(''));
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
};

describe('webhook alert output', () => {
  it('delivers at least once across a restart: what was not delivered is sent by the next start', async () => {
    const deps = { alertLogPath: logPath, dataDir: dir, log, maxPerRulePerMinute: 100, maxBackoffMs: 50 };
    append([alert(0)]); // history before the output existed is not sent
    let [out] = createAlertOutputs([{ type: 'webhook', url }], deps);
    up = false;
    append([alert(1), alert(2)]);
    await out?.send([]);
    await until(() => (out?.stats().failures ?? 0) >= 2);
    await out?.close(); // stopped while the receiver is down
    expect(bodies).toEqual([]);
    up = true;
    [out] = createAlertOutputs([{ type: 'webhook', url }], deps);
    await until(() => bodies.length > 0);
    await out?.close();
    expect(bodies.flatMap((b) => (JSON.parse(b) as LoggedAlert[]).map((a) => a.auditID))).toEqual([
      'a1',
      'a2',
    ]);
    expect(readFileSync(join(dir, 'alerts.webhook.offset'), 'utf8').trim()).toBe(
      String(readFileSync(logPath).length),
    );
  });

  it('holds back a noisy rule beyond its per-minute budget, and counts it', async () => {
    bodies.length = 0;
    const now = () => Date.parse('2026-01-15T09:00:30Z');
    const [out] = createAlertOutputs([{ type: 'webhook', url }], {
      alertLogPath: logPath,
      dataDir: dir,
      log,
      maxPerRulePerMinute: 2,
      now,
    });
    append([alert(10), alert(11), alert(12), alert(13, 'r2')]);
    await out?.send([]);
    await until(() => (out?.stats().sent ?? 0) >= 3);
    await out?.close();
    expect(out?.stats()).toMatchObject({ sent: 3, throttled: 1 });
  });
});

describe('other outputs', () => {
  it('file output appends NDJSON', async () => {
    const path = join(dir, 'out.ndjson');
    const [out] = createAlertOutputs([{ type: 'file', path }], {
      alertLogPath: logPath,
      dataDir: dir,
      log,
      maxPerRulePerMinute: 10,
    });
    await out?.send([alert(1), alert(2)]);
    expect(existsSync(path)).toBe(true);
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(2);
  });

  it('a Slack line says severity, title, message and rule', () => {
    expect(slackLine({ ...alert(1), cluster: 'prod', namespace: 'web' })).toBe(
      '*[HIGH]* T: m1 (prod/web) `r1` 2026-01-15T09:00:01Z',
    );
  });
});
