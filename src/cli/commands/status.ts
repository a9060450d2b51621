import type { Command } from 'commander';
import type { AgentStatus } from '../../collect/agent.js';
import {
  DEFAULT_ADMIN_LISTEN,
  formatListen,
  loadAgentConfig,
  parseListen,
} from '../../collect/agent-config.js';
import type { FileSourceStatus } from '../../collect/file-source.js';
import type { WebhookStatus } from '../../collect/webhook-source.js';
import { processAlive } from '../../model/process.js';
import { readAgentLocator } from '../../store/remote/locator.js';
import { dataOption, resolveDataDir } from '../common.js';
import { EXIT_FINDINGS, EXIT_RUNTIME, setExitCode } from '../main.js';
import { toJson } from '../output.js';
import { findConfigFile } from './agent.js';

interface StatusFlags {
  config?: string;
  admin?: string;
  data?: string;
  json?: boolean;
}

/** Where to ask: --admin, else the agent.json of the config's run_path or of the data dir, else the default port. */
async function findAdmin(flags: StatusFlags): Promise<{ url: string; how: string }> {
  if (flags.admin !== undefined) {
    return { url: flags.admin.includes('://') ? flags.admin : `http://${flags.admin}`, how: '--admin' };
  }
  const file = findConfigFile(flags.config);
  const dirs: string[] = [];
  let configured: string | undefined;
  if (file !== undefined) {
    const config = loadAgentConfig(file, process.env);
    dirs.push(config.runPath, config.dataDir);
    configured = `http://${formatListen(config.admin)}`;
  }
  dirs.push(resolveDataDir(flags.data));
  for (const dir of dirs) {
    const locator = await readAgentLocator(dir);
    if (locator !== undefined && processAlive(locator.pid))
      return { url: locator.admin, how: `${dir}/agent.json` };
  }
  if (configured !== undefined) return { url: configured, how: `admin.listen of ${file}` };
  const listen = parseListen(process.env.KAUDIT_ADMIN_LISTEN ?? DEFAULT_ADMIN_LISTEN);
  return {
    url: `http://${listen ? formatListen(listen) : DEFAULT_ADMIN_LISTEN}`,
    how: 'the default admin address',
  };
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

function duration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${m}m` : m > 0 ? `${m}m${s % 60}s` : `${s}s`;
}

function heading(text: string, ch: string, indent = ''): string {
  return `${indent}${text}\n${indent}${ch.repeat(text.length)}\n`;
}

function fileSection(l: FileSourceStatus): string {
  const lines = [
    `    - Type: file`,
    `      Path: ${l.path}`,
    `      Service: ${l.service}`,
    `      Source: ${l.source}`,
    `      Status: ${l.status}${l.error ? ` (${l.error})` : ''}`,
    `      ${l.filesTailed} files tailed out of ${l.filesMatching} files matching`,
    `      Bytes read: ${l.bytesRead} (${bytes(l.bytesRead)})`,
    `      Events: ${l.events}`,
    `      Lag: ${l.lagBytes} bytes, ${l.lagSeconds.toFixed(1)} s behind`,
    `      Last checkpoint: ${l.lastCheckpoint ?? 'never'}`,
    `      Rotations: ${l.rotations}   Truncations: ${l.truncations}`,
    `      Truncated: ${l.truncated}   Malformed: ${l.malformed}   Dropped: ${l.dropped}`,
  ];
  for (const f of l.files) {
    const tags = [f.rotated ? 'rotated' : '', f.compressed ? 'gzip' : ''].filter(Boolean).join(', ');
    lines.push(
      `        ${f.path}${tags ? ` (${tags})` : ''}: offset ${f.offset} of ${f.size}, lag ${f.lagBytes} bytes / ${f.lagSeconds.toFixed(1)} s`,
    );
  }
  return lines.join('\n');
}

function webhookSection(l: WebhookStatus): string {
  const answers = Object.entries(l.responses)
    .map(([code, n]) => `${code}: ${n}`)
    .join(', ');
  return [
    `    - Type: webhook`,
    `      Listen: ${l.listen}${l.path}`,
    `      Service: ${l.service}`,
    `      Source: ${l.source}`,
    `      Status: ${l.status}${l.error ? ` (${l.error})` : ''}`,
    `      Requests: ${l.requests}${answers ? ` (${answers})` : ''}`,
    `      Events: ${l.events}`,
    `      Last request: ${l.lastRequestAt ?? 'never'}`,
    `      Truncated: ${l.truncated}   Malformed: ${l.malformed}   Dropped: ${l.dropped}`,
  ].join('\n');
}

interface ForwardStatus {
  name: string;
  sentEvents: number;
  filteredEvents?: number;
  deadLettered?: number;
  retries: number;
  lagSeconds?: number;
  lastSentAt?: string;
  lastError?: string;
  /** A forwarder that follows the store: `live`, `catching-up` or `yielding` (to a saturated ingest). */
  mode?: string;
  lagEvents?: number;
  recoveredEvents?: number;
  droppedFromQueue?: number;
  storeError?: string;
}

interface DetectionStatus {
  rules: number;
  events: number;
  alerts: number;
  outputErrors: number;
  outputs: { name: string; sent: number; throttled: number; failures: number; lastError?: string }[];
}

/** The Logs section, laid out like the Datadog Agent's `agent status`. */
export function formatStatus(s: AgentStatus): string {
  const a = s.agent;
  const p = s.pipeline;
  let out = heading('Logs Agent', '=');
  out += `\n  kaudit agent ${a.version} (PID ${a.pid}), cluster ${a.cluster}, up ${duration(a.uptimeSeconds)}\n`;
  out += `  Admin: ${a.admin}   Config: ${a.config ?? '(built in)'}\n`;
  out += `  run_path: ${a.runPath}   data: ${a.dataDir}\n`;
  if (!a.logsEnabled)
    out += '  Log collection is disabled (logs_enabled: false / KAUDIT_LOGS_ENABLED=false)\n';
  out += `\n${heading('Pipeline', '-', '  ')}`;
  out += `    Queue: ${p.queuedEvents} / ${p.queueEvents} events (${bytes(p.queuedBytes)})\n`;
  out += `    Batches: ${p.batches}   Stored: ${p.eventsStored}   Duplicates: ${p.duplicates}   Rejected: ${p.rejected}\n`;
  out += `    Dead-lettered: ${p.deadLettered}${p.deadLetterPath ? ` (${p.deadLetterPath})` : ''}\n`;
  if (p.deadLetterError !== undefined)
    out += `    Dead letters failing: ${p.deadLetterError} (input waits: nothing is acknowledged until they are written)\n`;
  const c = s.checkpoints;
  out += `    Checkpoints: ${c.status}${c.error ? ` (${c.error})` : ''}   Last commit: ${c.lastCommitAt ?? 'never'}\n`;
  out += `    Latency: avg ${p.latencyAvgMs.toFixed(0)} ms, peak ${p.latencyPeakMs.toFixed(0)} ms\n`;
  out += `\n${heading('Store', '-', '  ')}`;
  out += `    ${s.store.backend} ${s.store.location}\n`;
  out += `    Status: ${s.store.status}${s.store.error ? ` (${s.store.error})` : ''}\n`;
  out += `    Rows: ${s.store.rows ?? 'unknown'}${s.store.newest ? `   Newest: ${s.store.newest}` : ''}\n`;
  if (s.store.tableChecks !== undefined) out += `    Table checks: ${s.store.tableChecks}\n`;
  const clusters = s.store.clusters ?? [];
  if (clusters.length > 1 || (clusters.length === 1 && clusters[0]?.cluster !== a.cluster))
    out += `    Rows per cluster: ${clusters.map((c) => `${c.cluster || '(none)'} ${c.rows}`).join(', ')}\n`;
  const forward = (s as AgentStatus & { forward?: ForwardStatus[] }).forward ?? [];
  for (const k of s.sinks ?? []) {
    out += `\n${heading(`Sink ${k.name}`, '-', '  ')}`;
    out += `    Exported: ${k.exportedEvents}   Queued: ${k.queuedEvents}   Dropped: ${k.droppedEvents}   Failed exports: ${k.failedExports}${k.lastError ? `   Last error: ${k.lastError}` : ''}\n`;
    const f = forward.find((x) => x.name === k.name);
    if (f !== undefined) {
      if (f.mode !== undefined)
        out += `    Mode: ${f.mode}   Behind the store: ${f.lagEvents ?? 0} events, ${(f.lagSeconds ?? 0).toFixed(0)} s   Dropped from queue: ${f.droppedFromQueue ?? 0} (recovered from the store: ${f.recoveredEvents ?? 0})${f.storeError ? `   Store: ${f.storeError}` : ''}\n`;
      out += `    Sent: ${f.sentEvents}   Filtered: ${f.filteredEvents ?? 0}   Dead-lettered: ${f.deadLettered ?? 0}   Retries: ${f.retries}${f.mode === undefined ? `   Lag: ${(f.lagSeconds ?? 0).toFixed(0)} s` : ''}${f.lastSentAt ? `   Last sent: ${f.lastSentAt}` : ''}${f.lastError ? `   Last error: ${f.lastError}` : ''}\n`;
    }
  }
  const d = (s as AgentStatus & { detection?: DetectionStatus }).detection;
  if (d !== undefined) {
    out += `\n${heading('Detection', '-', '  ')}`;
    out += `    Rules: ${d.rules}   Events checked: ${d.events}   Alerts: ${d.alerts}   Output errors: ${d.outputErrors}\n`;
    for (const o of d.outputs)
      out += `    Output ${o.name}: sent ${o.sent}, throttled ${o.throttled}, failures ${o.failures}${o.lastError ? ` (last: ${o.lastError})` : ''}\n`;
  }
  for (const l of s.logs) {
    out += `\n${heading(l.name, '-', '  ')}`;
    out += `${l.type === 'file' ? fileSection(l) : webhookSection(l)}\n`;
  }
  if (s.logs.length === 0) out += '\n  No sources configured.\n';
  return out;
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description("Show the running agent's sources, lag, pipeline and store")
    .option('--config <file>', 'agent config, to find its run_path and admin address')
    .option('--admin <url>', 'admin address of the agent (default: from agent.json, else 127.0.0.1:5599)')
    .addOption(dataOption())
    .option('--json', 'the full status as one JSON object')
    .addHelpText(
      'after',
      `
Exits 0 when every source and the store are OK, 1 when one is in error, 3 when no agent answers.`,
    )
    .action(async (flags: StatusFlags) => {
      const { url, how } = await findAdmin(flags);
      let status: AgentStatus;
      try {
        const res = await fetch(new URL('/status', url), { signal: AbortSignal.timeout(10_000) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        status = (await res.json()) as AgentStatus;
      } catch (err) {
        const why =
          err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
        process.stderr.write(
          `kaudit: the agent is not running: nothing answers at ${url} (from ${how}): ${why}\n`,
        );
        process.stderr.write(
          '  hint: start it with `kaudit agent --config kaudit.yaml`, or pass --config/--admin\n',
        );
        setExitCode(EXIT_RUNTIME);
        return;
      }
      if (flags.json) process.stdout.write(`${toJson(status)}\n`);
      else process.stdout.write(formatStatus(status));
      const failing = [status.store, ...status.logs, status.checkpoints].filter((x) => x.status !== 'OK');
      if (failing.length > 0 || status.pipeline.deadLetterError !== undefined) setExitCode(EXIT_FINDINGS);
    });
}
