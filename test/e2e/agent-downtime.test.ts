import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildOnce,
  kaudit,
  startAgent,
  status,
  tempDir,
  waitFor,
  writeConfig,
} from '../fixtures/agent/harness.js';
import { auditLines, backupName } from '../fixtures/agent/make-events.js';

const dir = tempDir('downtime');
beforeAll(buildOnce);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('kaudit agent stopped and restarted', () => {
  it('drains on SIGTERM, and after downtime with three rotations reads everything written meanwhile', async () => {
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    const live = join(logs, 'audit.log');
    writeFileSync(live, auditLines('dt', 0, 1000));
    const config = writeConfig(dir, '  - type: file\n    path: logs/audit.log\n');

    const first = await startAgent(config);
    await waitFor('1000 rows', async () => (await status(first.admin)).store.rows === 1000);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.stderr()).toMatch(/agent stopped/);
    expect(existsSync(join(dir, 'run', 'agent.json'))).toBe(false);
    const cp = JSON.parse(readFileSync(join(dir, 'run', 'checkpoints.json'), 'utf8'));
    expect(cp.sources[live].files[0].offset).toBe(readFileSync(live).length);

    // Downtime: appends, then three rotations; the oldest backup is compressed, as --audit-log-compress does.
    appendFileSync(live, auditLines('dt', 1000, 1500));
    let n = 1500;
    const backups: string[] = [];
    for (let r = 0; r < 3; r++) {
      const b = join(logs, backupName('audit.log', new Date(Date.UTC(2026, 10, 26, 10, r))));
      renameSync(live, b);
      backups.push(b);
      writeFileSync(live, auditLines('dt', n, n + 500));
      n += 500;
    }
    const oldest = backups[0] ?? '';
    writeFileSync(`${oldest}.gz`, gzipSync(readFileSync(oldest)));
    const past = new Date(Date.now() - 60_000);
    utimesSync(`${oldest}.gz`, past, past);
    rmSync(oldest);
    expect((await kaudit(['status', '--config', config])).code).toBe(3);

    const second = await startAgent(config);
    await waitFor(`${n} rows`, async () => (await status(second.admin)).store.rows === n);
    const s = await status(second.admin);
    // Only what was written while stopped is read again: the checkpoints held.
    expect(s.logs[0]).toMatchObject({ events: n - 1000, status: 'OK' });
    expect(s.pipeline.duplicates).toBe(0);

    // The read API's token is in agent.json, which only the agent's user may read; the data
    // directory the agent created is that user's alone too.
    for (const f of [join(dir, 'run', 'agent.json'), join(dir, 'data', 'agent.json')])
      expect(statSync(f).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'data')).mode & 0o777).toBe(0o700);
    const anonymous = await fetch(`${second.admin}/api/v1/query`, {
      method: 'POST',
      body: '{"sql":"SELECT 1"}',
    });
    expect(anonymous.status).toBe(401);

    // Read commands reach the agent that holds the store, with the output they give without it.
    const through = await kaudit(['search', '--data', join(dir, 'data'), '--json', '--limit', '5']);
    expect(through.code).toBe(0);
    const q = 'SELECT count(*) AS n, count(DISTINCT audit_id) AS d FROM events';
    const queryThrough = await kaudit(['query', '--data', join(dir, 'data'), q]);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    const direct = await kaudit(['search', '--data', join(dir, 'data'), '--json', '--limit', '5']);
    expect(through.stdout).toBe(direct.stdout);
    expect(through.stdout.trim().split('\n')).toHaveLength(5);
    const queryDirect = await kaudit(['query', '--data', join(dir, 'data'), q]);
    expect(queryThrough.stdout).toBe(queryDirect.stdout);
    expect(queryDirect.stdout).toMatch(new RegExp(`${n}\\s+${n}`));
  });
});
