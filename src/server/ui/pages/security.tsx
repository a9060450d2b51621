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
const ids = (v: string[] | string | undefined) => (Array.isArray(v) ? v : v === undefined ? [] : [v]);

/** MITRE ATT&CK Enterprise tactics, for the labels. */
const TACTICS: Record<string, string> = {
  TA0043: 'Reconnaissance',
  TA0001: 'Initial Access',
  TA0002: 'Execution',
  TA0003: 'Persistence',
  TA0004: 'Privilege Escalation',
  TA0005: 'Defense Evasion',
  TA0006: 'Credential Access',
  TA0007: 'Discovery',
  TA0008: 'Lateral Movement',
  TA0009: 'Collection',
  TA0011: 'Command and Control',
  TA0010: 'Exfiltration',
  TA0040: 'Impact',
};

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
          // An alert counts once under each of its tactics (techniques).
          const by = (f: (a: Alert) => string[], label: (k: string) => string = (k) => k) => {
            const m = new Map<string, number>();
            for (const a of d.alerts) {
              const keys = f(a);
              for (const k of keys.length === 0 ? ['-'] : keys) m.set(k, (m.get(k) ?? 0) + 1);
            }
            return [...m.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => [label(k), n]);
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
                  rows={by(
                    (a) => ids(a.rule.tactic),
                    (k) => (TACTICS[k] === undefined ? k : `${TACTICS[k]} (${k})`),
                  )}
                />
                <Table
                  caption="By technique"
                  columns={['technique', 'alerts']}
                  rows={by((a) => ids(a.rule.technique))}
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
