// A throwaway clickhouse-server for the benchmark: loopback ports, data in a temp dir, stopped and
// removed at the end (as test/helpers/clickhouse-server.ts does for the tests).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BINARY = process.env.KAUDIT_CLICKHOUSE_SERVER ?? '/usr/sbin/clickhouse-server';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), 'kaudit-bench-clickhouse-'));
  const http = await freePort();
  const tcp = await freePort();
  for (const d of ['data', 'tmp', 'user_files', 'format_schemas']) mkdirSync(join(dir, d));
  writeFileSync(
    join(dir, 'config.xml'),
    `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>${dir}/server.log</log><errorlog>${dir}/error.log</errorlog><console>0</console></logger>
  <http_port>${http}</http_port><tcp_port>${tcp}</tcp_port><listen_host>127.0.0.1</listen_host>
  <path>${dir}/data/</path><tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path><format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>/etc/clickhouse-server/users.xml</users_config>
  <default_profile>default</default_profile><default_database>default</default_database>
  <mark_cache_size>5368709120</mark_cache_size>
</yandex>
`,
  );
  const child = spawn(BINARY, [`--config-file=${join(dir, 'config.xml')}`], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${http}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/?query=SELECT%201`)).ok) break;
    } catch {
      // starting
    }
    if (i > 300 || child.exitCode !== null) throw new Error(`clickhouse-server did not start (see ${dir})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    pid: child.pid,
    async query(sql, body, settings = {}) {
      const params = new URLSearchParams({ query: sql, ...settings });
      const r = await fetch(`${url}/?${params}`, {
        method: 'POST',
        ...(body === undefined ? {} : { body, duplex: 'half' }),
      });
      const text = await r.text();
      if (!r.ok) throw new Error(text);
      return text;
    },
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
