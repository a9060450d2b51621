/**
 * Prometheus lines for what runs after the store: each forwarding sink (sent, filtered,
 * dead-lettered, retries, lag) and live detection (events checked, alerts, per output), from the
 * `forward` and `detection` parts of the agent's status.
 */
interface ForwardFigures {
  name: string;
  type?: string;
  sentEvents: number;
  filteredEvents?: number;
  deadLettered?: number;
  retries: number;
  lagSeconds?: number;
  mode?: string;
  lagEvents?: number;
  recoveredEvents?: number;
  droppedFromQueue?: number;
}

interface DetectionFigures {
  rules: number;
  events: number;
  alerts: number;
  outputErrors: number;
  outputs: { name: string; sent: number; throttled: number; failures: number }[];
}

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
  );
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

export function formatSinkMetrics(status: {
  forward?: ForwardFigures[];
  detection?: DetectionFigures;
}): string {
  const families = new Map<string, { type: string; help: string; lines: string[] }>();
  const add = (name: string, type: string, help: string, value: number, labels: Labels = {}) => {
    let f = families.get(name);
    if (f === undefined) {
      f = { type, help, lines: [] };
      families.set(name, f);
    }
    f.lines.push(`${name}${labelText(labels)} ${value}`);
  };
  for (const f of status.forward ?? []) {
    const l = { sink: f.name, type: f.type ?? '' };
    add('kaudit_forward_sent_events_total', 'counter', 'Events a sink delivered.', f.sentEvents, l);
    add(
      'kaudit_forward_filtered_events_total',
      'counter',
      "Events a sink's policy or filters left out.",
      f.filteredEvents ?? 0,
      l,
    );
    add(
      'kaudit_forward_dead_lettered_events_total',
      'counter',
      'Events a platform refused for good.',
      f.deadLettered ?? 0,
      l,
    );
    add('kaudit_forward_retries_total', 'counter', 'Requests sent again after a failure.', f.retries, l);
    add(
      'kaudit_forward_lag_seconds',
      'gauge',
      'How long ago the oldest event the sink has not sent was stored.',
      f.lagSeconds ?? 0,
      l,
    );
    if (f.mode !== undefined) {
      add(
        'kaudit_forward_lag_events',
        'gauge',
        'Stored events the sink has not sent yet.',
        f.lagEvents ?? 0,
        l,
      );
      add(
        'kaudit_forward_catching_up',
        'gauge',
        '1 while the sink reads what it missed from the store, 0 while it sends live batches.',
        f.mode === 'live' ? 0 : 1,
        l,
      );
      add(
        'kaudit_forward_queue_dropped_events_total',
        'counter',
        "Events dropped from the sink's live queue (then sent from the store).",
        f.droppedFromQueue ?? 0,
        l,
      );
      add(
        'kaudit_forward_recovered_events_total',
        'counter',
        'Events the sink sent from the store while catching up.',
        f.recoveredEvents ?? 0,
        l,
      );
    }
  }
  const d = status.detection;
  if (d !== undefined) {
    add('kaudit_detection_rules', 'gauge', 'Detection rules running.', d.rules);
    add('kaudit_detection_events_total', 'counter', 'Stored events checked by the rules.', d.events);
    add('kaudit_detection_alerts_total', 'counter', 'New alerts raised.', d.alerts);
    for (const o of d.outputs) {
      add('kaudit_alert_output_sent_total', 'counter', 'Alerts an output delivered.', o.sent, {
        output: o.name,
      });
      add(
        'kaudit_alert_output_throttled_total',
        'counter',
        'Alerts held back by the per-rule throttle.',
        o.throttled,
        { output: o.name },
      );
      add('kaudit_alert_output_failures_total', 'counter', 'Failed deliveries.', o.failures, {
        output: o.name,
      });
    }
  }
  let out = '';
  for (const [name, f] of families)
    out += `# HELP ${name} ${f.help}\n# TYPE ${name} ${f.type}\n${f.lines.join('\n')}\n`;
  return out;
}
