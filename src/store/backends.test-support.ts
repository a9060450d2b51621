/**
 * The backends the store contract suite runs over. A backend joins by adding one factory here:
 * it opens an empty store and says how to close and clean it up.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Store } from './contract.js';
import { DuckDBStore } from './duckdb/duckdb-store.js';
import { MemoryStore } from './memory/memory-store.js';

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
];
