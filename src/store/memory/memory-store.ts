import { deriveFields } from '../../model/derive.js';
import type { AuditEvent } from '../../model/event.js';
import { STAGES } from '../../model/event.js';
import {
  commitOnce,
  type EventBatch,
  type HeldBatch,
  type RejectedEvent,
  type Row,
  type Store,
  type StoreInfo,
  type WriteResult,
} from '../contract.js';
import { nextIngestedUs } from '../ingest-clock.js';
import {
  type AggregateQuery,
  type AggregateRow,
  compareIngestPositions,
  EVENT_COLUMNS,
  type EventColumn,
  type EventFilter,
  encodeIngestCursor,
  INGEST_CURSOR_COLUMN,
  type ScanQuery,
  SEARCH_DEFAULT_COLUMNS,
  type SearchPage,
  type SearchQuery,
} from '../query.js';
import {
  aggregateRows,
  columnValue,
  compareKeys,
  ingestPosition,
  type MemoryRow,
  matchesFilter,
  sortKey,
} from './evaluate.js';

/** Why an event is not stored, or undefined: the same rules the other backends apply. */
export function rejectReason(text: string): string | undefined {
  let e: Partial<AuditEvent>;
  try {
    e = JSON.parse(text) as Partial<AuditEvent>;
  } catch {
    return 'not JSON';
  }
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return 'not JSON';
  if (typeof e.auditID !== 'string' || e.auditID === '') return 'not an audit Event: missing field auditID';
  if (typeof e.stage !== 'string' || !(STAGES as readonly string[]).includes(e.stage))
    return 'not an audit Event: missing or unknown stage';
  if (typeof e.verb !== 'string') return 'not an audit Event: missing field verb';
  const received = e.requestReceivedTimestamp ?? (e as { timestamp?: unknown }).timestamp;
  if (typeof received !== 'string' || Number.isNaN(Date.parse(received)))
    return 'not an audit Event: field requestReceivedTimestamp missing or not a timestamp';
  return undefined;
}

function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

function decodeCursor(cursor: string): (string | number)[] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v)) return v as (string | number)[];
  } catch {
    // answered below
  }
  throw new Error('bad cursor');
}

/**
 * A Store in memory: the reference of the read side (store/memory/evaluate.ts), idempotent on
 * (cluster, auditID, stage) like the real ones, with knobs to be slow or to fail, for pipeline tests
 * (as OpenTelemetry ships InMemorySpanExporter).
 */
export class MemoryStore implements Store {
  readonly backend = 'memory';
  readonly location = 'memory:';
  readonly capabilities = { sql: false, parallelWrites: 1, batchEvents: 10_000, settleMs: 0 };
  /** `${cluster}/${auditID}/${stage}` -> row. */
  readonly rows = new Map<string, MemoryRow>();
  writes = 0;
  /** Events per commit, in order. */
  readonly batchSizes: number[] = [];
  /** Each commit waits this long first... */
  delayMs = 0;
  /** ...or, while this has entries, as long as the next one says. */
  delaysMs: number[] = [];
  /** Commits fail while this is set... */
  failWith: Error | undefined;
  /** ...or, while this has entries, as the next one says (undefined: that commit succeeds). */
  failures: (Error | undefined)[] = [];
  /** A commit fails after storing its rows (the commit reached the store, the answer was lost). */
  failAfterCommit: Error | undefined;
  /** Batches taken in by hold(). */
  holds = 0;
  /** hold() itself fails while this is set (nothing is taken in). */
  holdFailWith: Error | undefined;
  /** Held batches not yet committed or discarded. */
  held = 0;

  hold(batch: EventBatch): HeldBatch {
    if (this.holdFailWith !== undefined) throw this.holdFailWith;
    this.holds++;
    // Its own copy, as a real store keeps: the caller may reuse or drop its buffers.
    const events = batch.events.map((e) => Buffer.from(e));
    const cluster = batch.cluster;
    let state: 'ready' | 'writing' | 'done' = 'ready';
    this.held++;
    return {
      commit: async () => {
        if (state !== 'ready') throw new Error(`MemoryStore: commit() of a batch that is ${state}`);
        state = 'writing';
        try {
          const result = await this.commitEvents(events, cluster);
          state = 'done';
          this.held--;
          return result;
        } catch (err) {
          state = 'ready';
          throw err;
        }
      },
      discard: async () => {
        if (state === 'writing') throw new Error('MemoryStore: discard() while the batch is committed');
        if (state === 'ready') {
          state = 'done';
          this.held--;
        }
      },
    };
  }

  write(batch: EventBatch): Promise<WriteResult> {
    return commitOnce(this.hold(batch));
  }

