import type { DuckDBValue } from '@duckdb/node-api';
import type { SearchFilter } from '../search-filter.js';

export const SEARCH_COLUMNS = [
  'ts',
  'cluster',
  'subject',
  'verb',
  'resource',
  'subresource',
  'namespace',
  'name',
  'code',
  'decision',
  'latency_ms',
  'source_ip',
  'user_agent',
  'audit_id',
  'stage',
  'username',
  'request_uri',
];

/** Filter -> parameterised SQL over the `events` view. */
export function buildSearchSql(f: SearchFilter): { sql: string; params: Record<string, DuckDBValue> } {
  const where: string[] = [];
  const params: Record<string, DuckDBValue> = {};
  const add = (clause: string, name: string, value: DuckDBValue) => {
    where.push(clause);
    params[name] = value;
  };
  if (f.user !== undefined) add('username = $user', 'user', f.user);
  if (f.subject !== undefined) add('subject = $subject', 'subject', f.subject);
  if (f.verb !== undefined) add('verb = $verb', 'verb', f.verb);
  if (f.resource !== undefined) {
    const [res, sub] = f.resource.split('/', 2);
    add('resource = $resource', 'resource', res ?? '');
    if (sub !== undefined && sub !== '*') add('subresource = $subresource', 'subresource', sub);
  }
  if (f.namespace !== undefined) add('namespace = $namespace', 'namespace', f.namespace);
  if (f.code !== undefined) add('code = $code', 'code', f.code);
  if (f.decision !== undefined) add('decision = $decision', 'decision', f.decision);
  if (f.cluster !== undefined) add('cluster = $cluster', 'cluster', f.cluster);
  if (f.since !== undefined) add('ts >= CAST($since AS TIMESTAMPTZ)::TIMESTAMP', 'since', f.since);
  if (f.until !== undefined) add('ts < CAST($until AS TIMESTAMPTZ)::TIMESTAMP', 'until', f.until);
  const cols = SEARCH_COLUMNS.map((c) =>
    c === 'ts'
      ? "strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ') AS ts"
      : c === 'latency_ms'
        ? 'round(latency_ms, 3) AS latency_ms'
        : c,
  ).join(', ');
  const sql = `SELECT ${cols} FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY events.ts DESC, audit_id, stage LIMIT ${Math.max(0, Math.floor(f.limit))}`;
  return { sql, params };
}
