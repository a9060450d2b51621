/**
 * Starts the ClickHouse servers the tests share (a single node and the two shards of a Distributed
 * setup) once per `vitest run`, and stops them at the end. Without clickhouse-server the ClickHouse
 * backends are skipped with the reason printed; under CI that is a failure.
 */
import type { TestProject } from 'vitest/node';
import {
  type ClickHouseServers,
  clickhouseMissing,
  startClickHouseServers,
} from '../helpers/clickhouse-server.js';

export interface ClickHouseUrls {
  single: string;
  /** The entry point of the Distributed setup (also its first shard), then the second shard. */
  shards: [string, string];
}

declare module 'vitest' {
  export interface ProvidedContext {
    clickhouse: ClickHouseUrls | null;
  }
}

let servers: ClickHouseServers | undefined;

export async function setup(project: TestProject): Promise<void> {
  const missing =
    process.env.KAUDIT_SKIP_CLICKHOUSE === '1' ? 'KAUDIT_SKIP_CLICKHOUSE=1' : clickhouseMissing();
  if (missing !== undefined) {
    if (process.env.CI !== undefined && process.env.KAUDIT_SKIP_CLICKHOUSE !== '1')
      throw new Error(`the ClickHouse tests need clickhouse-server under CI: ${missing}`);
    process.stderr.write(`ClickHouse backends skipped: ${missing}\n`);
    project.provide('clickhouse', null);
    return;
  }
  servers = await startClickHouseServers();
  project.provide('clickhouse', {
    single: servers.single.url,
    shards: [servers.shards[0].url, servers.shards[1].url],
  });
}

export async function teardown(): Promise<void> {
  if (servers === undefined) return;
  await Promise.all([servers.single.destroy(), ...servers.shards.map((s) => s.destroy())]);
  servers = undefined;
}
