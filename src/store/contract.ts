/**
 * The Store contract every backend implements (store/<backend>/), and all that callers may know of
 * a backend: how it stages, de-duplicates or locks stays inside its folder. Writers hand over
 * batches of prepared events (EventWriter); readers ask portable questions (EventReader, described
 * in query.ts) that each backend compiles.
 */
import type {
  AggregateQuery,
  AggregateRow,
  AggregateSetsQuery,
  EventFilter,
  ScanQuery,
  SearchPage,
  SearchQuery,
} from './query.js';

/**
 * A batch of prepared events: each entry is one audit.k8s.io/v1 Event as JSON text, already
 * normalised and redacted (model/prepare.ts). Lines that came through the fast path have not been
 * parsed in JS; the store validates them and reports the ones it rejects.
 */
export interface EventBatch {
  readonly events: readonly Buffer[];
  /** The cluster every event of the batch belongs to; part of each event's identity. */
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
  /** Events whose (cluster, auditID, stage) was stored already, or repeated within the batch. */
  readonly duplicates: number;
  /** Indexes of those duplicates, so consumers after the store see each event once. */
  readonly duplicateIndexes: readonly number[];
  /** Events that are not valid audit events; the caller dead-letters them. */
  readonly rejected: readonly RejectedEvent[];
}

/**
 * A batch the store has taken in: it keeps its own copy of the events, so the caller lets go of
 * its own at once, and commit() can be called again after a failure.
 */
export interface HeldBatch {
  /**
   * Stores the batch; resolves once it is durable. Never throws for bad events (they come back in
   * `rejected`). After a failure it may be called again (not while a call runs): an event is
   * stored once, whatever happened to an earlier attempt.
   */
  commit(): Promise<WriteResult>;
  /** Lets go of a batch that will not be committed (again). */
  discard(): Promise<void>;
}

export interface EventWriter {
  /**
   * Takes the batch in; throws when it cannot (then nothing is held and the caller still has its
   * events). Events are identified by (cluster, auditID, stage): storing one twice adds nothing.
   */
  hold(batch: EventBatch): HeldBatch;
  /** hold() and one commit(); the batch is discarded if that fails. */
  write(batch: EventBatch): Promise<WriteResult>;
}

/** What a store holds, for `kaudit store info`, `kaudit status` and the API. */
export interface StoreInfo {
  readonly backend: string;
  readonly location: string;
  /** The layout of the stored data. */
  readonly schemaVersion: number;
  readonly rows: number;
  readonly bytes: number | null;
  /** RFC3339 UTC of the oldest and newest `ts`; null when empty. */
  readonly oldest: string | null;
  readonly newest: string | null;
  readonly clusters: readonly ClusterInfo[];
  /** Backend-specific counters, shown as they are (e.g. writes that read the table to de-duplicate). */
  readonly details: Readonly<Record<string, number | string>>;
}

export interface ClusterInfo {
  readonly cluster: string;
  readonly rows: number;
  readonly oldest: string | null;
  readonly newest: string | null;
}

export type Row = Record<string, unknown>;

export interface EventReader {
  search(query: SearchQuery): Promise<SearchPage>;
  /** Every matching row, oldest first, a page at a time, in bounded memory. */
  scan(query: ScanQuery): AsyncIterable<Row[]>;
  aggregate(query: AggregateQuery): Promise<AggregateRow[]>;
  /**
   * Optional: for each set, what aggregate() gives for it, computed in one pass. Callers use
   * store/aggregate-sets.ts, which asks aggregate() per set where a backend has no such pass.
   */
  aggregateSets?(query: AggregateSetsQuery): Promise<AggregateRow[][]>;
  count(filter: EventFilter): Promise<number>;
  info(): Promise<StoreInfo>;
}

export interface SqlOptions {
  /** At most this many rows; the result says when more matched. */
  readonly maxRows: number;
  /** Interrupted after this long. */
  readonly timeoutMs: number;
}

export interface SqlResult {
  readonly columns: readonly string[];
  readonly rows: readonly Row[];
  /** More rows matched than maxRows. */
  readonly truncated: boolean;
}

/** What a backend can do; callers branch on these, never on the backend's name. */
export interface StoreCapabilities {
  /**
   * `sql()` runs user SQL over the `events` view in a sandbox: it can never write, read host files
   * or load extensions, whatever its text says.
   */
  readonly sql: boolean;
  /** Writes the store runs side by side; more in flight only queue. */
  readonly parallelWrites: number;
  /** Batches of this many events (or a multiple) are the cheapest to write. */
  readonly batchEvents: number;
  /**
   * How long after its ingest stamp a committed row is surely visible to reads: 0 where commits
   * become visible in stamp order. A reader following the store in ingest order (a forwarder) stays
   * this far behind the newest rows, so that an earlier-stamped commit cannot appear behind it.
   */
  readonly settleMs: number;
}

export interface Store extends EventWriter, EventReader {
  readonly backend: string;
  /** Where the data lives, for messages: a path or a URL, never with a password. */
  readonly location: string;
  readonly capabilities: StoreCapabilities;
  /** Present only when capabilities.sql; bad SQL is a UserError. */
  sql?(text: string, options: SqlOptions): Promise<SqlResult>;
  /** Deletes rows whose `ts` is older than `days` days; returns how many. */
  deleteOlderThan(days: number): Promise<number>;
  close(): Promise<void>;
}

/** A store's write(): hold, commit once, and let go of the batch if that failed. */
export async function commitOnce(held: HeldBatch): Promise<WriteResult> {
  try {
    return await held.commit();
  } catch (err) {
    await held.discard();
    throw err;
  }
}
