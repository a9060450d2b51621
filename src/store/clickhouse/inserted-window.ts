/**
 * The rows one store inserted lately, for one cluster: their keys and their times. The duplicate
 * check (clickhouse-store.ts) counts the stored rows in a batch's time intervals; when that count
 * equals the rows of the window in the same intervals, every stored row there is one of these, and
 * the batch's keys are matched here instead of being read back from the server. Any difference
 * (another writer, a retried insert that did land, a dropped partition, rows that left the window)
 * makes the check read the keys from the server, so the window only ever saves work.
 */

interface Inserted {
  /** The rows' times, ascending. */
  tsUs: Float64Array;
  keys: readonly string[];
}

/** Index of the first element of `a` (ascending) that is >= v. */
function lowerBound(a: Float64Array, v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as number) < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class InsertedWindow {
  private readonly batches: Inserted[] = [];
  /** Every key of the batches, with how many of them hold it (a key is inserted once, normally). */
  private readonly keys = new Map<string, number>();
  private rows = 0;

  /** Keeps about `maxRows` rows (whole batches; the newest batch is always kept). */
  constructor(private readonly maxRows: number) {}

  /** Rows just accepted by the server. */
  add(tsUs: readonly number[], keys: readonly string[]): void {
    if (keys.length === 0) return;
    this.batches.push({ tsUs: Float64Array.from(tsUs).sort(), keys });
    for (const k of keys) this.keys.set(k, (this.keys.get(k) ?? 0) + 1);
    this.rows += keys.length;
    while (this.rows > this.maxRows && this.batches.length > 1) {
      const old = this.batches.shift() as Inserted;
      this.rows -= old.keys.length;
      for (const k of old.keys) {
        const n = (this.keys.get(k) ?? 1) - 1;
        if (n === 0) this.keys.delete(k);
        else this.keys.set(k, n);
      }
    }
  }

  /** Rows of the window whose time is in one of the (disjoint) intervals, ends included. */
  countIn(intervals: readonly (readonly [number, number])[]): number {
    let n = 0;
    for (const b of this.batches)
      for (const [from, to] of intervals) n += lowerBound(b.tsUs, to + 1) - lowerBound(b.tsUs, from);
    return n;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }
}

/**
 * The intervals of a batch's times (µs): sorted, and cut where two consecutive times are more than
 * `gapUs` apart, so that a few old events (a watch completing long after it was received) do not
 * stretch one range over everything stored in between. At most `maxIntervals`: beyond that the
 * widest gaps are kept as cuts.
 */
export function timeIntervals(
  tsUs: ArrayLike<number>,
  gapUs: number,
  maxIntervals: number,
): [number, number][] {
  if (tsUs.length === 0) return [];
  const sorted = Float64Array.from(tsUs).sort();
  const gaps: { at: number; size: number }[] = [];
  for (let i = 1; i < sorted.length; i++) {
    const size = (sorted[i] as number) - (sorted[i - 1] as number);
    if (size > gapUs) gaps.push({ at: i, size });
  }
  const cuts =
    gaps.length < maxIntervals
      ? gaps.map((g) => g.at)
      : gaps
          .sort((a, b) => b.size - a.size)
          .slice(0, maxIntervals - 1)
          .map((g) => g.at)
          .sort((a, b) => a - b);
  const out: [number, number][] = [];
  let start = 0;
  for (const at of [...cuts, sorted.length]) {
    out.push([sorted[start] as number, sorted[at - 1] as number]);
    start = at;
  }
  return out;
}
