/**
 * The CLI on a ClickHouse store: --store on the commands that take --data, `kaudit store init`,
 * what a missing store or a password in the URL says, the sandbox of `kaudit query`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FIXTURES, runCli } from '../helpers/cli.js';

const urls = inject('clickhouse');

describe.skipIf(urls === null)('kaudit --store clickhouse://', () => {
  const database = `kaudit_cli_${randomBytes(4).toString('hex')}`;
  const host = (urls?.single ?? '').replace('http://', '');
  const spec = `clickhouse://default@${host}/${database}`;
  const demo = `${FIXTURES}third-party/samples/audit2rbac-demo.log`;
  // The data directory still holds the dead letters of `ingest --store`: a temp one, not ./kaudit-data.
  const dataDir = mkdtempSync(join(tmpdir(), 'kaudit-ch-cli-'));
  const run = (args: string[], env: Record<string, string> = {}) =>
    runCli(args, { env: { KAUDIT_DATA: dataDir, ...env } });

  beforeAll(async () => {
    const { buildOnce } = await import('../fixtures/agent/harness.js');
    await buildOnce();
  }, 120_000);
  afterAll(async () => {
    if (urls) await fetch(`${urls.single}/`, { method: 'POST', body: `DROP DATABASE IF EXISTS ${database}` });
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('says to run store init when there is no store, then creates it (twice is fine)', async () => {
    const missing = await run(['search', '--store', spec]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('KAUDIT_STORE_MISSING');
    expect(missing.stderr).toContain('kaudit store init');
    for (let i = 0; i < 2; i++) {
      const init = await run(['store', 'init', '--store', spec]);
      expect(init.code).toBe(0);
      expect(init.stdout).toContain(`${database}.audit_events`);
    }
  });

  it('ingests once, searches, reports, and keeps the SQL to the events view', async () => {
    const env = { KAUDIT_STORE: spec };
    for (let i = 0; i < 2; i++) expect((await run(['ingest', '--cluster', 'demo', demo], env)).code).toBe(0);
    const denied = await run(['search', '--store', spec, '--json', '--code', '403', '--limit', '100']);
    expect(denied.code).toBe(0);
    expect(denied.stdout.trim().split('\n')).toHaveLength(11);
    const hostile = await run(['search', '--store', spec, '--json', '--user', "a' OR 1=1 --"]);
    expect(hostile.code).toBe(0);
    expect(hostile.stdout.trim()).toBe('');
    const q = await run(['query', '--json', 'SELECT count() AS n FROM events'], env);
    expect(JSON.parse(q.stdout)).toEqual({ n: 37 });
    const other = await run(['query', 'SELECT * FROM system.users'], env);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('KAUDIT_QUERY_FORBIDDEN');
  });

  it('never takes a password on the command line, and shows --store in help', async () => {
    const r = await run(['search', '--store', `clickhouse://default:hunter2@${host}/${database}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('KAUDIT_STORE_PASSWORD_IN_URL');
    expect(r.stderr).not.toContain('hunter2');
    for (const cmd of [['search'], ['report', 'activity'], ['ingest'], ['store', 'info'], ['query']]) {
      const help = await run([...cmd, '--help']);
      expect(help.stdout, cmd.join(' ')).toContain('--store <url>');
    }
  });
});
