import type { SearchFilter } from './search-filter.js';

/** What a backend can do; callers branch on these, never on the backend's name. */
export interface StoreCapabilities {
  /** Arbitrary read-only SQL over the `events` view. */
  readonly sql: boolean;
  /** Other processes may read while this one writes (ClickHouse yes, DuckDB no: one process per file). */
  readonly concurrentProcesses: boolean;
  /** Old rows can be deleted by age. */
  readonly retention: boolean;
  /** Writes the store runs side by side; a writer with more in flight only makes them queue. */
  readonly parallelWrites: number;
  /** Batches of this many events (or a multiple) are the cheapest to write. */
  readonly batchEvents: number;
}

/**
 * A batch of prepared events: each entry is one audit.k8s.io/v1 Event as JSON text, already
 * normalised and redacted (see model/prepare.ts). Lines that came through the fast path have not
 * been parsed in JS; the store validates them and reports the ones it rejects.
 */
export interface EventBatch {
  readonly events: readonly Buffer[];
  /** The cluster name every event of the batch belongs to. */
  readonly cluster: string;
}

export interface RejectedEvent {
  /** Index into `EventBatch.events`. */
  readonly index: number;
  readonly reason: string;
  /** The event's bytes, so the caller can dead-letter it without keeping the batch. */
  readonly data: Buffer;
}

export interface WriteResult {
  /** Rows added. */
  readonly stored: number;
  /** Events whose (auditID, stage) was already stored, or repeated within the batch. */
  readonly duplicates: number;
  /** Events that are not valid audit events; the caller dead-letters them. */
  readonly rejected: readonly RejectedEvent[];
}

/**
 * A batch the store has taken in: it holds its own copy of the events (DuckDB: a staging file), so
 * the caller may let go of its own, and the store can write them again after a failure.
 */
export interface StagedBatch {
  /**
   * write() can be called again after a failure. When false (the store counted some events as
   * duplicates of a batch not yet stored, which may still fail), the caller keeps its events and,
   * after a failure, discards this and stages them again.
   */
  readonly selfContained: boolean;
  /**
   * Writes the batch; resolves once it is durable. Never throws for bad events (they come back in
   * `rejected`). After a failure it may be called again; not while a call is running.
   */
  write(): Promise<WriteResult>;
  /** Lets go of a batch that will not be written (again): its copy of the events and all it holds. */
  discard(): Promise<void>;
}

/**
 * A write that must be staged again from the events: the store counted some of them as duplicates
 * of another batch's copies, and those were not stored after all (that batch failed, or rejected
 * its copy). Staged again, they are stored.
 */
export class RestageError extends Error {}

/** A store's write(): stage, write once, and let go of the batch if that failed. */
export async function writeOnce(staged: StagedBatch): Promise<WriteResult> {
  try {
    return await staged.write();
  } catch (err) {
    await staged.discard();
    throw err;
  }
}

export type Row = Record<string, unknown>;

export interface QueryResult {
  readonly columns: readonly string[];
  readonly rows: readonly Row[];
}

export interface StoreStats {
  readonly rows: number;
  readonly bytes: number | null;
  readonly oldest: string | null;
  readonly newest: string | null;
  /**
   * Writes that had to look their events up in the table to de-duplicate them (DuckDB: its key
   * window could not vouch for them); many of these slow writing down.
   */
  readonly tableChecks?: number;
}

export interface Store {
  readonly backend: string;
  /** Where the data lives, for messages: a file path or a URL. */
  readonly location: string;
  readonly capabilities: StoreCapabilities;
  /**
   * Takes the batch in: once this returns the store no longer reads `batch.events`. Throws when it
   * cannot (then nothing is held, and the caller still has its events to offer again).
   */
  stage(batch: EventBatch): StagedBatch;
  /** stage() and one write(). Resolves once the batch is durable; bad events come back in `rejected`. */
  write(batch: EventBatch): Promise<WriteResult>;
  /** Read-only SQL over the public `events` view. Throws UserError for bad or writing SQL. */
  query(sql: string): Promise<QueryResult>;
  search(filter: SearchFilter): Promise<QueryResult>;
  stats(): Promise<StoreStats>;
  /** Deletes rows whose `ts` is older than `days` days; returns how many. */
  deleteOlderThan(days: number): Promise<number>;
  close(): Promise<void>;
}
