import type { SearchFilter } from '../store/search-filter.js';
import {
  type EventBatch,
  type QueryResult,
  type RejectedEvent,
  type StagedBatch,
  type Store,
  type StoreStats,
  type WriteResult,
  writeOnce,
} from '../store/store.js';

/**
 * A Store in memory, idempotent on (auditID, stage) like the real ones, with knobs to be slow or to
 * fail: the test sink of the pipeline (as OpenTelemetry ships InMemorySpanExporter).
 */
export class MemoryStore implements Store {
  readonly backend = 'memory';
  readonly location = 'memory';
  readonly capabilities = {
    sql: false,
    concurrentProcesses: true,
    retention: false,
    parallelWrites: 1,
    batchEvents: 10_000,
  };
  /** `${auditID}/${stage}` -> event JSON. */
  readonly rows = new Map<string, string>();
  writes = 0;
  /** Events per write, in order. */
  readonly batchSizes: number[] = [];
  /** Each write waits this long first... */
  delayMs = 0;
  /** ...or, while this has entries, as long as the next one says. */
  delaysMs: number[] = [];
  /** Writes fail while this is set... */
  failWith: Error | undefined;
  /** ...or, while this has entries, as the next one says (undefined: that write succeeds). */
  failures: (Error | undefined)[] = [];
  /** Batches taken in by stage(). */
  stages = 0;
  /** What stage() says of the batches it returns (StagedBatch.selfContained). */
  selfContained = true;

  /** Failures of stage() itself while this is set (nothing is taken in). */
  stageFailWith: Error | undefined;
  /** Staged batches not yet written or discarded. */
  held = 0;

  stage(batch: EventBatch): StagedBatch {
    if (this.stageFailWith !== undefined) throw this.stageFailWith;
    this.stages++;
    // Its own copy, as a real store keeps: the caller may reuse or drop its buffers.
    const events = batch.events.map((e) => Buffer.from(e));
    let state: 'ready' | 'writing' | 'done' = 'ready';
    this.held++;
    const finish = () => {
      state = 'done';
      this.held--;
    };
    return {
      selfContained: this.selfContained,
      write: async () => {
        if (state !== 'ready') throw new Error(`MemoryStore: write() of a batch that is ${state}`);
        state = 'writing';
        try {
          const result = await this.writeEvents(events);
          finish();
          return result;
        } catch (err) {
          state = 'ready';
          throw err;
        }
      },
      discard: async () => {
        if (state === 'writing') throw new Error('MemoryStore: discard() while the batch is written');
        if (state === 'ready') finish();
      },
    };
  }

  async write(batch: EventBatch): Promise<WriteResult> {
    return writeOnce(this.stage(batch));
  }

  private async writeEvents(events: readonly Buffer[]): Promise<WriteResult> {
    this.writes++;
    this.batchSizes.push(events.length);
    const delay = this.delaysMs.shift() ?? this.delayMs;
    // Taken in write order, before the wait: the n-th write started is the one that fails.
    const failure = this.failures.length > 0 ? this.failures.shift() : undefined;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if ((failure ?? this.failWith) !== undefined) throw failure ?? this.failWith;
    let stored = 0;
    let duplicates = 0;
    const rejected: RejectedEvent[] = [];
    events.forEach((buf, index) => {
      let e: { auditID?: unknown; stage?: unknown };
      try {
        e = JSON.parse(buf.toString('utf8')) as typeof e;
      } catch {
        rejected.push({ index, reason: 'not JSON', data: buf });
        return;
      }
      if (typeof e.auditID !== 'string' || typeof e.stage !== 'string') {
        rejected.push({ index, reason: 'no auditID or stage', data: buf });
        return;
      }
      const key = `${e.auditID}/${e.stage}`;
      if (this.rows.has(key)) duplicates++;
      else {
        this.rows.set(key, buf.toString('utf8'));
        stored++;
      }
    });
    return { stored, duplicates, rejected };
  }

  async query(_sql: string): Promise<QueryResult> {
    throw new Error('MemoryStore has no SQL');
  }

  async search(filter: SearchFilter): Promise<QueryResult> {
    const rows = [...this.rows.values()].slice(0, filter.limit).map((json) => ({ json }));
    return { columns: ['json'], rows };
  }

  async stats(): Promise<StoreStats> {
    return { rows: this.rows.size, bytes: null, oldest: null, newest: null };
  }

  async deleteOlderThan(_days: number): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {}
}
