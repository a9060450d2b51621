import { get } from '../api.js';
import { Status, Table, TimeChart, useLoad } from '../components.js';
import { hrefOf, rangeParams } from '../state.js';
import type { LatencyReport } from '../types.js';

const ms = (v: number | null) => (v === null ? null : Math.round(v * 10) / 10);

export function Latency({ params }: { params: URLSearchParams }) {
  const range = rangeParams(params);
  const report = useLoad(JSON.stringify(range), () => get<LatencyReport>('/api/v1/reports/latency', range));
  return (
    <>
      <h1>Latency</h1>
      <Status state={report}>
        {(r) => (
          <>
            <TimeChart
              title="p99 latency (ms), long-running requests excluded"
              times={r.p99Series.map((p) => Date.parse(p.bucket))}
              series={[{ label: 'p99 ms', values: r.p99Series.map((p) => ms(p.p99Ms)) }]}
            />
            <Table
              caption="By verb and resource"
              testId="latency-by-verb-resource"
              columns={['verb', 'resource', 'count', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms']}
              rows={r.byVerbResource.map((x) => [
                x.verb,
                x.resource === null
                  ? null
                  : x.subresource === null
                    ? x.resource
                    : `${x.resource}/${x.subresource}`,
                x.count,
                ms(x.p50Ms),
                ms(x.p90Ms),
                ms(x.p99Ms),
                ms(x.maxMs),
              ])}
            />
            <Table
              caption="Slowest requests"
              columns={['time', 'ms', 'subject', 'verb', 'resource', 'object', 'code']}
              rows={r.slowest.map((s) => [
                { text: s.ts, href: hrefOf('event', { id: s.auditId }) },
                ms(s.latencyMs),
                s.subject,
                s.verb,
                s.resource,
                [s.namespace, s.name].filter((x) => x !== null).join('/') || null,
                s.code,
              ])}
            />
            <Table
              caption="Clients that cost the API server most time"
              columns={['subject', 'user agent', 'requests', 'total s', 'p99 ms']}
              rows={r.heaviestClients.map((c) => [
                c.subject,
                c.userAgent,
                c.count,
                c.totalMs === null ? null : Math.round(c.totalMs / 100) / 10,
                ms(c.p99Ms),
              ])}
            />
            <div class="grid2">
              <Table
                caption="LISTs across namespaces without resourceVersion"
                columns={['subject', 'resource', 'count', 'p99 ms']}
                rows={r.expensiveLists.map((x) => [x.subject, x.resource, x.count, ms(x.p99Ms)])}
              />
              <Table
                caption="429 Too Many Requests"
                columns={['subject', 'user agent', 'count']}
                rows={r.throttled.map((x) => [x.subject, x.userAgent, x.count])}
              />
            </div>
          </>
        )}
      </Status>
    </>
  );
}
