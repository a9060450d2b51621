import type { WriteResult } from '../contract.js';

/**
 * A batch written to a staging file, DuckDB's own write protocol behind the contract's HeldBatch
 * (store.ts hold() wraps it): write() may be called again after a failure.
 */
export interface StagedBatch {
  /**
   * write() can be called again after a failure. When false (some events were counted as duplicates
   * of a batch not yet stored, which may still fail), hold() keeps the events and, after a
   * RestageError, stages them again itself.
   */
  readonly selfContained: boolean;
  write(): Promise<WriteResult>;
  discard(): Promise<void>;
}

/**
 * A write that must be staged again from the events: the store counted some of them as duplicates
 * of another batch's copies, and those were not stored after all. Never leaves this folder.
 */
export class RestageError extends Error {}
