/**
 * Issue 15's first defect through the running agent: `kaudit query` (which goes through the agent
 * holding the store) and the agent's SQL endpoint refuse statements that write, read host files or
 * load extensions, and the store is unchanged after them.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, startAgent, tempDir, waitFor, writeConfig } from '../fixtures/agent/harness.js';
import { auditLines } from '../fixtures/agent/make-events.js';
import { runCli } from '../helpers/cli.js';

const HOSTILE = [
  'EXPLAIN ANALYZE DELETE FROM audit_events',
  "SELECT * FROM read_text('/etc/hostname')",
  "SELECT * FROM glob('/etc/*')",
  'INSTALL httpfs',
  "ATTACH '/tmp/kaudit-attack.duckdb' AS x",
];

describe('agent: user SQL runs sandboxed through the API', () => {
  const dir = tempDir('agent-sql');
  beforeAll(async () => {
    await buildOnce();
    mkdirSync(join(dir, 'logs'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses writes, host files and extensions via kaudit query and POST /api/v1/store/sql; the store is unchanged', async () => {
    writeFileSync(join(dir, 'logs', 'a.log'), auditLines('q', 0, 20));
    const agent = await startAgent(writeConfig(dir, '  - type: file\n    path: logs/*.log\n'));
    try {
      const count = async () => {
        const res = await fetch(`${agent.admin}/api/v1/store/sql`, {
          method: 'POST',
          headers: { authorization: `Bearer ${agent.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ text: 'SELECT count(*) AS n FROM events' }),
        });
        return Number(((await res.json()) as { rows: { n: unknown }[] }).rows[0]?.n);
      };
      await waitFor('the events stored', async () => (await count()) === 20);
      for (const text of HOSTILE) {
        const res = await fetch(`${agent.admin}/api/v1/store/sql`, {
          method: 'POST',
          headers: { authorization: `Bearer ${agent.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ text }),
        });
        expect(res.status, text).toBe(400);
        expect(await res.text(), text).toMatch(/KAUDIT_QUERY/);
        const cli = await runCli(['query', '--data', join(dir, 'data'), text]);
        expect(cli.code, text).toBe(2);
        expect(cli.stderr, text).toMatch(/error\[KAUDIT_QUERY/);
      }
      expect(await count()).toBe(20);
      // Without the token the endpoint answers nothing.
      const anonymous = await fetch(`${agent.admin}/api/v1/store/sql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: 'SELECT 1' }),
      });
      expect(anonymous.status).toBe(401);
    } finally {
      agent.child.kill('SIGTERM');
      expect(await agent.exited).toBe(0);
    }
  }, 120_000);
});
