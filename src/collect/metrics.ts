import type { AgentStatus } from './agent.js';

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`,
  );
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

class MetricsWriter {
  private readonly out: string[] = [];
  private readonly declared = new Set<string>();

  add(name: string, type: 'counter' | 'gauge', help: string, value: number, labels: Labels = {}): void {
    if (!this.declared.has(name)) {
      this.declared.add(name);
      this.out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    }
    this.out.push(`${name}${labelText(labels)} ${Number.isFinite(value) ? value : 0}`);
  }

  text(): string {
    return `${this.out.join('\n')}\n`;
  }
}

/** The agent's figures in the Prometheus text exposition format (version 0.0.4). */
export function formatMetrics(s: AgentStatus): string {
  const m = new MetricsWriter();
  m.add(
    'kaudit_agent_start_time_seconds',
    'gauge',
    'Start time of the agent.',
    Date.parse(s.agent.startedAt) / 1000,
  );
  for (const l of s.logs) {
    const labels = { source: l.name, type: l.type };
    m.add(
      'kaudit_source_up',
      'gauge',
      '1 when the source is OK, 0 when in error.',
      l.status === 'OK' ? 1 : 0,
      labels,
    );
    m.add('kaudit_source_events_total', 'counter', 'Events collected and stored.', l.events, labels);
    m.add(
      'kaudit_source_truncated_total',
      'counter',
      'Events kept with their bodies stripped.',
      l.truncated,
      labels,
    );
    m.add(
      'kaudit_source_malformed_total',
      'counter',
      'Lines or bodies that are not audit events.',
      l.malformed,
      labels,
    );
    m.add('kaudit_source_dropped_total', 'counter', 'Events or lines dropped.', l.dropped, labels);
    if (l.type === 'file') {
      m.add('kaudit_file_bytes_read_total', 'counter', 'Bytes read from files.', l.bytesRead, labels);
      m.add('kaudit_file_rotations_total', 'counter', 'Rotations seen.', l.rotations, labels);
      m.add(
        'kaudit_file_truncations_total',
        'counter',
        'Truncations (copytruncate) seen.',
        l.truncations,
        labels,
      );
      m.add(
        'kaudit_file_matching',
        'gauge',
        'Files matching the path and its rotated backups.',
        l.filesMatching,
        labels,
      );
      m.add('kaudit_file_tailed', 'gauge', 'Files open for reading.', l.filesTailed, labels);
      m.add('kaudit_file_lag_bytes', 'gauge', 'Bytes written but not yet stored.', l.lagBytes, labels);
      m.add(
        'kaudit_file_lag_seconds',
        'gauge',
        'Age of the oldest byte not yet stored.',
        l.lagSeconds,
        labels,
      );
    } else {
      m.add('kaudit_webhook_requests_total', 'counter', 'Webhook requests.', l.requests, labels);
      for (const [code, n] of Object.entries(l.responses)) {
        m.add('kaudit_webhook_responses_total', 'counter', 'Webhook answers by status code.', n, {
          ...labels,
          code,
        });
      }
    }
  }
  const p = s.pipeline;
  m.add('kaudit_pipeline_queued_events', 'gauge', 'Events waiting for the store.', p.queuedEvents);
  m.add('kaudit_pipeline_queue_capacity_events', 'gauge', 'Capacity of the queue in events.', p.queueEvents);
  m.add('kaudit_pipeline_batches_total', 'counter', 'Batches written to the store.', p.batches);
  m.add('kaudit_pipeline_stored_total', 'counter', 'Rows added to the store.', p.eventsStored);
  m.add(
    'kaudit_pipeline_duplicates_total',
    'counter',
    'Events already stored (re-read after a restart).',
    p.duplicates,
  );
  m.add('kaudit_pipeline_rejected_total', 'counter', 'Events the store refused.', p.rejected);
  m.add(
    'kaudit_pipeline_dead_lettered_total',
    'counter',
    'Entries written to the dead-letter file.',
    p.deadLettered,
  );
  m.add('kaudit_store_write_errors_total', 'counter', 'Failed store writes (retried).', p.storeErrors);
  m.add(
    'kaudit_pipeline_latency_avg_seconds',
    'gauge',
    'Mean time from queue to stored.',
    p.latencyAvgMs / 1000,
  );
  m.add(
    'kaudit_pipeline_latency_peak_seconds',
    'gauge',
    'Peak time from queue to stored.',
    p.latencyPeakMs / 1000,
  );
  m.add('kaudit_store_up', 'gauge', '1 when the store answers.', s.store.status === 'OK' ? 1 : 0);
  if (s.store.rows !== null) m.add('kaudit_store_rows', 'gauge', 'Rows in the store.', s.store.rows);
  return m.text();
}
