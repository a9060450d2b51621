import { get } from '../api.js';
import { Figure, Status, Table, useLoad } from '../components.js';
import { hrefOf, rangeParams } from '../state.js';

interface Alert {
  time: string;
  rule: {
    id: string;
    title: string;
    severity: string;
    tactic?: string[] | string;
    technique?: string[] | string;
  };
  auditID?: string;
  stage?: string;
  subject?: string;
  message?: string;
}

const list = (v: string[] | string | undefined) => (Array.isArray(v) ? v.join(', ') : (v ?? null));

export function Security({ params }: { params: URLSearchParams }) {
  const range = rangeParams(params);
  const severity = params.get('severity') ?? undefined;
  const alerts = useLoad(JSON.stringify({ range, severity }), () =>
    get<{ alerts: Alert[] }>('/api/v1/alerts', { ...range, severity }),
  );
  return (
    <>
      <h1>Security</h1>
      <Status state={alerts}>
        {(d) => {
          const by = (f: (a: Alert) => string | null) => {
            const m = new Map<string, number>();
            for (const a of d.alerts) {
              const k = f(a) ?? '-';
              m.set(k, (m.get(k) ?? 0) + 1);
            }
            return [...m.entries()].sort((a, b) => b[1] - a[1]);
          };
          return (
            <>
              <div class="figures">
                {['critical', 'high', 'medium', 'low', 'info'].map((s) => (
                  <Figure
                    label={s}
                    testId={`alerts-${s}`}
                    value={
                      <a href={hrefOf('security', { ...range, severity: s })}>
                        {d.alerts.filter((a) => a.rule.severity === s).length}
                      </a>
                    }
                  />
                ))}
              </div>
              <div class="grid2">
                <Table
                  caption="By tactic"
                  columns={['tactic', 'alerts']}
                  rows={by((a) => list(a.rule.tactic))}
                />
                <Table
                  caption="By technique"
                  columns={['technique', 'alerts']}
                  rows={by((a) => list(a.rule.technique))}
                />
              </div>
              <Table
                caption="Alerts, newest first (click for the event)"
                testId="alerts"
                columns={['time', 'severity', 'rule', 'technique', 'subject', 'message']}
                rows={d.alerts.map((a) => [
                  a.time,
                  a.rule.severity,
                  a.rule.title,
                  list(a.rule.technique),
                  a.subject ?? null,
                  a.message ?? null,
                ])}
                onRow={(i) => {
                  const a = d.alerts[i];
                  if (a?.auditID !== undefined) location.hash = hrefOf('event', { id: a.auditID });
                }}
                empty="No alerts in this window (detections run in the agent, or with kaudit detect --data)."
              />
            </>
          );
        }}
      </Status>
    </>
  );
}
