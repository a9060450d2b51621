import { UserError } from '../model/errors.js';
import type { SearchFilter } from './search-filter.js';
import type {
  EventBatch,
  QueryResult,
  Row,
  StagedBatch,
  Store,
  StoreCapabilities,
  StoreStats,
  WriteResult,
} from './store.js';

/** Paths of the read API a running agent serves on its admin port. */
export const REMOTE_API = {
  info: '/api/v1/store',
  query: '/api/v1/query',
  search: '/api/v1/search',
  stats: '/api/v1/stats',
} as const;

export interface RemoteStoreInfo {
  backend: string;
  location: string;
  capabilities: StoreCapabilities;
}

/**
 * Values survive the trip as they left the store: bigint and Date are tagged, since the commands
 * that print them format each differently; everything else is plain JSON.
 */
export function encodeValue(v: unknown): unknown {
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (v instanceof Date) return { $date: v.toISOString() };
  if (Array.isArray(v)) return v.map(encodeValue);
  if (v !== null && typeof v === 'object') {
    const withJson = v as { toJSON?: () => unknown };
    if (typeof withJson.toJSON === 'function') return encodeValue(withJson.toJSON());
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = encodeValue(x);
    return out;
  }
  return v;
}

export function decodeValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(decodeValue);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && typeof o.$bigint === 'string') return BigInt(o.$bigint);
    if (keys.length === 1 && typeof o.$date === 'string') return new Date(o.$date);
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) out[k] = decodeValue(x);
    return out;
  }
  return v;
}

export function encodeQueryResult(r: QueryResult): { columns: readonly string[]; rows: unknown[] } {
  return { columns: r.columns, rows: r.rows.map((row) => encodeValue(row)) };
}

function decodeQueryResult(body: unknown): QueryResult {
  const b = body as { columns?: unknown; rows?: unknown };
  if (!Array.isArray(b.columns) || !Array.isArray(b.rows))
    throw new Error('agent answered without columns/rows');
  return { columns: b.columns.map(String), rows: b.rows.map((r) => decodeValue(r) as Row) };
}

/** The error body of the agent's API: a UserError travels as its code, message and hint. */
export interface RemoteError {
  error: string;
  code?: string;
  hint?: string;
}

/**
 * A read-only Store that asks a running agent, which holds the store file open (DuckDB allows one
 * process per file), over its local admin API.
 */
export class RemoteStore implements Store {
  readonly backend: string;
  readonly location: string;
  readonly capabilities: StoreCapabilities;

  private constructor(
    readonly baseUrl: string,
    private readonly token: string,
    info: RemoteStoreInfo,
  ) {
    this.backend = info.backend;
    this.location = info.location;
    // An agent from before these fields existed wrote one batch of 20,000 at a time.
    this.capabilities = {
      ...info.capabilities,
      parallelWrites: info.capabilities.parallelWrites ?? 1,
      batchEvents: info.capabilities.batchEvents ?? 20_000,
    };
  }

  /**
   * Connects to the agent at `baseUrl` (`http://127.0.0.1:5599`) with the token from its
   * agent.json; throws if it does not answer.
   */
  static async connect(baseUrl: string, token: string, timeoutMs = 3000): Promise<RemoteStore> {
    const info = (await request(baseUrl, token, REMOTE_API.info, undefined, timeoutMs)) as RemoteStoreInfo;
    if (typeof info.backend !== 'string' || typeof info.location !== 'string') {
      throw new Error(`${baseUrl} is not a kaudit agent`);
    }
    return new RemoteStore(baseUrl, token, info);
  }

  stage(_batch: EventBatch): StagedBatch {
    throw this.readOnly();
  }

  async write(_batch: EventBatch): Promise<WriteResult> {
    throw this.readOnly();
  }

  private readOnly(): UserError {
    return new UserError(
      'KAUDIT_STORE_READ_ONLY',
      `the store ${this.location} is written by the agent at ${this.baseUrl}`,
      {
        hint: 'stop the agent to write to it directly, or send events to the agent (webhook or a tailed file)',
      },
    );
  }

  async query(sql: string): Promise<QueryResult> {
    return decodeQueryResult(await request(this.baseUrl, this.token, REMOTE_API.query, { sql }));
  }

  async search(filter: SearchFilter): Promise<QueryResult> {
    return decodeQueryResult(await request(this.baseUrl, this.token, REMOTE_API.search, filter));
  }

  async stats(): Promise<StoreStats> {
    return (await request(this.baseUrl, this.token, REMOTE_API.stats)) as StoreStats;
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
): Promise<unknown> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  const init: RequestInit = { signal: AbortSignal.timeout(timeoutMs), headers };
  if (body !== undefined) {
    init.method = 'POST';
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(new URL(path, baseUrl), init);
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`agent at ${baseUrl} answered ${res.status} with a body that is not JSON`);
  }
  if (!res.ok) {
    const e = parsed as Partial<RemoteError>;
    const message = typeof e.error === 'string' ? e.error : `HTTP ${res.status}`;
    if (typeof e.code === 'string') {
      const options: { hint?: string } = {};
      if (typeof e.hint === 'string') options.hint = e.hint;
      throw new UserError(e.code, message, options);
    }
    throw new Error(`agent at ${baseUrl}: ${message}`);
  }
  return parsed;
}
