/**
 * Two agents of two clusters write into one ClickHouse at once; the server is killed (-9) while
 * they ingest and started again later. Nothing is lost or doubled in any count or report, the
 * agents show the store as down and their lag growing meanwhile, and each cluster's report sees
 * only its own events.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClickHouseStore } from '../../src/store/clickhouse/clickhouse-store.js';
import {
  type AgentProcess,
  buildOnce,
  kaudit,
  startAgent,
  status,
  tempDir,
  waitFor,
} from '../fixtures/agent/harness.js';
import { auditLines } from '../fixtures/agent/make-events.js';
import { ClickHouseServer, clickhouseMissing } from '../helpers/clickhouse-server.js';

const missing = process.env.KAUDIT_SKIP_CLICKHOUSE === '1' ? 'KAUDIT_SKIP_CLICKHOUSE=1' : clickhouseMissing();

describe.skipIf(missing !== undefined)('agents writing into ClickHouse through a server crash', () => {
  let server: ClickHouseServer;
  let root: string;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    await buildOnce();
    root = tempDir('ch-outage');
    server = await ClickHouseServer.start({ dir: join(root, 'clickhouse') });
  }, 120_000);
  afterAll(async () => {
    for (const a of agents) if (a.child.exitCode === null) a.child.kill('SIGKILL');
    await server?.destroy();
    const { rmSync } = await import('node:fs');
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  function agentDir(cluster: string): { dir: string; log: string; config: string } {
    const dir = join(root, cluster);
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const log = join(dir, 'logs', 'audit.log');
    const config = join(dir, 'kaudit.yaml');
    writeFileSync(
      config,
      `cluster: ${cluster}
run_path: run
data: data
admin: {listen: "127.0.0.1:0"}
store: {type: clickhouse, url: "${server.url}", database: kaudit, username: default}
pipeline: {batch_events: 2000, flush_interval_ms: 200}
logs:
  - type: file
    path: logs/audit.log
`,
    );
    return { dir, log, config };
  }

  it('loses nothing and doubles nothing; each cluster sees its own', async () => {
    const spec = `clickhouse://default@127.0.0.1:${server.ports.http}/kaudit`;
    const init = await kaudit(['store', 'init', '--store', spec]);
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);

    const a = agentDir('alpha');
    const b = agentDir('beta');
    writeFileSync(a.log, auditLines('alpha', 0, 3000));
    writeFileSync(b.log, auditLines('beta', 0, 2000));
    const alpha = await startAgent(a.config);
    agents.push(alpha);
    const beta = await startAgent(b.config);
    agents.push(beta);

    const reader = await ClickHouseStore.open({
      url: server.url,
      database: 'kaudit',
      username: 'default',
      password: '',
    });
    const rowsOf = async (cluster: string) => reader.count({ cluster: [cluster] });
    await waitFor(
      'both clusters stored',
      async () => (await rowsOf('alpha')) === 3000 && (await rowsOf('beta')) === 2000,
    );
    // Each agent's status shows the rows of every cluster in the shared store.
    const perCluster = (
      (await status(alpha.admin)).store as { clusters?: { cluster: string; rows: number }[] }
    ).clusters;
    expect(perCluster).toEqual(
      expect.arrayContaining([
        { cluster: 'alpha', rows: 3000 },
        { cluster: 'beta', rows: 2000 },
      ]),
    );

    // More arrives, and the server dies while the agents write it.
    appendFileSync(a.log, auditLines('alpha', 3000, 23_000));
    appendFileSync(b.log, auditLines('beta', 2000, 12_000));
    await waitFor('alpha writing', async () => (await rowsOf('alpha')) > 3000, 60_000);
    // Killed with inserts in flight (measured: ~5,000 of alpha's 23,000 stored at this point).
    await server.kill();
    await reader.close();

    // Down: the agents say so, and the lag grows while the files do.
    await waitFor(
      'alpha sees the store down',
      async () => (await status(alpha.admin)).store.status === 'Error',
    );
    const lagOf = async (admin: string) => Number((await status(admin)).logs[0]?.lagBytes ?? 0);
    await waitFor(
      'beta sees the store down',
      async () => (await status(beta.admin)).store.status === 'Error',
    );
    const lagBefore = await lagOf(alpha.admin);
    appendFileSync(a.log, auditLines('alpha', 23_000, 25_000));
    await waitFor('alpha lag growing', async () => (await lagOf(alpha.admin)) > lagBefore);

    await server.run();
    const back = await ClickHouseStore.open({
      url: server.url,
      database: 'kaudit',
      username: 'default',
      password: '',
    });
    try {
      await waitFor(
        'everything stored after the restart',
        async () =>
          (await back.count({ cluster: ['alpha'] })) >= 25_000 &&
          (await back.count({ cluster: ['beta'] })) >= 12_000,
        120_000,
      );
      await waitFor('store OK again', async () => (await status(alpha.admin)).store.status === 'OK', 60_000);

      // Exactly once: as many rows as distinct events, per cluster.
      const perCluster = await back.sql(
        'SELECT cluster, count() AS n, uniqExact(audit_id, stage) AS distinct_events FROM events GROUP BY cluster ORDER BY cluster',
        { maxRows: 10, timeoutMs: 30_000 },
      );
      expect(perCluster.rows).toEqual([
        { cluster: 'alpha', n: 25_000, distinct_events: 25_000 },
        { cluster: 'beta', n: 12_000, distinct_events: 12_000 },
      ]);
    } finally {
      await back.close();
    }

    // A report of one cluster counts only its events.
    const report = await kaudit(['report', 'activity', '--cluster', 'beta', '--json', '--store', spec]);
    expect(report.code).toBe(0);
    expect(JSON.parse(report.stdout)).toMatchObject({ requests: 12_000 });
    const info = await kaudit(['store', 'info', '--json', '--store', spec]);
    expect(
      JSON.parse(info.stdout).clusters.map((c: { cluster: string; rows: number }) => [c.cluster, c.rows]),
    ).toEqual([
      ['alpha', 25_000],
      ['beta', 12_000],
    ]);

    for (const agent of [alpha, beta]) {
      agent.child.kill('SIGTERM');
      expect(await agent.exited).toBe(0);
    }
  }, 300_000);
});
