import { get } from '../api.js';
import { Figure, pivot, Status, Table, TimeChart, useLoad } from '../components.js';
import { hrefOf, rangeParams } from '../state.js';
import type { ActivityReport, AgentStatus } from '../types.js';

export function Overview({ params }: { params: URLSearchParams }) {
  const range = rangeParams(params);
  const key = JSON.stringify(range);
  const activity = useLoad(key, () => get<ActivityReport>('/api/v1/reports/activity', range));
  const denied = useLoad(key, () => get<{ count: number }>('/api/v1/count', { ...range, denied: 'true' }));
  const alerts = useLoad(key, () => get<{ count: number }>('/api/v1/alerts/count', range));
  const status = useLoad('status', () => get<AgentStatus>('/status'));
  return (
    <>
      <h1>Overview</h1>
      <Status state={activity}>
        {(a) => {
          const byVerb = pivot(a.rateByVerb.map((r) => ({ bucket: r.bucket, key: r.verb, value: r.count })));
          const byClass = pivot(
            a.rateByClass.map((r) => ({
              bucket: r.bucket,
              key: r.codeClass === null ? 'no response' : `${r.codeClass}xx`,
              value: r.count,
            })),
          );
          return (
            <>
              <div class="figures">
                <Figure label="requests" value={a.requests.toLocaleString('en')} testId="requests" />
                <Figure
                  label="denied (401/403)"
                  value={denied.data?.count.toLocaleString('en') ?? '…'}
                  testId="denied-count"
                />
                <Figure
                  label="alerts"
                  value={alerts.error ? 'detection off' : (alerts.data?.count.toLocaleString('en') ?? '…')}
                  testId="alert-count"
                />
                <Figure
                  label="window"
                  value={`${a.range.since.slice(0, 16)} → ${a.range.until.slice(0, 16)}`}
                />
              </div>
              <div class="grid2">
                <TimeChart title="Requests by verb" {...byVerb} />
                <TimeChart title="Requests by response class" {...byClass} />
              </div>
              <div class="grid2">
                <Table
                  caption="Top subjects"
                  testId="top-subjects"
                  columns={['subject', 'requests']}
                  rows={a.top.subjects.map((s) => [
                    s.value === null
                      ? null
                      : { text: s.value, href: hrefOf('explore', { ...range, subject: s.value }) },
                    s.count,
                  ])}
                />
                <Table
                  caption="Top user agents"
                  columns={['user agent', 'requests']}
                  rows={a.top.userAgents.map((s) => [s.value, s.count])}
                />
              </div>
            </>
          );
        }}
      </Status>
      <Status state={status}>
        {(s) =>
          s.logs === undefined ? (
            <p class="muted">No agent: this server reads a store filled by kaudit ingest.</p>
          ) : (
            <Table
              caption="Sources"
              columns={['source', 'type', 'status', 'events', 'lag s', 'error']}
              rows={s.logs.map((l) => [
                l.name,
                l.type,
                l.status,
                l.events,
                l.lagSeconds ?? null,
                l.error ?? null,
              ])}
            />
          )
        }
      </Status>
    </>
  );
}