  private async commitEvents(events: readonly Buffer[], cluster: string): Promise<WriteResult> {
    this.writes++;
    this.batchSizes.push(events.length);
    const delay = this.delaysMs.shift() ?? this.delayMs;
    // Taken in commit order, before the wait: the n-th commit started is the one that fails.
    const failure = this.failures.length > 0 ? this.failures.shift() : undefined;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if ((failure ?? this.failWith) !== undefined) throw failure ?? this.failWith;
    let stored = 0;
    const duplicateIndexes: number[] = [];
    const rejected: RejectedEvent[] = [];
    const ingestedUs = nextIngestedUs();
    const ingestedAt = new Date(Math.floor(ingestedUs / 1000)).toISOString();
    events.forEach((buf, index) => {
      const text = buf.toString('utf8');
      const reason = rejectReason(text);
      if (reason !== undefined) {
        rejected.push({ index, reason, data: buf });
        return;
      }
      const e = JSON.parse(text) as AuditEvent;
      const key = `${cluster}/${e.auditID}/${e.stage}`;
      if (this.rows.has(key)) duplicateIndexes.push(index);
      else {
        this.rows.set(key, {
          ...deriveFields(e, cluster),
          ingested_at: ingestedAt,
          ingested_us: ingestedUs,
          raw: text,
        });
        stored++;
      }
    });
    if (this.failAfterCommit !== undefined) {
      const err = this.failAfterCommit;
      this.failAfterCommit = undefined;
      throw err;
    }
    return { stored, duplicates: duplicateIndexes.length, duplicateIndexes, rejected };
  }

  private matching(filter: EventFilter): MemoryRow[] {
    return [...this.rows.values()].filter((r) => matchesFilter(r, filter));
  }

  async search(q: SearchQuery): Promise<SearchPage> {
    const sort = q.sort ?? 'time';
    let rows = this.matching(q.filter)
      .map((r) => ({ r, key: sortKey(r, sort) }))
      .sort((a, b) => compareKeys(a.key, b.key));
    if (q.cursor !== undefined) {
      const after = decodeCursor(q.cursor);
      rows = rows.filter((x) => compareKeys(x.key, after) > 0);
    }
    const limit = Math.max(0, Math.floor(q.limit));
    const page = rows.slice(0, limit);
    const columns = q.columns ?? SEARCH_DEFAULT_COLUMNS;
    const out: SearchPage = { rows: page.map((x) => project(x.r, columns)) };
    const last = page.at(-1);
    if (rows.length > limit && last !== undefined) out.next = encodeCursor(last.key);
    return out;
  }

  async *scan(q: ScanQuery): AsyncIterable<Row[]> {
    const size = q.pageRows ?? 10_000;
    if (q.order === 'ingested') {
      const rows = this.matching(q.filter)
        .map((r) => ({ r, at: ingestPosition(r) }))
        .sort((a, b) => compareIngestPositions(a.at, b.at));
      for (let i = 0; i < rows.length; i += size)
        yield rows
          .slice(i, i + size)
          .map((x) => ({ ...project(x.r, q.columns), [INGEST_CURSOR_COLUMN]: encodeIngestCursor(x.at) }));
      return;
    }
    const rows = this.matching(q.filter).sort((a, b) =>
      compareKeys(sortKey(a, 'time_asc'), sortKey(b, 'time_asc')),
    );
    for (let i = 0; i < rows.length; i += size)
      yield rows.slice(i, i + size).map((r) => project(r, q.columns));
  }

  async aggregate(q: AggregateQuery): Promise<AggregateRow[]> {
    return aggregateRows(this.matching(q.filter), q);
  }

  async count(filter: EventFilter): Promise<number> {
    return this.matching(filter).length;
  }

  async info(): Promise<StoreInfo> {
    const all = [...this.rows.values()];
    const range = (rows: MemoryRow[]) => {
      const ts = rows.map((r) => Date.parse(r.ts)).sort((a, b) => a - b);
      return {
        oldest: ts.length === 0 ? null : new Date(ts[0] as number).toISOString(),
        newest: ts.length === 0 ? null : new Date(ts.at(-1) as number).toISOString(),
      };
    };
    const clusters = [...new Set(all.map((r) => r.cluster))].sort().map((cluster) => {
      const rows = all.filter((r) => r.cluster === cluster);
      return { cluster, rows: rows.length, ...range(rows) };
    });
    return {
      backend: this.backend,
      location: this.location,
      schemaVersion: 1,
      rows: all.length,
      bytes: null,
      ...range(all),
      clusters,
      details: {},
    };
  }

  async deleteOlderThan(days: number): Promise<number> {
    const cut = Date.now() - days * 86_400_000;
    let n = 0;
    for (const [k, r] of this.rows)
      if (Date.parse(r.ts) < cut) {
        this.rows.delete(k);
        n++;
      }
    return n;
  }

  async close(): Promise<void> {}
}

/** One result row: the columns asked for, in the one format every backend returns. */
export function project(r: MemoryRow, columns: readonly EventColumn[]): Row {
  const out: Row = {};
  for (const c of columns) {
    if (!(EVENT_COLUMNS as readonly string[]).includes(c)) continue;
    const v = columnValue(r, c);
    out[c] = c === 'latency_breakdown' && v !== null && Object.keys(v as object).length === 0 ? null : v;
  }
  return out;
}
