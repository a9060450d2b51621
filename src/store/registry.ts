/**
 * Opens a store from what the user names: `memory:`, `duckdb:DIR`, a plain directory (the
 * embedded default), `clickhouse://user@host:8123/db` or the agent config's `store:` section. The only place besides the backends' folders that knows them; callers get a
 * Store and its capabilities.
 */
import { join } from 'node:path';
import { UserError } from '../model/errors.js';
import { processAlive } from '../model/process.js';
import type { Store } from './contract.js';
import { DuckDBStore } from './duckdb/duckdb-store.js';
import { MemoryStore } from './memory/memory-store.js';
import { AGENT_FILE, readAgentLocator } from './remote/locator.js';
import { RemoteStore } from './remote/remote-store.js';

/** The agent config's `store:` section (collect/agent-config.ts) for a ClickHouse store. */
export interface StoreSection {
  type: 'clickhouse';
  url: string;
  database?: string | undefined;
  username?: string | undefined;
  password_file?: string | undefined;
  table?: string | undefined;
  distributed?: string | undefined;
}

/** `--store` of the command being run (cli sets it); it takes the place of the --data directory's store. */
let selectedStore: string | undefined;
export function selectStore(spec: string | undefined): void {
  selectedStore = spec;
}

/** The store a command names: `--store`, else KAUDIT_STORE, else the data directory. */
function chosen(dataDir: string): string {
  return selectedStore ?? (process.env.KAUDIT_STORE || undefined) ?? dataDir;
}

// Loaded only when asked for: the ClickHouse client adds to every command's start otherwise.
async function openClickHouse(
  spec: string | StoreSection,
  retentionDays: number | undefined,
): Promise<Store> {
  const { ClickHouseStore } = await import('./clickhouse/clickhouse-store.js');
  const { clickhouseOptionsFromConfig, clickhouseOptionsFromUrl } = await import('./clickhouse/store-url.js');
  const opts = typeof spec === 'string' ? clickhouseOptionsFromUrl(spec) : clickhouseOptionsFromConfig(spec);
  const store = await ClickHouseStore.open(opts);
  if (retentionDays !== undefined) await store.deleteOlderThan(retentionDays);
  return store;
}

export interface OpenStoreOptions {
  /** Open without writing anything (read commands): a missing store is an error, not created. */
  readOnly?: boolean;
  /** Delete rows older than this many days when opening. */
  retentionDays?: number;
  threads?: number;
  /** DuckDB's memory limit (it spills beyond it), e.g. `1GB`; default 768MB. */
  memoryLimit?: string;
  /** Recent keys held in memory for de-duplication. */
  dedupeWindow?: number;
  checkpointThreshold?: string;
  trimMemory?: boolean;
}

function dirOf(spec: string): string {
  return spec.startsWith('duckdb:') ? spec.slice('duckdb:'.length) : spec;
}

export async function openStore(spec: string | StoreSection, opts: OpenStoreOptions = {}): Promise<Store> {
  if (typeof spec !== 'string' || /^clickhouses?:\/\//.test(spec))
    return openClickHouse(spec, opts.retentionDays);
  if (spec === 'memory:') return new MemoryStore();
  const dataDir = dirOf(spec);
  // A read-only open writes nothing (read commands work on a full disk); a missing store is a UserError.
  const { retentionDays, memoryLimit, ...duckdb } = opts;
  const store = await DuckDBStore.open({ dataDir, ...duckdb, memoryLimit: memoryLimit ?? '768MB' });
  if (retentionDays !== undefined) await store.deleteOlderThan(retentionDays);
  return store;
}

/**
 * The store as a command sees it: the DuckDB file directly or, when a running agent holds it
 * (DuckDB allows one process per file), the same store through the agent's local API, which gives
 * the same answers and takes writes (`kaudit ingest` while the agent runs).
 */
export async function openStoreOrAgent(dataDir: string, opts: OpenStoreOptions = {}): Promise<Store> {
  const spec = chosen(dataDir);
  // A ClickHouse store takes any number of processes: no agent stands in front of it.
  if (spec !== dataDir) return openStore(spec, opts);
  try {
    return await openStore(dataDir, opts);
  } catch (err) {
    if (!(err instanceof UserError) || err.code !== 'KAUDIT_STORE_LOCKED') throw err;
    const locator = await readAgentLocator(dataDir);
    if (locator === undefined) {
      throw new UserError(
        'KAUDIT_STORE_LOCKED',
        `${err.message}, and no kaudit agent announced itself there`,
        {
          hint: `no ${join(dataDir, AGENT_FILE)}: the holder is not an agent; stop it, or use another --data directory`,
          cause: err,
        },
      );
    }
    try {
      return await RemoteStore.connect(locator.admin, locator.token);
    } catch (cause) {
      const why = cause instanceof Error ? cause.message : String(cause);
      throw new UserError(
        'KAUDIT_STORE_LOCKED',
        `${err.message}; the agent (PID ${locator.pid}) that holds it does not answer at ${locator.admin}: ${why}`,
        {
          hint: processAlive(locator.pid)
            ? 'the agent may be starting or overloaded; try again, or check `kaudit status`'
            : `PID ${locator.pid} is not running: another process holds the file`,
          cause,
        },
      );
    }
  }
}

/** For read commands: never creates a store. */
export function openReadStore(dataDir: string): Promise<Store> {
  return openStoreOrAgent(dataDir, { readOnly: true });
}
