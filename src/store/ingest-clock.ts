/**
 * The time a store stamps on a commit (ingested_at), in µs, strictly increasing within the process
 * even when the wall clock stands still or steps back: the ingest-order reads (ScanQuery `order:
 * 'ingested'`) rely on each commit coming after the previous one.
 */
export function ingestClock(now: () => number = Date.now): () => number {
  let last = 0;
  return () => {
    last = Math.max(now() * 1000, last + 1);
    return last;
  };
}

/** One clock for the process: every store instance in it stamps strictly increasing times. */
export const nextIngestedUs: () => number = ingestClock();
