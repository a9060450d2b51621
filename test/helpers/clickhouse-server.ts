/**
 * Real clickhouse-server processes for the tests: each on free loopback ports, with its data in a
 * temp dir, started and stopped by the tests (a single node, or two shards of a Distributed setup).
 * Debian's package (18.16) is the oldest server kaudit supports.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClickHouseStore } from '../../src/store/clickhouse/clickhouse-store.js';

export const CLICKHOUSE_SERVER = process.env.KAUDIT_CLICKHOUSE_SERVER ?? '/usr/sbin/clickhouse-server';
const USERS_CONFIG = '/etc/clickhouse-server/users.xml';
/** The remote_servers cluster of the two-shard setup. */
export const TWO_SHARDS = 'kaudit_two_shards';

/** Why the ClickHouse tests cannot run here, or undefined when they can. */
export function clickhouseMissing(): string | undefined {
  if (!existsSync(CLICKHOUSE_SERVER))
    return `${CLICKHOUSE_SERVER} not found (apt-get install clickhouse-server)`;
  if (!existsSync(USERS_CONFIG)) return `${USERS_CONFIG} not found`;
  return undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface ServerPorts {
  http: number;
  tcp: number;
}

export interface ClickHouseServerOptions {
  ports?: ServerPorts;
  /** Shards (TCP ports on 127.0.0.1) of the TWO_SHARDS cluster in this server's remote_servers. */
  shards?: readonly number[];
  /** An existing data directory (a restart keeps the data). */
  dir?: string;
}

function configXml(dir: string, ports: ServerPorts, shards: readonly number[]): string {
  const remote =
    shards.length === 0
      ? ''
      : `<remote_servers><${TWO_SHARDS}>${shards
          .map((p) => `<shard><replica><host>127.0.0.1</host><port>${p}</port></replica></shard>`)
          .join('')}</${TWO_SHARDS}></remote_servers>`;
  return `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>${dir}/server.log</log><errorlog>${dir}/error.log</errorlog><console>0</console></logger>
  <http_port>${ports.http}</http_port>
  <tcp_port>${ports.tcp}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>${USERS_CONFIG}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>5368709120</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  ${remote}
</yandex>
`;
}

/** One clickhouse-server process. */
export class ClickHouseServer {
  private child: ChildProcess | undefined;
  private constructor(
    readonly dir: string,
    readonly ports: ServerPorts,
    private readonly ownsDir: boolean,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.ports.http}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  static async start(opts: ClickHouseServerOptions = {}): Promise<ClickHouseServer> {
    const ports = opts.ports ?? { http: await freePort(), tcp: await freePort() };
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'kaudit-clickhouse-'));
    mkdirSync(dir, { recursive: true });
    const server = new ClickHouseServer(dir, ports, opts.dir === undefined);
    writeFileSync(join(dir, 'config.xml'), configXml(dir, ports, opts.shards ?? []));
    for (const d of ['data', 'tmp', 'user_files', 'format_schemas'])
      mkdirSync(join(dir, d), { recursive: true });
    await server.run();
    return server;
  }

  /** Starts the process (again, after stop() or kill()) and waits until it answers. */
  async run(): Promise<void> {
    const child = spawn(CLICKHOUSE_SERVER, [`--config-file=${join(this.dir, 'config.xml')}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    this.child = child;
    let exited = false;
    child.once('exit', () => {
      exited = true;
    });
    for (let i = 0; i < 600; i++) {
      if (exited) break;
      try {
        const r = await fetch(`${this.url}/?query=SELECT%201`);
        if (r.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    let log = '';
    try {
      log = readFileSync(join(this.dir, 'error.log'), 'utf8').slice(-2000);
    } catch {
      // no log written
    }
    child.kill('SIGKILL');
    throw new Error(`clickhouse-server did not start on ${this.url}: ${stderr}${log}`);
  }

  /** SIGKILL, as a crash: nothing flushed. */
  async kill(): Promise<void> {
    await this.signal('SIGKILL');
  }

  async stop(): Promise<void> {
    await this.signal('SIGTERM');
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(sig);
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }

  /** Stops the server and removes its data (when the directory was its own). */
  async destroy(): Promise<void> {
    await this.stop();
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A single node and the two servers of a Distributed setup (the first is also the entry point). */
export interface ClickHouseServers {
  single: ClickHouseServer;
  shards: [ClickHouseServer, ClickHouseServer];
}

export async function startClickHouseServers(): Promise<ClickHouseServers> {
  const a = { http: await freePort(), tcp: await freePort() };
  const b = { http: await freePort(), tcp: await freePort() };
  const shardPorts = [a.tcp, b.tcp];
  const [single, s1, s2] = await Promise.all([
    ClickHouseServer.start(),
    ClickHouseServer.start({ ports: a, shards: shardPorts }),
    ClickHouseServer.start({ ports: b, shards: shardPorts }),
  ]);
  return { single, shards: [s1, s2] };
}

/** A new, empty store on the shared test servers, in a database of its own; close() drops it. */
export async function openClickHouseTestStore(
  urls: { single: string; shards: readonly [string, string] },
  kind: 'single' | 'distributed',
): Promise<{ store: ClickHouseStore; close(): Promise<void> }> {
  const database = `kaudit_test_${randomBytes(6).toString('hex')}`;
  const distributed = kind === 'distributed';
  const opts = {
    url: distributed ? urls.shards[0] : urls.single,
    database,
    username: 'default',
    password: '',
    ...(distributed ? { distributed: TWO_SHARDS } : {}),
  };
  await ClickHouseStore.init(opts, distributed ? [...urls.shards] : []);
  const store = await ClickHouseStore.open(opts);
  return {
    store,
    close: async () => {
      await store.close();
      for (const url of distributed ? urls.shards : [urls.single])
        await fetch(`${url}/`, { method: 'POST', body: `DROP DATABASE IF EXISTS ${database}` });
    },
  };
}
