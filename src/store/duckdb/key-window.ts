/**
 * The (auditID, stage) keys this store instance has written recently, so most batches can be
 * de-duplicated in memory instead of by an anti-join against the table.
 *
 * A duplicate is the same event again, so it carries the same stageTimestamp (the time used here:
 * events arrive in nearly that order, unlike requestReceivedTimestamp, which an hour-long watch's
 * ResponseComplete carries from an hour before). A key whose
 * time is after `floorMs` can only collide with a key written by this instance and still held here:
 * `floorMs` starts at the newest row stored before the instance opened and rises to the newest time
 * of every batch let go to bound memory. Keys at or before the floor must be checked in the table.
 *
 * Batches are let go oldest first and only once settled, so the keys of a batch still being imported
 * (which the table cannot show yet) are always here.
 */
export interface WindowBatch {
  /** Keys added for this batch, by staged row; null where the row had no key or was given back. */
  readonly keys: (string | null)[];
  maxTsMs: number;
  settled: boolean;
}

export enum Claim {
  Duplicate,
  Covered,
  CheckTable,
}

export class KeyWindow {
  private readonly keys = new Set<string>();
  private readonly batches: WindowBatch[] = [];
  private floor: number;

  constructor(
    private readonly capacity: number,
    floorMs: number,
  ) {
    this.floor = floorMs;
  }

  get floorMs(): number {
    return this.floor;
  }

  get size(): number {
    return this.keys.size;
  }

  begin(): WindowBatch {
    const batch: WindowBatch = { keys: [], maxTsMs: Number.NEGATIVE_INFINITY, settled: false };
    this.batches.push(batch);
    return batch;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  /**
   * Records a staged row's key in one Set operation: Duplicate when the key is held already, else
   * whether the window vouches for the row (a row without a key never is vouched for).
   */
  claim(batch: WindowBatch, key: string | null, tsMs: number): Claim {
    if (key === null) {
      batch.keys.push(null);
      return Claim.CheckTable;
    }
    const before = this.keys.size;
    this.keys.add(key);
    if (this.keys.size === before) return Claim.Duplicate;
    batch.keys.push(key);
    if (tsMs > batch.maxTsMs) batch.maxTsMs = tsMs;
    return tsMs > this.floor ? Claim.Covered : Claim.CheckTable;
  }

  /** A staged row that was not stored after all (rejected): its key may come again, validly. */
  giveBack(batch: WindowBatch, row: number): void {
    const key = batch.keys[row];
    if (key === undefined || key === null) return;
    this.keys.delete(key);
    batch.keys[row] = null;
  }

  /** The batch failed: none of its rows were stored, so a retry must not count them as duplicates. */
  abandon(batch: WindowBatch): void {
    for (const key of batch.keys) if (key !== null) this.keys.delete(key);
    const i = this.batches.indexOf(batch);
    if (i >= 0) this.batches.splice(i, 1);
    this.trim();
  }

  /** The batch's rows are in the table (committed): it may be let go once the window is full. */
  settle(batch: WindowBatch): void {
    batch.settled = true;
    this.trim();
  }

  private trim(): void {
    while (this.keys.size > this.capacity) {
      const head = this.batches[0];
      if (head === undefined || !head.settled) return;
      this.batches.shift();
      for (const key of head.keys) if (key !== null) this.keys.delete(key);
      if (head.maxTsMs > this.floor) this.floor = head.maxTsMs;
    }
  }
}
