import type { ActivityReport } from '../analyze/activity.js';
import type { HistoryReport } from '../analyze/history.js';
import type { LatencyReport, LatencyStats } from '../analyze/latency.js';
import type { ReportDoc } from './report-doc.js';

const ms = (v: number | null) => (v === null ? null : Math.round(v * 10) / 10);
const pct = (s: LatencyStats) => [s.count, ms(s.p50Ms), ms(s.p90Ms), ms(s.p99Ms), ms(s.maxMs)] as const;
const PCT_COLUMNS = ['count', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'] as const;
const resourceOf = (resource: string | null, subresource: string | null) =>
  resource === null ? null : subresource === null ? resource : `${resource}/${subresource}`;

export function latencyDoc(r: LatencyReport): ReportDoc {
  return {
    title: 'Slow requests',
    facts: [
      ['window', `${r.range.since} .. ${r.range.until}`],
      ['requests (not long-running)', r.overall.count],
      [
        'p50 / p90 / p99 ms',
        `${ms(r.overall.p50Ms) ?? '-'} / ${ms(r.overall.p90Ms) ?? '-'} / ${ms(r.overall.p99Ms) ?? '-'}`,
      ],
    ],
    tables: [
      {
        title: 'By verb and resource (slowest p99 first)',
        columns: ['verb', 'resource', ...PCT_COLUMNS],
        rows: r.byVerbResource.map((x) => [x.verb, resourceOf(x.resource, x.subresource), ...pct(x)]),
      },
      {
        title: 'By subject',
        columns: ['subject', ...PCT_COLUMNS],
        rows: r.bySubject.map((x) => [x.subject, ...pct(x)]),
      },
      {
        title: 'By user agent',
        columns: ['user agent', ...PCT_COLUMNS],
        rows: r.byUserAgent.map((x) => [x.userAgent, ...pct(x)]),
      },
      {
        title: 'Clients that cost the API server most time',
        columns: ['subject', 'user agent', 'requests', 'total s', 'p99 ms'],
        rows: r.heaviestClients.map((x) => [
          x.subject,
          x.userAgent,
          x.count,
          x.totalMs === null ? null : Math.round(x.totalMs / 100) / 10,
          ms(x.p99Ms),
        ]),
      },
      {
        title: 'Slowest requests',
        columns: [
          'time',
          'ms',
          'subject',
          'verb',
          'resource',
          'namespace/name',
          'code',
          'audit id',
          'where the time went',
        ],
        rows: r.slowest.map((x) => [
          x.ts,
          ms(x.latencyMs),
          x.subject,
          x.verb,
          x.resource,
          [x.namespace, x.name].filter((v) => v !== null).join('/') || null,
          x.code,
          x.auditId,
          x.breakdown === null
            ? null
            : Object.entries(x.breakdown)
                .sort((a, b) => b[1] - a[1])
                .slice(0, 3)
                .map(([k, v]) => `${k} ${ms(v)}`)
                .join(', '),
        ]),
      },
      {
        title: 'p99 over time',
        columns: ['from', 'requests', 'p99 ms'],
        rows: r.p99Series.map((x) => [x.bucket, x.count, ms(x.p99Ms)]),
      },
      {
        title: 'LISTs across all namespaces without resourceVersion (served from etcd each time)',
        columns: ['subject', 'user agent', 'resource', 'count', 'p99 ms'],
        rows: r.expensiveLists.map((x) => [x.subject, x.userAgent, x.resource, x.count, ms(x.p99Ms)]),
      },
      {
        title: '429 Too Many Requests (API Priority and Fairness)',
        columns: ['subject', 'user agent', 'count'],
        rows: r.throttled.map((x) => [x.subject, x.userAgent, x.count]),
      },
      {
        title: 'Server errors (5xx)',
        columns: ['resource', 'verb', 'code', 'count'],
        rows: r.serverErrors.map((x) => [x.resource, x.verb, x.code, x.count]),
      },
    ],
  };
}

export function activityDoc(r: ActivityReport): ReportDoc {
  const ranked = (title: string, column: string, rows: { value: string | null; count: number }[]) => ({
    title,
    columns: [column, 'requests'],
    rows: rows.map((x) => [x.value, x.count] as const),
  });
  return {
    title: 'Activity',
    facts: [
      ['window', `${r.range.since} .. ${r.range.until}`],
      ['requests', r.requests],
    ],
    tables: [
      ranked('Top subjects', 'subject', r.top.subjects),
      ranked('Top user agents', 'user agent', r.top.userAgents),
      ranked('Top source IPs', 'source ip', r.top.sourceIps),
      ranked('Verbs', 'verb', r.top.verbs),
      {
        title: 'Resources',
        columns: ['resource', 'requests'],
        rows: r.top.resources.map((x) => [resourceOf(x.value, x.subresource) ?? '(non-resource)', x.count]),
      },
      {
        title: 'Subjects seen for the first time',
        columns: ['subject', 'first seen', 'requests'],
        rows: r.newSubjects.map((x) => [x.value, x.firstSeen, x.count]),
      },
      {
        title: 'User agents seen for the first time',
        columns: ['user agent', 'first seen', 'requests'],
        rows: r.newUserAgents.map((x) => [x.value, x.firstSeen, x.count]),
      },
      {
        title: 'Requests over time by response class',
        columns: ['from', 'class', 'requests'],
        rows: r.rateByClass.map((x) => [x.bucket, x.codeClass === null ? null : `${x.codeClass}xx`, x.count]),
      },
    ],
  };
}

export function historyDoc(r: HistoryReport): ReportDoc {
  const t = r.target;
  const name = [t.namespace, t.name].filter((v) => v !== undefined).join('/');
  return {
    title: `History of ${t.resource}${t.apiGroup === undefined ? '' : `.${t.apiGroup}`}${name === '' ? '' : `/${name}`}`,
    facts: [
      ['changes', r.changes.length],
      ...(r.truncated ? ([['note', 'more changes matched: raise --limit']] as const) : []),
    ],
    tables: [
      {
        title: 'Changes, oldest first',
        columns: [
          'time',
          'verb',
          'subresource',
          'who',
          'as',
          'from',
          'user agent',
          'code',
          'body',
          'audit id',
        ],
        rows: r.changes.map((c) => [
          c.ts,
          c.verb,
          c.subresource,
          c.username ?? c.subject,
          c.username === null ? null : c.subject,
          c.sourceIp,
          c.userAgent,
          c.code,
          c.requestObject === undefined ? null : JSON.stringify(c.requestObject),
          c.auditId,
        ]),
        empty:
          'No change of this object is stored in the window (is its resource logged at Metadata or above?).',
      },
    ],
  };
}
