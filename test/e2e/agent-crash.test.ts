import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentProcess,
  BIN,
  buildOnce,
  kaudit,
  startAgent,
  status,
  tempDir,
  waitFor,
  writeConfig,
} from '../fixtures/agent/harness.js';

const EVENTS = 200_000;
const RATE = 20_000;

const dir = tempDir('crash');
beforeAll(buildOnce);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every distinct (auditID, stage) in the log files the simulator left: backups (gzipped) and audit.log. */
function pairsWritten(logDir: string): Set<string> {
  const pairs = new Set<string>();
  const re = /"auditID":"([^"]+)","stage":"([^"]+)"/;
  for (const name of readdirSync(logDir)) {
    if (!/\.log(\.gz)?$/.test(name)) continue;
    const raw = readFileSync(join(logDir, name));
    const text = (name.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const m = re.exec(line);
      if (m) pairs.add(`${m[1]}/${m[2]}`);
      else {
        const e = JSON.parse(line) as { auditID: string; stage: string };
        pairs.add(`${e.auditID}/${e.stage}`);
      }
    }
  }
  return pairs;
}

describe('kaudit agent under kill -9', () => {
  it('stores exactly the distinct (auditID, stage) pairs the simulator wrote, across two crashes and rotations', async () => {
    const logDir = join(dir, 'logs');
    mkdirSync(logDir);
    const config = writeConfig(dir, '  - type: file\n    path: logs/audit.log\n');
    let agent: AgentProcess = await startAgent(config);
    // kube-apiserver-like: rotate at 4 MiB, gzip backups, keep them all, in real time.
    const sim = spawn(
      process.execPath,
      [
        BIN,
        'simulate',
        '--out',
        join(logDir, 'audit.log'),
        '--count',
        String(EVENTS),
        '--follow',
        '--rate',
        String(RATE),
        '--rotate-mb',
        '4',
        '--compress',
        '--max-backups',
        '0',
        '--seed',
        '11',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let simErr = '';
    sim.stderr?.on('data', (d: Buffer) => {
      simErr += d.toString();
    });
    const simDone = new Promise<number | null>((resolve) => sim.on('exit', resolve));
    const started = Date.now();
    const seconds = EVENTS / RATE;
    const kills: number[] = [];
    for (const at of [0.1 + Math.random() * 0.35, 0.5 + Math.random() * 0.35]) {
      const wait = started + at * seconds * 1000 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      kills.push(Math.round((Date.now() - started) / 100) / 10);
      agent.child.kill('SIGKILL');
      await agent.exited;
      agent = await startAgent(config);
    }
    expect(await simDone, simErr).toBe(0);
    const written = pairsWritten(logDir);
    expect(readdirSync(logDir).filter((n) => n.endsWith('.log.gz')).length).toBeGreaterThan(10);

    const current = agent;
    let rows: number | null = null;
    await waitFor(
      `${written.size} rows (killed at ${kills.join(' s, ')} s)`,
      async () => {
        const s = await status(current.admin);
        rows = s.store.rows;
        // Rows can be complete while lines already stored are still being read again (duplicates).
        return rows === written.size && s.logs[0]?.lagBytes === 0;
      },
      150_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; stored ${rows}\n${current.stderr()}`);
    });
    expect((await status(current.admin)).logs[0]).toMatchObject({ status: 'OK' });
    current.child.kill('SIGTERM');
    expect(await current.exited).toBe(0);

    const q = await kaudit([
      'query',
      '--data',
      join(dir, 'data'),
      '--max-rows',
      '10000000',
      '--json',
      "SELECT audit_id || '/' || stage AS k FROM events",
    ]);
    expect(q.stderr).toBe('');
    const stored = q.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { k: string }).k);
    // None doubled, none missing, nothing else.
    expect(stored.length).toBe(new Set(stored).size);
    expect(stored.length).toBe(written.size);
    expect(stored.filter((k) => !written.has(k))).toEqual([]);
  }, 300_000);
});
