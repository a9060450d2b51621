import { Hono } from 'hono';
import { type AlertQuery, queryAlerts, SEVERITIES } from '../detect/alert-log.js';
import { UserError } from '../model/errors.js';

/** `GET /` (newest first) and `GET /count`: the alerts detections recorded beside the events. */
export function alertsApi(dataDir: string): Hono {
  const api = new Hono();
  const queryOf = (params: URLSearchParams): AlertQuery => {
    const q: AlertQuery = {};
    for (const key of ['since', 'until'] as const) {
      const v = params.get(key);
      if (v === null) continue;
      const t = Date.parse(v);
      if (Number.isNaN(t))
        throw new UserError(
          'KAUDIT_API_BAD_PARAMETER',
          `${key} ${JSON.stringify(v)}: expected an RFC3339 time`,
        );
      q[key] = new Date(t).toISOString();
    }
    const severity = params.get('severity');
    if (severity !== null) {
      if (!(SEVERITIES as readonly string[]).includes(severity))
        throw new UserError(
          'KAUDIT_API_BAD_PARAMETER',
          `severity ${JSON.stringify(severity)}: expected one of ${SEVERITIES.join(', ')}`,
        );
      q.minSeverity = severity;
    }
    const rule = params.get('rule');
    if (rule !== null) q.rule = rule.split(',');
    const cluster = params.get('cluster');
    if (cluster !== null) q.cluster = cluster.split(',');
    return q;
  };
  api.get('/', async (c) => {
    const params = new URL(c.req.url).searchParams;
    const limit = Number(params.get('limit') ?? '500');
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
      throw new UserError('KAUDIT_API_BAD_PARAMETER', 'limit: expected 1 to 10000');
    return Response.json({ alerts: await queryAlerts(dataDir, { ...queryOf(params), limit }) });
  });
  api.get('/count', async (c) => {
    const alerts = await queryAlerts(dataDir, queryOf(new URL(c.req.url).searchParams));
    const bySeverity: Record<string, number> = {};
    for (const a of alerts) bySeverity[a.rule.severity] = (bySeverity[a.rule.severity] ?? 0) + 1;
    return Response.json({ count: alerts.length, bySeverity });
  });
  return api;
}
