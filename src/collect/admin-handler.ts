import { timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { UserError } from '../model/errors.js';
import { encodeQueryResult, REMOTE_API, type RemoteStoreInfo } from '../store/remote-store.js';
import type { SearchFilter } from '../store/search-filter.js';
import type { Store } from '../store/store.js';
import type { AgentStatus } from './agent.js';
import { formatMetrics } from './metrics.js';

export interface StatusProvider {
  status(): Promise<AgentStatus>;
}

const MAX_REQUEST_BYTES = 1024 * 1024;

function json(status: number, body: unknown): Response {
  return new Response(`${JSON.stringify(body)}\n`, {
    status,
    headers: { 'content-type': 'application/json' },
  });
}

function errorResponse(err: unknown): Response {
  if (err instanceof UserError) {
    const body: Record<string, string> = { error: err.message, code: err.code };
    if (err.hint !== undefined) body.hint = err.hint;
    return json(400, body);
  }
  return json(500, { error: err instanceof Error ? err.message : String(err) });
}

const READ_API_PATHS = new Set<string>(Object.values(REMOTE_API));

/** Whether the request carries `Authorization: Bearer <token>`, compared in constant time. */
function hasToken(req: Request, token: string): boolean {
  const given = Buffer.from(req.headers.get('authorization') ?? '');
  const wanted = Buffer.from(`Bearer ${token}`);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

/**
 * The agent's local API, fetch-style so it is tested without a socket: `/healthz`, `/metrics`
 * (Prometheus text), `/status` (what `kaudit status` prints) and the read API `kaudit search` and
 * `kaudit query` use while the agent holds the store. The read API answers with audit events, so it
 * wants the bearer token the agent writes to its `agent.json` (readable by the agent's user only):
 * whoever can ask it could read the store's files anyway.
 */
export class AdminHandler {
  constructor(
    private readonly agent: StatusProvider,
    private readonly store: Store,
    private readonly token: string,
  ) {}

  fetch = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    if (READ_API_PATHS.has(url.pathname) && !hasToken(req, this.token)) {
      return json(401, {
        error:
          'the read API needs the bearer token from the agent.json the agent wrote in its data directory and run_path',
        code: 'KAUDIT_API_UNAUTHORIZED',
        hint: 'run kaudit search or query as the user the agent runs as (the file is readable by that user only)',
      });
    }
    try {
      switch (`${req.method} ${url.pathname}`) {
        case 'GET /healthz': {
          const s = await this.agent.status();
          const failing = [s.store, ...s.logs].filter((x) => x.status !== 'OK');
          return failing.length === 0
            ? json(200, { status: 'ok' })
            : json(503, { status: 'error', errors: failing.map((x) => x.error ?? 'error') });
        }
        case 'GET /metrics':
          return new Response(formatMetrics(await this.agent.status()), {
            headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' },
          });
        case 'GET /status':
          return json(200, await this.agent.status());
        case `GET ${REMOTE_API.info}`: {
          const info: RemoteStoreInfo = {
            backend: this.store.backend,
            location: this.store.location,
            capabilities: this.store.capabilities,
          };
          return json(200, info);
        }
        case `GET ${REMOTE_API.stats}`:
          return json(200, await this.store.stats());
        case `POST ${REMOTE_API.query}`: {
          const body = (await readJson(req)) as { sql?: unknown };
          if (typeof body.sql !== 'string') return json(400, { error: 'body must be {"sql": "..."}' });
          return json(200, encodeQueryResult(await this.store.query(body.sql)));
        }
        case `POST ${REMOTE_API.search}`: {
          const filter = (await readJson(req)) as SearchFilter;
          if (typeof filter !== 'object' || filter === null || typeof filter.limit !== 'number') {
            return json(400, { error: 'body must be a search filter with a numeric limit' });
          }
          return json(200, encodeQueryResult(await this.store.search(filter)));
        }
        default:
          return json(404, { error: `no ${req.method} ${url.pathname}; try /status, /metrics or /healthz` });
      }
    } catch (err) {
      return errorResponse(err);
    }
  };

  async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const chunk of req as AsyncIterable<Buffer>) {
        n += chunk.length;
        if (n > MAX_REQUEST_BYTES) {
          res.writeHead(413, { 'content-type': 'application/json' }).end('{"error":"request too large"}\n');
          return;
        }
        chunks.push(chunk);
      }
      const init: RequestInit = { method: req.method ?? 'GET' };
      const auth = req.headers.authorization;
      if (auth !== undefined) init.headers = { authorization: auth };
      if (n > 0) init.body = Buffer.concat(chunks, n);
      const response = await this.fetch(new Request(`http://localhost${req.url ?? '/'}`, init));
      res.writeHead(response.status, Object.fromEntries(response.headers.entries()));
      res.end(Buffer.from(await response.arrayBuffer()));
    } catch (err) {
      if (res.writableEnded) return;
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify({ error: String(err) })}\n`);
    }
  }
}

async function readJson(req: Request): Promise<unknown> {
  const text = await req.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new UserError('KAUDIT_API_BAD_REQUEST', 'request body is not JSON');
  }
}
