import type { AgentStatus } from './agent.js';
import type { FileSourceStatus } from './file-source.js';
import type { WebhookStatus } from './webhook-source.js';

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`,
  );
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/**
 * Collects samples by metric family: the text format wants every sample of a family together,
 * under one HELP and TYPE, however the callers interleave sources.
 */
class MetricsWriter {
  private readonly families = new Map<string, string[]>();

  add(name: string, type: 'counter' | 'gauge', help: string, value: number, labels: Labels = {}): void {
    let lines = this.families.get(name);
    if (lines === undefined) {
      lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
      this.families.set(name, lines);
    }
    lines.push(`${name}${labelText(labels)} ${Number.isFinite(value) ? value : 0}`);
  }

  text(): string {
    return `${[...this.families.values()].flat().join('\n')}\n`;
  }
}

type Family<T> = readonly [name: string, type: 'counter' | 'gauge', help: string, value: (x: T) => number];

const SOURCE_FAMILIES: readonly Family<FileSourceStatus | WebhookStatus>[] = [
  [
    'kaudit_source_up',
    'gauge',
    '1 when the source is OK, 0 when in error.',
    (l) => (l.status === 'OK' ? 1 : 0),
  ],
  ['kaudit_source_events_total', 'counter', 'Events collected and stored.', (l) => l.events],
  ['kaudit_source_truncated_total', 'counter', 'Events kept with their bodies stripped.', (l) => l.truncated],
  [
    'kaudit_source_malformed_total',
    'counter',
    'Lines or bodies that are not audit events.',
    (l) => l.malformed,
  ],
  ['kaudit_source_dropped_total', 'counter', 'Events or lines dropped.', (l) => l.dropped],
];

const FILE_FAMILIES: readonly Family<FileSourceStatus>[] = [
  ['kaudit_file_bytes_read_total', 'counter', 'Bytes read from files.', (l) => l.bytesRead],
  ['kaudit_file_rotations_total', 'counter', 'Rotations seen.', (l) => l.rotations],
  ['kaudit_file_truncations_total', 'counter', 'Truncations (copytruncate) seen.', (l) => l.truncations],
  [
    'kaudit_file_matching',
    'gauge',
    'Files matching the path and its rotated backups.',
    (l) => l.filesMatching,
  ],
  ['kaudit_file_tailed', 'gauge', 'Files open for reading.', (l) => l.filesTailed],
  ['kaudit_file_lag_bytes', 'gauge', 'Bytes written but not yet stored.', (l) => l.lagBytes],
  ['kaudit_file_lag_seconds', 'gauge', 'Age of the oldest byte not yet stored.', (l) => l.lagSeconds],
];

const PIPELINE_FAMILIES: readonly Family<AgentStatus['pipeline']>[] = [
  ['kaudit_pipeline_queued_events', 'gauge', 'Events waiting for the store.', (p) => p.queuedEvents],
  [
    'kaudit_pipeline_queue_capacity_events',
    'gauge',
    'Capacity of the queue in events.',
    (p) => p.queueEvents,
  ],
  ['kaudit_pipeline_batches_total', 'counter', 'Batches written to the store.', (p) => p.batches],
  ['kaudit_pipeline_stored_total', 'counter', 'Rows added to the store.', (p) => p.eventsStored],
  [
    'kaudit_pipeline_duplicates_total',
    'counter',
    'Events already stored (re-read after a restart).',
    (p) => p.duplicates,
  ],
  ['kaudit_pipeline_rejected_total', 'counter', 'Events the store refused.', (p) => p.rejected],
  [
    'kaudit_pipeline_dead_lettered_total',
    'counter',
    'Entries written to the dead-letter file.',
    (p) => p.deadLettered,
  ],
  ['kaudit_store_write_errors_total', 'counter', 'Failed store writes (retried).', (p) => p.storeErrors],
  [
    'kaudit_pipeline_latency_avg_seconds',
    'gauge',
    'Mean time from queue to stored.',
    (p) => p.latencyAvgMs / 1000,
  ],
  [
    'kaudit_pipeline_latency_peak_seconds',
    'gauge',
    'Peak time from queue to stored.',
    (p) => p.latencyPeakMs / 1000,
  ],
];

/** The agent's figures in the Prometheus text exposition format (version 0.0.4). */
export function formatMetrics(s: AgentStatus): string {
  const m = new MetricsWriter();
  const addAll = <T>(families: readonly Family<T>[], x: T, labels?: Labels): void => {
    for (const [name, type, help, value] of families) m.add(name, type, help, value(x), labels);
  };
  m.add(
    'kaudit_agent_start_time_seconds',
    'gauge',
    'Start time of the agent.',
    Date.parse(s.agent.startedAt) / 1000,
  );
  for (const l of s.logs) {
    const labels = { source: l.name, type: l.type };
    addAll(SOURCE_FAMILIES, l, labels);
    if (l.type === 'file') {
      addAll(FILE_FAMILIES, l, labels);
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
  addAll(PIPELINE_FAMILIES, s.pipeline);
  m.add('kaudit_store_up', 'gauge', '1 when the store answers.', s.store.status === 'OK' ? 1 : 0);
  if (s.store.rows !== null) m.add('kaudit_store_rows', 'gauge', 'Rows in the store.', s.store.rows);
  if (s.store.tableChecks !== undefined)
    m.add(
      'kaudit_store_table_checks_total',
      'counter',
      'Writes that looked their events up in the table to de-duplicate them.',
      s.store.tableChecks,
    );
  return m.text();
}
