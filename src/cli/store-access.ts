import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AGENT_FILE, type AgentLocator } from '../collect/agent.js';
import { UserError } from '../model/errors.js';
import { processAlive } from '../model/process.js';
import { DUCKDB_FILE } from '../store/duckdb/duckdb-store.js';
import { openStore } from '../store/open-store.js';
import { RemoteStore } from '../store/remote-store.js';
import type { Store } from '../store/store.js';

/** The agent that announced itself in `<dir>/agent.json`, if that file names a live process. */
export async function readAgentLocator(dir: string): Promise<AgentLocator | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, AGENT_FILE), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const locator = JSON.parse(text) as AgentLocator;
    if (
      typeof locator.admin !== 'string' ||
      typeof locator.pid !== 'number' ||
      typeof locator.token !== 'string'
    )
      return undefined;
    return locator;
  } catch {
    return undefined;
  }
}

/**
 * The store for read commands (search, query, report). Opens the DuckDB file directly; when a
 * running agent holds it (DuckDB allows one process per file), the same questions go to the
 * agent's local API, which answers from the same store, so the output is the same.
 */
export async function openReadStore(opts: { dataDir: string }): Promise<Store> {
  // Reading must not create an empty store as a side effect of a mistyped --data.
  const file = join(opts.dataDir, DUCKDB_FILE);
  if (!existsSync(file)) {
    throw new UserError('KAUDIT_STORE_MISSING', `no store at ${file}`, {
      hint: 'load events with `kaudit ingest PATH...` or run `kaudit agent`; or point --data (KAUDIT_DATA) at an existing data directory',
    });
  }
  try {
    return await openStore({ dataDir: opts.dataDir });
  } catch (err) {
    if (!(err instanceof UserError) || err.code !== 'KAUDIT_STORE_LOCKED') throw err;
    const locator = await readAgentLocator(opts.dataDir);
    if (locator === undefined) {
      throw new UserError(
        'KAUDIT_STORE_LOCKED',
        `${err.message}, and no kaudit agent announced itself there`,
        {
          hint: `no ${join(opts.dataDir, AGENT_FILE)}: the holder is not an agent; stop it, or use another --data directory`,
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
