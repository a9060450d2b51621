import { isErrorCode } from '../../model/error-codes.js';
import { UserError } from '../../model/errors.js';
import {
  commitOnce,
  type EventBatch,
  type HeldBatch,
  type Row,
  type SqlOptions,
  type SqlResult,
  type Store,
  type StoreCapabilities,
  type StoreInfo,
  type WriteResult,
} from '../contract.js';
import {
  type AggregateQuery,
  type AggregateRow,
  type EventFilter,
  INGEST_CURSOR_COLUMN,
  type ScanQuery,
  type SearchPage,
  type SearchQuery,
} from '../query.js';

/** The store API a running agent serves (server/store-api.ts), under its admin address. */
export const STORE_API = {
  info: '/api/v1/store/info',
  search: '/api/v1/store/search',
  aggregate: '/api/v1/store/aggregate',
  count: '/api/v1/store/count',
  sql: '/api/v1/store/sql',
  write: '/api/v1/store/write',
  /** One page of an ingest-order scan (ScanQuery with `order: 'ingested'`). */
  scanIngested: '/api/v1/store/scan-ingested',
} as const;

/** Rows a page of a remote ingest-order scan holds at most. */
export const REMOTE_SCAN_MAX_ROWS = 10_000;

export interface RemoteInfo extends StoreInfo {
  capabilities: StoreCapabilities;
}

/** A rejected event on the wire: its bytes in base64 (they need not be UTF-8). */
export interface WireRejected {
  index: number;
  reason: string;
  data: string;
}

/**
 * The whole Store contract over the agent's local API: while the agent holds the embedded store's
 * file (one process per file), every command reads, and `kaudit ingest` writes, through it with the same
 * answers as on the file.
 */
export class RemoteStore implements Store {
  readonly backend: string;
  readonly location: string;
  readonly capabilities: StoreCapabilities;
  readonly sql?: (text: string, options: SqlOptions) => Promise<SqlResult>;

  private constructor(
    readonly baseUrl: string,
    private readonly token: string,
    info: RemoteInfo,
  ) {
    this.backend = info.backend;
    this.location = info.location;
    this.capabilities = info.capabilities;
    if (info.capabilities.sql)
      this.sql = (text, options) => this.request<SqlResult>(STORE_API.sql, { text, ...options });
  }

  /** Connects to the agent at `baseUrl` with the token from its agent.json; throws if it does not answer. */
  static async connect(baseUrl: string, token: string, timeoutMs = 3000): Promise<RemoteStore> {
    const info = (await request(baseUrl, token, STORE_API.info, undefined, timeoutMs)) as RemoteInfo;
    if (
      typeof info.backend !== 'string' ||
      typeof info.location !== 'string' ||
      info.capabilities === undefined
    )
      throw new Error(`${baseUrl} is not a kaudit agent`);
    return new RemoteStore(baseUrl, token, info);
  }

  private request<T>(path: string, body?: unknown, raw?: { body: Buffer; query: string }): Promise<T> {
    return request(this.baseUrl, this.token, path, body, 300_000, raw) as Promise<T>;
  }

  hold(batch: EventBatch): HeldBatch {
    // Its own copy, joined once: a line per event (prepared events hold no raw newline).
    const body = Buffer.concat(batch.events.flatMap((e) => [e, Buffer.from('\n')]));
    const query = `?cluster=${encodeURIComponent(batch.cluster)}`;
    return {
      commit: async () => {
        const r = await this.request<{
          stored: number;
          duplicates: number;
          duplicateIndexes: number[];
          rejected: WireRejected[];
        }>(STORE_API.write, undefined, { body, query });
        return {
          ...r,
          rejected: r.rejected.map((x) => ({
            index: x.index,
            reason: x.reason,
            data: Buffer.from(x.data, 'base64'),
          })),
        };
      },
      discard: async () => {},
    };
  }

  write(batch: EventBatch): Promise<WriteResult> {
    return commitOnce(this.hold(batch));
  }

  search(query: SearchQuery): Promise<SearchPage> {
    return this.request(STORE_API.search, query);
  }

  async *scan(query: ScanQuery): AsyncIterable<Row[]> {
    if (query.order === 'ingested') {
      // Page by page, each a request that resumes after the last row of the previous one.
      const pageRows = Math.min(query.pageRows ?? REMOTE_SCAN_MAX_ROWS, REMOTE_SCAN_MAX_ROWS);
      let after = query.filter.ingestedAfter;
      for (;;) {
        const page = await this.request<{ rows: Row[] }>(STORE_API.scanIngested, {
          ...query,
          pageRows,
          filter: { ...query.filter, ...(after === undefined ? {} : { ingestedAfter: after }) },
        });
        if (page.rows.length > 0) yield page.rows;
        const last = page.rows.at(-1)?.[INGEST_CURSOR_COLUMN];
        if (page.rows.length < pageRows || typeof last !== 'string') return;
        after = last;
      }
    }
    let cursor: string | undefined;
    for (;;) {
      const page = await this.search({
        filter: query.filter,
        columns: query.columns,
        sort: 'time_asc',
        limit: query.pageRows ?? 10_000,
        ...(cursor === undefined ? {} : { cursor }),
      });
      if (page.rows.length > 0) yield page.rows;
      if (page.next === undefined) return;
      cursor = page.next;
    }
  }

  aggregate(query: AggregateQuery): Promise<AggregateRow[]> {
    return this.request(STORE_API.aggregate, query);
  }

  async count(filter: EventFilter): Promise<number> {
    return (await this.request<{ count: number }>(STORE_API.count, filter)).count;
  }

  info(): Promise<StoreInfo> {
    return this.request(STORE_API.info);
  }

  async deleteOlderThan(_days: number): Promise<number> {
    throw new UserError(
      'KAUDIT_STORE_READ_ONLY',
      `retention of ${this.location} is applied by the running agent`,
    );
  }

  async close(): Promise<void> {}
}

async function request(
  baseUrl: string,
  token: string,
  path: string,
  body?: unknown,
  timeoutMs = 300_000,
  raw?: { body: Buffer; query: string },
): Promise<unknown> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  const init: RequestInit = { signal: AbortSignal.timeout(timeoutMs), headers };
  let url = new URL(path, baseUrl);
  if (raw !== undefined) {
    init.method = 'POST';
    headers['content-type'] = 'application/x-ndjson';
    init.body = raw.body;
    url = new URL(`${path}${raw.query}`, baseUrl);
  } else if (body !== undefined) {
    init.method = 'POST';
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`agent at ${baseUrl} answered ${res.status} with a body that is not JSON`);
  }
  if (!res.ok) {
    const e = (parsed as { error?: { code?: string; message?: string; hint?: string } }).error;
    const message = e?.message ?? `HTTP ${res.status}`;
    if (typeof e?.code === 'string' && e.code !== 'KAUDIT_INTERNAL') {
      // An agent of another version may answer a code this one does not know: keep it in the text.
      const code = isErrorCode(e.code) ? e.code : 'KAUDIT_API_ERROR';
      const text = code === e.code ? message : `${e.code}: ${message}`;
      throw new UserError(code, text, e.hint === undefined ? {} : { hint: e.hint });
    }
    throw new Error(`agent at ${baseUrl}: ${message}`);
  }
  return parsed;
}
