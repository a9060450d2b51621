/**
 * The HTTP layer the agent and `kaudit serve` share: health, metrics and status, the versioned JSON
 * API under /api/v1, and whatever routes the caller mounts (the store API the CLI uses while the
 * agent holds the store). Handlers are fetch-style, so tests call `app.request()` with no socket.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { inRange, resolveRange } from '../analyze/report-range.js';
import type { Store } from '../store/contract.js';
import { filterFromParams } from '../store/filter-params.js';
import { alertsApi } from './alerts-api.js';
import type { AccessLevel, TokenAuth } from './auth.js';
import { eventsApi } from './events-api.js';
import { errorJson, errorResponse } from './http-error.js';
import { policyApi } from './policy-api.js';
import { reportsApi } from './reports-api.js';
import { assetResponse, loadUiAssets } from './ui-assets.js';

/** A fetch-style handler for a group of routes: undefined when the request is not one of them. */
export type RouteHandler = (req: Request) => Promise<Response | undefined>;

export interface AppOptions {
  store: Store;
  /**
   * Tokens that guard /api/v1. Without any, the API is open: the listener then refuses any address
   * but loopback (see listen.ts).
   */
  auth: TokenAuth;
  /** `GET /status`: what `kaudit status` shows. */
  status: () => Promise<unknown>;
  /** `GET /healthz`: null when healthy, else the problems. */
  health: () => Promise<string[] | null>;
  /** `GET /metrics`: Prometheus text. */
  metrics: () => Promise<string>;
  /** More routes under /api/v1: each group under its path prefix, behind its access level. */
  routes?: readonly { prefix: string; handler: RouteHandler; level: AccessLevel }[];
  /** The data directory whose alerts.ndjson the alerts API reads; without it there is no alerts API. */
  dataDir?: string;
  /** Largest request body; default 8 MiB. */
  maxBodyBytes?: number;
}

const DEFAULT_MAX_BODY_BYTES = 8 << 20;

export function createApp(opts: AppOptions): Hono {
  const app = new Hono();
  app.onError((err) => errorResponse(err));
  app.notFound((c) =>
    errorJson(
      404,
      'KAUDIT_API_NOT_FOUND',
      `no ${c.req.method} ${new URL(c.req.url).pathname}`,
      'see docs/api.md',
    ),
  );
  app.use(
    '*',
    bodyLimit({
      maxSize: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      onError: () =>
        errorJson(
          413,
          'KAUDIT_API_TOO_LARGE',
          `request body over ${opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES} bytes`,
        ),
    }),
  );

  app.get('/healthz', async () => {
    const problems = await opts.health();
    return problems === null
      ? Response.json({ status: 'ok' })
      : Response.json({ status: 'error', errors: problems }, { status: 503 });
  });
  app.get(
    '/metrics',
    async () =>
      new Response(await opts.metrics(), {
        headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' },
      }),
  );
  app.get('/status', async () => Response.json(await opts.status()));

  const assets = loadUiAssets();
  app.get('/', (c) => {
    const index = assets.get('/');
    return index === undefined
      ? errorJson(404, 'KAUDIT_UI_NOT_BUILT', 'the dashboard is not built', 'run npm run build')
      : assetResponse(index, c.req.header('accept-encoding'));
  });
  app.get('/assets/:file', (c) => {
    const asset = assets.get(`/assets/${c.req.param('file')}`);
    return asset === undefined
      ? errorJson(404, 'KAUDIT_API_NOT_FOUND', 'no such asset')
      : assetResponse(asset, c.req.header('accept-encoding'));
  });

  const need =
    (level: AccessLevel): MiddlewareHandler =>
    async (c, next) => {
      const denied = checkAccess(opts.auth, c.req.header('authorization'), level);
      if (denied !== undefined) return denied;
      await next();
    };

  for (const { prefix, handler, level } of opts.routes ?? []) {
    app.all(`${prefix}*`, need(level), async (c, next) => {
      const res = await handler(c.req.raw);
      if (res === undefined) await next();
      else return res;
    });
  }
  app.use('/api/v1/*', need('read'));
  app.get('/api/v1/info', async () => Response.json(await opts.store.info()));
  app.get('/api/v1/count', async (c) =>
    Response.json({ count: await opts.store.count(filterFromParams(new URL(c.req.url).searchParams)) }),
  );
  app.get('/api/v1/histogram', async (c) => {
    const filter = filterFromParams(new URL(c.req.url).searchParams);
    const range = await resolveRange(opts.store, filter);
    const rows = await opts.store.aggregate({
      filter: inRange(filter, range),
      groupBy: [{ bucket: 'ts', everyMs: range.bucketMs }],
      measures: { count: { fn: 'count' } },
      orderBy: [{ key: 'bucket' }],
    });
    return Response.json({ range, buckets: rows.map((r) => ({ bucket: r.bucket, count: r.count })) });
  });
  app.route('/api/v1/events', eventsApi(opts.store));
  app.route('/api/v1/policy', policyApi(opts.store));
  app.route('/api/v1/reports', reportsApi(opts.store));
  if (opts.dataDir !== undefined) app.route('/api/v1/alerts', alertsApi(opts.dataDir));
  return app;
}

/** undefined when the request may go on, else the 401/403 to answer. */
function checkAccess(auth: TokenAuth, header: string | undefined, level: AccessLevel): Response | undefined {
  if (!auth.configured) return undefined;
  const granted = auth.levelOf(header);
  if (granted === undefined)
    return errorJson(
      401,
      'KAUDIT_API_UNAUTHORIZED',
      'this API wants `Authorization: Bearer <token>`',
      'see docs/api.md, Access',
    );
  if (level === 'admin' && granted !== 'admin')
    return errorJson(403, 'KAUDIT_API_FORBIDDEN', 'this endpoint changes state and wants an admin token');
  return undefined;
}
