/**
 * The backends the store contract suite runs over. A backend joins by adding one factory here:
 * it opens an empty store and says how to close and clean it up.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { createApp } from '../../src/server/app.js';
import { TokenAuth } from '../../src/server/auth.js';
import { listen } from '../../src/server/listen.js';
import { storeApi } from '../../src/server/store-api.js';
import type { Store } from '../../src/store/contract.js';
import { DuckDBStore } from '../../src/store/duckdb/duckdb-store.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { RemoteStore } from '../../src/store/remote/remote-store.js';
import { openClickHouseTestStore } from './clickhouse-server.js';

export interface OpenedBackend {
  store: Store;
  close(): Promise<void>;
}

export const BACKENDS: [string, () => Promise<OpenedBackend>][] = [
  [
    'memory',
    async () => {
      const store = new MemoryStore();
      return { store, close: () => store.close() };
    },
  ],
  [
    'duckdb',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kaudit-contract-'));
      const store = await DuckDBStore.open({ dataDir: join(dir, 'data') });
      return {
        store,
        close: async () => {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  ],
  [
    // What the CLI gets while the agent holds the store: the contract over a real loopback socket.
    'remote',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kaudit-contract-'));
      const inner = await DuckDBStore.open({ dataDir: join(dir, 'data') });
      const token = 'contract-suite-token-0123456789';
      const app = createApp({
        store: inner,
        auth: new TokenAuth().add(token, 'admin'),
        status: async () => ({}),
        health: async () => null,
        metrics: async () => '',
        routes: [{ prefix: '/api/v1/store/', handler: (req) => storeApi(inner, req), level: 'read' }],
        maxBodyBytes: 512 << 20,
      });
      const server = await listen(app, { host: '127.0.0.1', port: 0, tokens: true });
      const store = await RemoteStore.connect(server.url, token);
      return {
        store,
        close: async () => {
          await server.close();
          await inner.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  ],
  // ClickHouse on real servers started by test/clickhouse/global-setup.ts: a single node, and a
  // Distributed table over two shards. Absent when clickhouse-server is not installed.
  ...(() => {
    const urls = inject('clickhouse');
    if (urls === null || urls === undefined) return [];
    return [
      ['clickhouse', () => openClickHouseTestStore(urls, 'single')],
      ['clickhouse-distributed', () => openClickHouseTestStore(urls, 'distributed')],
    ] as [string, () => Promise<OpenedBackend>][];
  })(),
];
