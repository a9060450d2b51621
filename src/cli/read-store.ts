import type { Store } from '../store/contract.js';
import { openReadStore } from '../store/registry.js';

/** Opens the store for reading (directly, or through the running agent), runs `fn`, closes it. */
export async function withReadStore<T>(dataDir: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openReadStore(dataDir);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
