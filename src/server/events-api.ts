import { Hono } from 'hono';
import { UserError } from '../model/errors.js';
import type { Store } from '../store/contract.js';
import { filterFromParams } from '../store/filter-params.js';
import { EVENT_COLUMNS, type EventColumn, type SearchQuery, type SortOrder } from '../store/query.js';

const MAX_LIMIT = 10_000;
const SORTS: readonly SortOrder[] = ['time', 'time_asc', 'latency'];

/**
 * `GET /api/v1/events?verb=delete&limit=50`: the search of `kaudit search`, with cursor paging
 * (`next` of one page is the `cursor` of the next); `GET /api/v1/events/:auditID?stage=S`: one
 * event with its raw JSON (redacted as stored).
 */
export function eventsApi(store: Store): Hono {
  const api = new Hono();
  api.get('/', async (c) => {
    const params = new URL(c.req.url).searchParams;
    return Response.json(await store.search(searchFromParams(params)));
  });
  api.get('/:auditId', async (c) => {
    const params = new URL(c.req.url).searchParams;
    const filter = filterFromParams(params);
    filter.auditId = [c.req.param('auditId')];
    const page = await store.search({ filter, columns: EVENT_COLUMNS, sort: 'time_asc', limit: 10 });
    if (page.rows.length === 0)
      throw new UserError('KAUDIT_EVENT_NOT_FOUND', `no event with auditID ${c.req.param('auditId')}`);
    const events = page.rows.map((row) => ({ ...row, raw: parseRaw(row.raw) }));
    return Response.json({ events });
  });
  return api;
}

function parseRaw(raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

export function searchFromParams(params: URLSearchParams): SearchQuery {
  const limitText = params.get('limit') ?? '100';
  const limit = Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    throw new UserError(
      'KAUDIT_API_BAD_PARAMETER',
      `limit ${JSON.stringify(limitText)}: expected 1 to ${MAX_LIMIT}`,
    );
  const q: SearchQuery = { filter: filterFromParams(params), limit };
  const sort = params.get('sort');
  if (sort !== null) {
    if (!(SORTS as readonly string[]).includes(sort))
      throw new UserError(
        'KAUDIT_API_BAD_PARAMETER',
        `sort ${JSON.stringify(sort)}: expected one of ${SORTS.join(', ')}`,
      );
    q.sort = sort as SortOrder;
  }
  const columns = params.get('columns');
  if (columns !== null) {
    const list = columns.split(',').map((c) => c.trim());
    const bad = list.filter((c) => !(EVENT_COLUMNS as readonly string[]).includes(c));
    if (bad.length > 0)
      throw new UserError('KAUDIT_API_BAD_PARAMETER', `columns: unknown ${bad.join(', ')}`, {
        hint: `columns are ${EVENT_COLUMNS.join(', ')}`,
      });
    q.columns = list as EventColumn[];
  }
  const cursor = params.get('cursor');
  if (cursor !== null) q.cursor = cursor;
  return q;
}
