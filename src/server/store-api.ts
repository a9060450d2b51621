import { UserError } from '../model/errors.js';
import type { Store } from '../store/contract.js';
import { decodeIngestCursor, type ScanQuery } from '../store/query.js';
import {
  REMOTE_SCAN_MAX_ROWS,
  type RemoteInfo,
  STORE_API,
  type WireRejected,
} from '../store/remote/remote-store.js';
import { errorResponse } from './http-error.js';

const SQL_MAX_ROWS = 100_000;
const SQL_MAX_TIMEOUT_MS = 120_000;

async function json(req: Request): Promise<unknown> {
  try {
    return JSON.parse(await req.text());
  } catch {
    throw new UserError('KAUDIT_API_BAD_REQUEST', 'the request body is not JSON');
  }
}

/**
 * The Store contract over HTTP (the server side of store/remote): the CLI's reads while the agent
 * holds the store, and `kaudit ingest`'s writes through it. Fetch-style; undefined for other paths.
 */
export async function storeApi(store: Store, req: Request): Promise<Response | undefined> {
  const url = new URL(req.url);
  const route = `${req.method} ${url.pathname}`;
  try {
    switch (route) {
      case `GET ${STORE_API.info}`: {
        const info: RemoteInfo = { ...(await store.info()), capabilities: store.capabilities };
        return Response.json(info);
      }
      case `POST ${STORE_API.search}`:
        return Response.json(await store.search((await json(req)) as Parameters<Store['search']>[0]));
      case `POST ${STORE_API.aggregate}`:
        return Response.json(await store.aggregate((await json(req)) as Parameters<Store['aggregate']>[0]));
      case `POST ${STORE_API.count}`:
        return Response.json({
          count: await store.count((await json(req)) as Parameters<Store['count']>[0]),
        });
      case `POST ${STORE_API.scanIngested}`: {
        const q = (await json(req)) as ScanQuery;
        if (q.order !== 'ingested' || !Array.isArray(q.columns))
          throw new UserError('KAUDIT_API_BAD_REQUEST', 'body must be a ScanQuery with order "ingested"');
        if (q.filter?.ingestedAfter !== undefined) {
          try {
            decodeIngestCursor(q.filter.ingestedAfter);
          } catch (err) {
            throw new UserError('KAUDIT_API_BAD_PARAMETER', `ingestedAfter: ${(err as Error).message}`);
          }
        }
        const pageRows = Math.max(
          1,
          Math.min(REMOTE_SCAN_MAX_ROWS, Number(q.pageRows) || REMOTE_SCAN_MAX_ROWS),
        );
        let rows: unknown[] = [];
        // The first page only: leaving the loop ends the scan and frees what it holds.
        for await (const page of store.scan({ ...q, pageRows })) {
          rows = page;
          break;
        }
        return Response.json({ rows });
      }
      case `POST ${STORE_API.sql}`: {
        if (store.sql === undefined)
          throw new UserError('KAUDIT_QUERY_UNSUPPORTED', `the ${store.backend} store takes no SQL`);
        const b = (await json(req)) as { text?: unknown; maxRows?: unknown; timeoutMs?: unknown };
        if (typeof b.text !== 'string')
          throw new UserError('KAUDIT_API_BAD_REQUEST', 'body must be {"text": "SELECT ..."}');
        const maxRows = Math.min(SQL_MAX_ROWS, typeof b.maxRows === 'number' ? b.maxRows : 10_000);
        const timeoutMs = Math.min(
          SQL_MAX_TIMEOUT_MS,
          typeof b.timeoutMs === 'number' ? b.timeoutMs : 30_000,
        );
        return Response.json(await store.sql(b.text, { maxRows, timeoutMs }));
      }
      case `POST ${STORE_API.write}`: {
        const cluster = url.searchParams.get('cluster');
        if (cluster === null || cluster === '')
          throw new UserError('KAUDIT_API_BAD_PARAMETER', 'cluster is required');
        const body = Buffer.from(await req.arrayBuffer());
        const events: Buffer[] = [];
        for (let start = 0; start < body.length; ) {
          let end = body.indexOf(0x0a, start);
          if (end < 0) end = body.length;
          events.push(body.subarray(start, end));
          start = end + 1;
        }
        const r = await store.write({ events, cluster });
        const rejected: WireRejected[] = r.rejected.map((x) => ({
          index: x.index,
          reason: x.reason,
          data: x.data.toString('base64'),
        }));
        return Response.json({
          stored: r.stored,
          duplicates: r.duplicates,
          duplicateIndexes: r.duplicateIndexes,
          rejected,
        });
      }
      default:
        return undefined;
    }
  } catch (err) {
    return errorResponse(err);
  }
}
