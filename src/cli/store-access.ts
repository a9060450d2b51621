import { openStore } from '../store/open-store.js';
import type { Store } from '../store/store.js';

/**
 * The store for read commands (search, query, report). Opens the DuckDB file directly; when a
 * running agent holds it, the agent's local API is used instead (see collect/ and store/remote-store.ts).
 */
export async function openReadStore(opts: { dataDir: string }): Promise<Store> {
  return openStore({ dataDir: opts.dataDir });
}
