import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent, EventList } from '../../src/model/event.js';
import { buildOnce, tempDir } from '../fixtures/agent/harness.js';
import { type CliResult, runCli } from '../helpers/cli.js';

/** Spawns the built CLI without blocking this process, so an HTTP server here can answer it. */
function kaudit(args: string[], cwd: string): Promise<CliResult> {
  return runCli(args, { cwd });
}

function readLog(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => /^audit(-[\dT.-]+)?\.log(\.gz)?$/.test(n))
    .sort((a, b) => (a === 'audit.log' ? 1 : b === 'audit.log' ? -1 : a.localeCompare(b)))
    .flatMap((n) => {
      const raw = readFileSync(join(dir, n));
      return (n.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8').split('\n').filter(Boolean);
    });
}

let dir: string;
beforeAll(async () => {
  await buildOnce();
  dir = tempDir('simulate');
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Each test spawns its own process into its own directory, so they can run side by side.
describe.concurrent('kaudit simulate --out', () => {
  it('writes rotated, gzipped files named like kube-apiserver, a truth file, and a JSON summary', async () => {
    const cwd = tempDir('simulate-out');
    const r = await kaudit(
      [
        'simulate',
        '--out',
        'audit.log',
        '--count',
        '8000',
        '--rotate-mb',
        '1',
        '--compress',
        '--seed',
        '9',
        '--json',
      ],
      cwd,
    );
    expect(r.stderr).toMatch(/^kaudit: simulated 8000 events \(1[0-9.]+ MiB, \d{4}-\d\d-\d\dT[0-9:.]+Z to /);
    expect(r.stderr).toContain('ground truth for ');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout) as {
      events: number;
      files: string[];
      truth: string;
      rotations: number;
      end: string;
    };
    expect(summary.events).toBe(8000);
    // Without --start the traffic ends about now, so `--since 1h` finds it.
    expect(Math.abs(Date.parse(summary.end) - Date.now())).toBeLessThan(120_000);
    expect(summary.rotations).toBeGreaterThanOrEqual(10);
    expect(summary.files.at(-1)).toBe('audit.log');
    for (const f of summary.files.slice(0, -1))
      expect(f).toMatch(/^audit-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}\.log\.gz$/);
    expect(readdirSync(cwd).sort()).toEqual([...summary.files, 'audit.log.truth.json'].sort());

    const events = readLog(cwd).map((l) => JSON.parse(l) as AuditEvent);
    expect(events).toHaveLength(8000);
    const pairs = new Set(events.map((e) => `${e.auditID}/${e.stage}`));
    expect(pairs.size).toBe(8000);
    const truth = JSON.parse(readFileSync(join(cwd, summary.truth), 'utf8')) as {
      events: number;
      steps: { id: string; auditIDs: string[] }[];
    };
    expect(truth.events).toBe(8000);
    const ids = new Set(events.map((e) => e.auditID));
    const stepIds = truth.steps.flatMap((s) => s.auditIDs);
    expect(stepIds.length).toBeGreaterThan(100);
    expect(stepIds.filter((id) => !ids.has(id))).toEqual([]);
    rmSync(cwd, { recursive: true, force: true });
  });

  it('writes the same bytes for the same seed and start', async () => {
    const digest = async (sub: string): Promise<string> => {
      const cwd = join(dir, sub);
      const r = await kaudit(
        [
          'simulate',
          '--out',
          join(cwd, 'audit.log'),
          '--count',
          '3000',
          '--seed',
          '42',
          '--start',
          '2026-01-15T09:00:00Z',
        ],
        dir,
      );
      expect(r.code).toBe(0);
      const h = createHash('sha256');
      h.update(readFileSync(join(cwd, 'audit.log')));
      h.update(readFileSync(join(cwd, 'audit.log.truth.json')));
      return h.digest('hex');
    };
    const [a, b] = await Promise.all([digest('a'), digest('b')]);
    expect(a).toBe(b);
  });

  it('prints events on stdout when given no destination', async () => {
    const r = await kaudit(['simulate', '--count', '50', '--scenario', 'normal,denials'], dir);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(50);
    for (const l of lines) expect((JSON.parse(l) as AuditEvent).kind).toBe('Event');
    expect(r.stderr).toContain('into stdout');
  });

  it('exits 2 and lists every bad flag at once', async () => {
    const r = await kaudit(
      [
        'simulate',
        '--count',
        '0',
        '--rate',
        'fast',
        '--scenario',
        'normal,chaos',
        '--start',
        'monday',
        '--compress',
      ],
      dir,
    );
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    for (const flag of ['--count', '--rate', '--scenario', '--start', '--compress']) {
      expect(r.stderr).toContain(`] ${flag}:`);
    }
    expect(r.stderr).toContain('unknown scenario "chaos"');
  });

  it('--follow writes in real time at --rate, stamped with the wall clock', async () => {
    const cwd = join(dir, 'follow');
    const before = Date.now();
    const r = await kaudit(
      [
        'simulate',
        '--follow',
        '--duration',
        '2s',
        '--rate',
        '30',
        '--scenario',
        'normal',
        '--out',
        join(cwd, 'audit.log'),
      ],
      dir,
    );
    expect(r.code).toBe(0);
    expect(r.ms).toBeGreaterThan(1500);
    const events = readLog(cwd).map((l) => JSON.parse(l) as AuditEvent);
    expect(events.length).toBeGreaterThan(20);
    expect(events.length).toBeLessThan(150);
    for (const e of events) {
      const t = Date.parse(e.stageTimestamp);
      expect(t).toBeGreaterThanOrEqual(before - 1000);
      expect(t).toBeLessThanOrEqual(Date.now() + 1000);
    }
  });
});

describe('kaudit simulate --webhook', () => {
  let server: Server;
  let url: string;
  const batches: { auth: string | undefined; body: EventList }[] = [];
  let refuse = false;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (refuse) {
          res.writeHead(403).end();
          return;
        }
        batches.push({
          auth: req.headers.authorization,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as EventList,
        });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/audit`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('POSTs EventList batches with the bearer token', async () => {
    const r = await kaudit(
      ['simulate', '--webhook', url, '--token', 'abc', '--count', '1000', '--json'],
      dir,
    );
    expect(r.stderr).toContain('EventList batches to');
    expect(r.code).toBe(0);
    expect(batches.length).toBeGreaterThanOrEqual(3);
    for (const b of batches) {
      expect(b.auth).toBe('Bearer abc');
      expect(b.body.kind).toBe('EventList');
      expect(b.body.apiVersion).toBe('audit.k8s.io/v1');
    }
    expect(batches.reduce((n, b) => n + b.body.items.length, 0)).toBe(1000);
    const summary = JSON.parse(r.stdout) as { webhook: { batches: number; dropped: number } };
    expect(summary.webhook).toMatchObject({ batches: batches.length, dropped: 0 });
  });

  it('exits 3 when the receiver refuses the events', async () => {
    refuse = true;
    const r = await kaudit(['simulate', '--webhook', url, '--count', '10'], dir);
    refuse = false;
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('did not accept 10 events');
    expect(r.stderr).toContain('HTTP 403');
  });
});

describe('simulate for a first look', () => {
  it('--scenario slow still writes the background traffic around it; --no-background leaves it out', async () => {
    const cwd = tempDir('simulate-slow');
    const users = async (extra: string[]) => {
      const r = await kaudit(
        ['simulate', '--scenario', 'slow', '--duration', '10m', '--rate', '5', ...extra],
        cwd,
      );
      expect(r.code, r.stderr).toBe(0);
      return new Set(
        r.stdout
          .split('\n')
          .filter(Boolean)
          .map((l) => (JSON.parse(l) as AuditEvent).user.username),
      );
    };
    const withBackground = await users([]);
    const alone = await users(['--no-background']);
    expect(withBackground.size).toBeGreaterThan(alone.size + 5);
    for (const u of alone) expect(withBackground.has(u)).toBe(true);
  });

  it('two clusters simulated with the same seed get different audit IDs; the same cluster the same ones', async () => {
    const cwd = tempDir('simulate-clusters');
    const ids = async (cluster: string) => {
      const r = await kaudit(
        [
          'simulate',
          '--count',
          '500',
          '--seed',
          '3',
          '--start',
          '2026-01-15T09:00:00Z',
          '--cluster',
          cluster,
        ],
        cwd,
      );
      expect(r.code, r.stderr).toBe(0);
      return r.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as AuditEvent).auditID);
    };
    const a = await ids('prod-eu');
    const b = await ids('prod-us');
    expect(a.filter((id) => b.includes(id))).toEqual([]);
    expect(await ids('prod-eu')).toEqual(a);
  });
});
