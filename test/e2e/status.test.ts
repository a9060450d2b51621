import {
  appendFileSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
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
import { auditLine, auditLines, backupName } from '../fixtures/agent/make-events.js';

const dir = tempDir('status');
beforeAll(buildOnce);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('kaudit status', () => {
  it('reports per source what was written: files, bytes, events, rotations, truncated, malformed, lag', async () => {
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    const live = join(logs, 'audit.log');
    const big = auditLine('big', { level: 'RequestResponse', requestObject: { data: 'x'.repeat(200_000) } });
    writeFileSync(live, auditLines('s', 0, 300) + big + 'garbage line\n');
    const config = writeConfig(dir, '  - type: file\n    path: logs/audit.log\n    service: apiserver\n');
    const agent = await startAgent(config, { KAUDIT_MAX_EVENT_BYTES: '65536', KAUDIT_CLUSTER: 'status-e2e' });
    try {
      await waitFor('301 rows', async () => (await status(agent.admin)).store.rows === 301);
      const b = join(logs, backupName('audit.log', new Date('2026-11-26T10:00:00Z')));
      const firstSize = statSync(live).size;
      renameSync(live, b);
      writeFileSync(live, auditLines('s', 300, 400));
      appendFileSync(live, '');
      await waitFor('401 rows and the backup let go', async () => {
        const s = await status(agent.admin);
        return s.store.rows === 401 && s.logs[0]?.filesTailed === 1;
      });
      const total = firstSize + readFileSync(live).length;

      const r = await kaudit(['status', '--config', config, '--json']);
      expect(r.code).toBe(0);
      const s = JSON.parse(r.stdout);
      expect(s.agent).toMatchObject({ cluster: 'status-e2e', logsEnabled: true });
      expect(s.logs[0]).toMatchObject({
        type: 'file',
        path: live,
        service: 'apiserver',
        source: 'kubernetes.audit',
        status: 'OK',
        filesTailed: 1,
        filesMatching: 2,
        bytesRead: total,
        events: 401,
        lagBytes: 0,
        lagSeconds: 0,
        rotations: 1,
        truncated: 1,
        malformed: 1,
        dropped: 0,
      });
      expect(s.logs[0].lastCheckpoint).toMatch(/^\d{4}-/);
      expect(s.pipeline).toMatchObject({ eventsStored: 401, deadLettered: 1, queuedEvents: 0 });
      expect(s.pipeline.latencyPeakMs).toBeGreaterThan(0);
      // One fresh agent writing events in order: nothing needed looking up in the table.
      expect(s.store).toMatchObject({ backend: 'duckdb', status: 'OK', rows: 401, tableChecks: 0 });

      const text = await kaudit(['status', '--config', config]);
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(/^Logs Agent\n==========/);
      expect(text.stdout).toContain('1 files tailed out of 2 files matching');
      expect(text.stdout).toContain('Truncated: 1   Malformed: 1   Dropped: 0');
      expect(text.stdout).toMatch(/Rows: 401/);
      expect(text.stdout).toContain('Table checks: 0');

      const metrics = await (await fetch(`${agent.admin}/metrics`)).text();
      expect(metrics).toMatch(/kaudit_source_events_total\{source="[^"]+",type="file"\} 401/);
      expect(metrics).toContain('# TYPE kaudit_file_lag_bytes gauge');
      expect(metrics).toContain('kaudit_store_table_checks_total 0');
      expect((await fetch(`${agent.admin}/healthz`)).status).toBe(200);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });

  it('exits 3 saying so when no agent runs', async () => {
    const r = await kaudit(['status', '--admin', '127.0.0.1:9', '--json']);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/the agent is not running: nothing answers at http:\/\/127\.0\.0\.1:9/);
  });

  it('with KAUDIT_LOGS_ENABLED=false runs the admin API and store but collects nothing', async () => {
    const d = join(dir, 'off');
    mkdirSync(join(d, 'logs'), { recursive: true });
    writeFileSync(join(d, 'logs', 'audit.log'), auditLines('off', 0, 10));
    const config = writeConfig(d, '  - type: file\n    path: logs/audit.log\n');
    const agent = await startAgent(config, { KAUDIT_LOGS_ENABLED: 'false' });
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const s = await status(agent.admin);
      expect(s.logs).toEqual([]);
      expect(s.store.rows).toBe(0);
      const text = await kaudit(['status', '--config', config]);
      expect(text.stdout).toContain('Log collection is disabled');
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });

  it('reports every config problem at once and exits 2', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'run_path: r\ndata: d\nlogs:\n  - type: file\n  - type: webhook\n    listen: 0.0.0.0:1\n',
    );
    const r = await kaudit(['agent', '--config', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/2 problems in .*bad\.yaml/);
    expect(r.stderr).toMatch(/bad\.yaml:4:5: error\[KAUDIT_CONFIG_INVALID\] logs\[0\]\.path:/);
    expect(r.stderr).toMatch(/bad\.yaml:5:5: error\[KAUDIT_CONFIG_INVALID\] logs\[1\]:/);
  });
});
