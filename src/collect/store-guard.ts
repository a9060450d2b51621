import { statSync } from 'node:fs';
import type { EventBatch, HeldBatch, Store } from '../store/contract.js';

/**
 * Watches the store's file under a running agent: if it is deleted or replaced (another inode at
 * its path, the data directory removed or swapped), every commit fails from then on with an error
 * that says so. The pipeline then acknowledges nothing more (no checkpoint moves, the webhook answers
 * 503) and status shows the error, instead of acknowledging events written to an unlinked file.
 * Stores that are not a file (memory, a server) are passed through unwatched.
 */
export function guardStoreFile(store: Store): { store: Store; problem: () => string | undefined } {
  let identity: { dev: number; ino: number } | undefined;
  try {
    const st = statSync(store.location);
    if (st.isFile()) identity = { dev: st.dev, ino: st.ino };
  } catch {
    // Not a path (memory:, a URL): nothing to watch.
  }
  if (identity === undefined) return { store, problem: () => undefined };
  const first = identity;
  let problem: string | undefined;
  const check = (): void => {
    if (problem !== undefined) throw new Error(problem);
    let what: string | undefined;
    try {
      const st = statSync(store.location);
      if (st.dev !== first.dev || st.ino !== first.ino) what = 'replaced by another file';
    } catch (err) {
      what = `gone (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
    }
    if (what === undefined) return;
    problem = `the store file ${store.location} was ${what} while the agent ran; nothing more is acknowledged: restart the agent`;
    throw new Error(problem);
  };
  const hold = (batch: EventBatch): HeldBatch => {
    check();
    const held = store.hold(batch);
    return {
      commit: async () => {
        check();
        const result = await held.commit();
        // Written, but perhaps to a file no one will open again: not acknowledged.
        check();
        return result;
      },
      discard: () => held.discard(),
    };
  };
  const guarded = new Proxy(store, {
    get(target, key) {
      if (key === 'hold') return hold;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: guarded, problem: () => problem };
}
