import { DuckDBStore } from './duckdb/duckdb-store.js';
import type { Store } from './store.js';

export interface OpenStoreOptions {
  dataDir: string;
  /** Delete rows older than this many days when opening. */
  retentionDays?: number;
  threads?: number;
  /** DuckDB's memory limit (it spills beyond it), e.g. `1GB`; default 768MB. */
  memoryLimit?: string;
  /** Recent (auditID, stage) keys held in memory for de-duplication (see duckdb/key-window.ts). */
  dedupeWindow?: number;
  /** WAL size that triggers a checkpoint, e.g. `128MB`. */
  checkpointThreshold?: string;
  /** Give memory back to the system after each import (see DuckDBStoreOptions.trimMemory). */
  trimMemory?: boolean;
}

/** The embedded default: one DuckDB file under the data directory. */
export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  const { retentionDays: _retention, memoryLimit, ...duckdb } = opts;
  const store = await DuckDBStore.open({ ...duckdb, memoryLimit: memoryLimit ?? '768MB' });
  if (opts.retentionDays !== undefined) await store.deleteOlderThan(opts.retentionDays);
  return store;
}
