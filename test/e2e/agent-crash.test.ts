import { appendFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentProcess,
  buildOnce,
  kaudit,
  startAgent,
  status,
  tempDir,
  waitFor,
  writeConfig,
} from '../fixtures/agent/harness.js';
import { auditLine, backupName } from '../fixtures/agent/make-events.js';

const EVENTS = 200_000;
const ROTATE_BYTES = 4 * 1024 * 1024;
const STAGES = ['RequestReceived', 'ResponseComplete'] as const;

const dir = tempDir('crash');
beforeAll(buildOnce);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Writes like kube-apiserver with lumberjack: append to audit.log, rename it to a timestamped backup
 * past ROTATE_BYTES, start a new audit.log, and gzip the backup a moment later (deleting the plain one).
 */
async function writeTraffic(logDir: string, onProgress: (written: number) => void): Promise<number> {
  const live = join(logDir, 'audit.log');
  writeFileSync(live, '');
  let size = 0;
  let clock = Date.parse('2026-11-26T10:00:00Z');
  let pairs = 0;
  const compress: string[] = [];
  for (let i = 0; i < EVENTS; ) {
    let chunk = '';
    for (let j = 0; j < 500 && i < EVENTS; j++, i++) {
      const stage = STAGES[i % 3 === 0 ? 0 : 1] ?? 'ResponseComplete';
      chunk += auditLine(`c-${Math.floor(i / 2)}`, { stage });
      pairs++;
    }
    appendFileSync(live, chunk);
    size += Buffer.byteLength(chunk);
    if (size >= ROTATE_BYTES) {
      clock += 60_000;
      const backup = join(logDir, backupName('audit.log', new Date(clock)));
      renameSync(live, backup);
      writeFileSync(live, '');
      size = 0;
      compress.push(backup);
      if (compress.length > 2) {
        const old = compress.shift() ?? '';
        writeFileSync(`${old}.gz`, gzipSync(readFileSync(old)));
        rmSync(old);
      }
    }
    onProgress(i);
    await new Promise((r) => setTimeout(r, 10));
  }
  return pairs;
}

describe('kaudit agent under kill -9', () => {
  it('stores exactly the distinct (auditID, stage) pairs written, across two crashes and rotations', async () => {
    const logDir = join(dir, 'logs');
    mkdirSync(logDir);
    const config = writeConfig(dir, `  - type: file\n    path: logs/audit.log\n`);
    let agent: AgentProcess = await startAgent(config);
    let written = 0;
    const writing = writeTraffic(logDir, (n) => {
      written = n;
    });
    const kills: number[] = [];
    for (const fraction of [0.15 + Math.random() * 0.3, 0.5 + Math.random() * 0.3]) {
      await waitFor('traffic', () => written >= EVENTS * fraction, 120_000);
      kills.push(written);
      agent.child.kill('SIGKILL');
      await agent.exited;
      agent = await startAgent(config);
    }
    // Every (auditID, stage) the writer produced; ids repeat for the two stages of one request.
    const seen = new Set<string>();
    for (let i = 0; i < EVENTS; i++) seen.add(`c-${Math.floor(i / 2)}/${STAGES[i % 3 === 0 ? 0 : 1]}`);
    await writing;
    const current = agent;
    await waitFor(
      `${seen.size} rows (killed at ${kills.join(', ')} events)`,
      async () => (await status(current.admin)).store.rows === seen.size,
      120_000,
    );
    const s = await status(current.admin);
    expect(s.logs[0]).toMatchObject({ status: 'OK', lagBytes: 0 });
    current.child.kill('SIGTERM');
    expect(await current.exited).toBe(0);

    const q = await kaudit([
      'query',
      '--data',
      join(dir, 'data'),
      '--json',
      "SELECT count(*) AS n, count(DISTINCT audit_id || '/' || stage) AS d, count(*) FILTER (WHERE audit_id NOT LIKE 'c-%') AS other FROM events",
    ]);
    expect(q.stderr).toBe('');
    const counts = JSON.parse(q.stdout) as Record<string, string | number>;
    expect([Number(counts.n), Number(counts.d), Number(counts.other)]).toEqual([seen.size, seen.size, 0]);
  });
});
