/**
 * The request records of stored events for the RBAC analyses, asked of the store as aggregates:
 * one record per distinct request shape (who, with which groups, which verb on which object, with
 * which answer), with how many requests it stands for and when the first and last were. RBAC is
 * decided by the shape alone, and a million requests come down to a few thousand shapes, counted
 * by the store instead of read row by row (bench:reports: `rbac generate --all` over 1M events).
 * Requests that impersonate someone are read as events: the impersonated groups are no column.
 */
import type { AuditEvent, Stage } from '../../model/event.js';
import type { EventReader } from '../../store/contract.js';
import type { AggregateRow, EventFilter, GroupColumn } from '../../store/query.js';
import { storedEvents } from '../../store/stored-events.js';
import { type Decision, type RequestRecord, recordFromEvent } from '../request-record.js';

// requestRecords(): the final stage of a request, or the lone ResponseStarted of a failed login.
const STAGES = ['ResponseComplete', 'Panic', 'ResponseStarted'];
const WHO: readonly GroupColumn[] = [
  'stage',
  'username',
  'groups',
  'impersonated_user',
  'verb',
  'code',
  'decision',
];
const RESOURCE: readonly GroupColumn[] = [
  ...WHO,
  'api_group',
  'api_version',
  'resource',
  'subresource',
  'namespace',
  'name',
];
const NON_RESOURCE: readonly GroupColumn[] = [...WHO, 'request_uri'];

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const list = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];

export async function* rbacRecordsFromStore(
  reader: EventReader,
  filter: EventFilter,
): AsyncGenerator<RequestRecord> {
  const measures = {
    n: { fn: 'count' },
    first: { fn: 'min', column: 'ts' },
    last: { fn: 'max', column: 'ts' },
  } as const;
  const impersonated = new Set<string>();
  for (const [nonResource, groupBy] of [
    [false, RESOURCE],
    [true, NON_RESOURCE],
  ] as const) {
    const rows = await reader.aggregate({
      filter: { ...filter, stage: STAGES, nonResource },
      groupBy,
      measures,
    });
    for (const row of rows) {
      if (typeof row.impersonated_user === 'string') {
        impersonated.add(row.impersonated_user);
        continue;
      }
      const r = recordOf(row, nonResource);
      if (r !== undefined) yield r;
    }
  }
  if (impersonated.size === 0) return;
  for await (const { event } of storedEvents(reader, {
    ...filter,
    stage: STAGES,
    subject: [...impersonated],
  })) {
    if (event.impersonatedUser === undefined) continue;
    if (isRequestRecord(event)) yield recordFromEvent(event);
  }
}

function isRequestRecord(e: AuditEvent): boolean {
  return (
    e.stage === 'ResponseComplete' ||
    e.stage === 'Panic' ||
    (e.stage === 'ResponseStarted' && e.responseStatus?.code === 401)
  );
}

function recordOf(row: AggregateRow, nonResource: boolean): RequestRecord | undefined {
  const stage = str(row.stage) as Stage;
  const code = typeof row.code === 'number' ? row.code : null;
  if (stage === 'ResponseStarted' && code !== 401) return undefined;
  const username = str(row.username);
  const groups = list(row.groups);
  const uri = str(row.request_uri);
  const q = uri.indexOf('?');
  const decision = row.decision === 'allow' || row.decision === 'forbid' ? (row.decision as Decision) : null;
  return {
    auditID: '',
    stage,
    time: str(row.first),
    lastTime: str(row.last),
    count: typeof row.n === 'number' ? row.n : 1,
    username,
    groups,
    impersonatedUser: null,
    impersonatedGroups: null,
    subject: username,
    subjectGroups: groups,
    verb: str(row.verb),
    resourceRequest: !nonResource,
    apiGroup: nonResource ? '' : str(row.api_group),
    apiVersion: nonResource ? '' : str(row.api_version),
    resource: nonResource ? '' : str(row.resource),
    subresource: nonResource ? '' : str(row.subresource),
    namespace: nonResource ? '' : str(row.namespace),
    name: nonResource ? '' : str(row.name),
    nonResourceURL: nonResource ? (q < 0 ? uri : uri.slice(0, q)) : '',
    code,
    decision,
    reason: '',
    message: '',
    statusReason: '',
    annotations: {},
    sourceIP: '',
    sourceIPs: [],
    userAgent: '',
  };
}
