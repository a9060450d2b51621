/**
 * The rows one store inserted lately, for one cluster: their keys and their times. The duplicate
 * check (clickhouse-store.ts) counts the stored rows in a batch's time intervals; when that count
 * equals the rows of the window in the same intervals, every stored row there is one of these, and
 * the batch's keys are matched here instead of being read back from the server. Any difference
 * (another writer, a retried insert that did land, a dropped partition, rows that left the window)
 * makes the check read the keys from the server, so the window only ever saves work.
 */
import { STAGES, type Stage } from '../../model/event.js';

interface Inserted {
  /** The rows' times, ascending. */
  tsUs: Float64Array;
  auditIds: readonly string[];
  stages: readonly string[];
}

/**
 * A key's copies are counted per stage in one number, STAGE_BITS bits a stage, so that the window
 * is a map by auditID alone: a Map of (auditID, stage) strings cost a concatenation and a hash of
 * it per row, about 2 us of an ingest's main thread per event.
 */
const STAGE_BITS = 2 ** 12;

function stageUnit(stage: string): number {
  const i = STAGES.indexOf(stage as Stage);
  // Stages are checked before a row is encoded; an unknown one would share the last slot.
  return STAGE_BITS ** (i < 0 ? STAGES.length - 1 : i);
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
  /** Every auditID of the batches, with how many of them hold it per stage (normally 0 or 1). */
  private readonly keys = new Map<string, number>();
  private rows = 0;

  /** Keeps about `maxRows` rows (whole batches; the newest batch is always kept). */
  constructor(private readonly maxRows: number) {}

  /** Rows just accepted by the server: row i is (auditIds[i], stages[i]) at tsUs[i]. */
  add(tsUs: ArrayLike<number>, auditIds: readonly string[], stages: readonly string[]): void {
    if (auditIds.length === 0) return;
    this.batches.push({ tsUs: Float64Array.from(tsUs).sort(), auditIds, stages });
    for (let i = 0; i < auditIds.length; i++) {
      const id = auditIds[i] as string;
      this.keys.set(id, (this.keys.get(id) ?? 0) + stageUnit(stages[i] as string));
    }
    this.rows += auditIds.length;
    while (this.rows > this.maxRows && this.batches.length > 1) {
      const old = this.batches.shift() as Inserted;
      this.rows -= old.auditIds.length;
      for (let i = 0; i < old.auditIds.length; i++) {
        const id = old.auditIds[i] as string;
        const n = (this.keys.get(id) ?? 0) - stageUnit(old.stages[i] as string);
        if (n <= 0) this.keys.delete(id);
        else this.keys.set(id, n);
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

  has(auditId: string, stage: string): boolean {
    const unit = stageUnit(stage);
    return Math.floor((this.keys.get(auditId) ?? 0) / unit) % STAGE_BITS > 0;
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
