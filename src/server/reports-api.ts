import { Hono } from 'hono';
import { stringify } from 'yaml';
import { activityReport } from '../analyze/activity.js';
import { denialsFromStore } from '../analyze/denials/denials-from-store.js';
import { objectHistory, parseObjectTarget } from '../analyze/history.js';
import { latencyReport } from '../analyze/latency.js';
import { generateRbac } from '../analyze/rbac/generate.js';
import { rbacRecordsFromStore } from '../analyze/rbac/records-from-store.js';
import { subjectLabel, subjectOfUser } from '../analyze/rbac/subjects.js';
import { inRange, resolveRange } from '../analyze/report-range.js';
import { UserError } from '../model/errors.js';
import type { Store } from '../store/contract.js';
import { filterFromParams } from '../store/filter-params.js';

const MAX_LIMIT = 1000;

function limitOf(params: URLSearchParams, fallback: number): number {
  const text = params.get('limit');
  if (text === null) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT)
    throw new UserError(
      'KAUDIT_API_BAD_PARAMETER',
      `limit ${JSON.stringify(text)}: expected 1 to ${MAX_LIMIT}`,
    );
  return n;
}

/**
 * The analyses as JSON, the same typed results `kaudit report ... --json` prints:
 * `GET /latency`, `GET /activity`, `GET /history?object=deployments.apps/payments/api`. Every report
 * takes the event filter parameters (since, until, cluster, ...).
 */
export function reportsApi(store: Store): Hono {
  const api = new Hono();
  api.get('/latency', async (c) => {
    const params = new URL(c.req.url).searchParams;
    return Response.json(
      await latencyReport(store, { filter: filterFromParams(params), limit: limitOf(params, 20) }),
    );
  });
  api.get('/activity', async (c) => {
    const params = new URL(c.req.url).searchParams;
    return Response.json(
      await activityReport(store, { filter: filterFromParams(params), limit: limitOf(params, 10) }),
    );
  });
  api.get('/history', async (c) => {
    const params = new URL(c.req.url).searchParams;
    const object = params.get('object');
    if (object === null)
      throw new UserError(
        'KAUDIT_API_BAD_PARAMETER',
        'object is required: RESOURCE/NAMESPACE/NAME or RESOURCE/NAME',
      );
    const target = parseObjectTarget(object, params.get('uid') ?? undefined);
    const filter = filterFromParams(params);
    return Response.json(await objectHistory(store, { target, filter, limit: limitOf(params, 500) }));
  });
  api.get('/denials', async (c) => {
    const params = new URL(c.req.url).searchParams;
    const filter = filterFromParams(params);
    const range = await resolveRange(store, filter);
    const report = await denialsFromStore(store, inRange(filter, range), { limit: limitOf(params, 200) });
    return Response.json({
      ...report,
      range,
      subjects: report.subjects.map((s) => ({
        ...s,
        fixYaml:
          s.fix === null ? null : s.fix.objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n'),
      })),
    });
  });
  // Least privilege from observed use for one subject (as `kaudit rbac generate --user NAME`):
  // `GET /rbac?user=alice` or `?user=system:serviceaccount:ci:deployer`, with the event filters.
  api.get('/rbac', async (c) => {
    const params = new URL(c.req.url).searchParams;
    const user = params.get('user');
    if (user === null || user === '')
      throw new UserError(
        'KAUDIT_API_BAD_PARAMETER',
        'user is required: the username whose requests to cover',
      );
    params.delete('user');
    const filter = filterFromParams(params);
    const range = await resolveRange(store, filter);
    const subject = subjectOfUser(user);
    const records = rbacRecordsFromStore(store, { ...inRange(filter, range), subject: [user] });
    const result = await generateRbac(records, {
      select: { subjects: [subject] },
      generatedBy: 'kaudit dashboard',
    });
    return Response.json({
      range,
      subject: subjectLabel(subject),
      ...result,
      yaml: result.objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n'),
    });
  });
  return api;
}
