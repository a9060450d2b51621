import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { type Diagnostic, formatDiagnostic, UserError } from '../model/errors.js';
import { DEFAULT_MAX_EVENT_BYTES } from '../model/prepare.js';

export const DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_WEBHOOK_MAX_BODY_BYTES = 12 * 1024 * 1024;
export const DEFAULT_ADMIN_LISTEN = '127.0.0.1:5599';

export interface ListenAddress {
  host: string;
  port: number;
}

export interface FileSourceConfig {
  type: 'file';
  /** Stable name of the source: checkpoints and metrics are keyed by it. */
  name: string;
  path: string;
  source: string;
  service: string;
  startPosition: 'beginning' | 'end';
}

export interface WebhookTlsConfig {
  cert: string;
  key: string;
  clientCa?: string;
  /** Client-certificate subject CNs or DNS SANs allowed; empty means any certificate signed by clientCa. */
  allowedNames: string[];
}

export interface WebhookSourceConfig {
  type: 'webhook';
  name: string;
  listen: ListenAddress;
  path: string;
  source: string;
  service: string;
  tls?: WebhookTlsConfig;
  tokenFile?: string;
  maxBodyBytes: number;
}

export type SourceConfig = FileSourceConfig | WebhookSourceConfig;

export interface PipelineConfig {
  /** Events held between the sources and the store before sources are slowed (files) or refused (webhook). */
  queueEvents: number;
  queueBytes: number;
  batchEvents: number;
  flushIntervalMs: number;
}

export interface AgentConfig {
  /** The file the config came from, for messages; undefined for built-in configs (demo). */
  file?: string;
  cluster: string;
  runPath: string;
  dataDir: string;
  logsEnabled: boolean;
  admin: ListenAddress;
  maxEventBytes: number;
  maxLineBytes: number;
  redact: boolean;
  retentionDays?: number;
  /** DuckDB's memory limit, e.g. `512MB`; the store's default when unset. */
  storeMemoryLimit?: string;
  /** Have DuckDB give memory back to the system after each import: less RSS, slower writes. */
  storeTrimMemory: boolean;
  pipeline: PipelineConfig;
  logs: SourceConfig[];
}

export const DEFAULT_PIPELINE: PipelineConfig = {
  // Four batches and a source's next item (2,000 events): the three the DuckDB store has in hand
  // (two importing, one staged) count against the queue until stored, and the next must still be
  // able to fill to a whole batch meanwhile.
  queueEvents: 69_632,
  queueBytes: 192 * 1024 * 1024,
  // One row group of the DuckDB store (duckdb-store.ts ROW_GROUP_ROWS): a full batch is written
  // compressed straight to the file instead of through the WAL.
  batchEvents: 16_384,
  // A batch waits up to a second to fill: from ~16k events/s up every batch is a whole row group,
  // written compressed straight to the file. Cut every 250 ms, batches at 20k events/s went through
  // the WAL and the agent peaked at 610-670 MB instead of ~470 (p99 freshness ~1.4 s either way;
  // measured before the pipeline let go of staged events).
  flushIntervalMs: 1000,
};

/** Every KAUDIT_* variable the agent reads; documented in docs/agent.md. */
export const ENV_VARS = {
  KAUDIT_CLUSTER: 'cluster',
  KAUDIT_RUN_PATH: 'run_path',
  KAUDIT_DATA: 'data',
  KAUDIT_ADMIN_LISTEN: 'admin.listen',
  KAUDIT_LOGS_ENABLED: 'logs_enabled',
  KAUDIT_MAX_EVENT_BYTES: 'max_event_bytes',
  KAUDIT_REDACT: 'redact',
  KAUDIT_RETENTION_DAYS: 'retention_days',
  KAUDIT_STORE_MEMORY_LIMIT: 'store_memory_limit',
  KAUDIT_STORE_TRIM_MEMORY: 'store_trim_memory',
} as const;

const TOP_KEYS = new Set([
  'cluster',
  'run_path',
  'data',
  'admin',
  'logs_enabled',
  'max_event_bytes',
  'max_line_bytes',
  'redact',
  'retention_days',
  'store_memory_limit',
  'store_trim_memory',
  'pipeline',
  'logs',
]);
const FILE_KEYS = new Set(['type', 'name', 'path', 'source', 'service', 'start_position']);
const WEBHOOK_KEYS = new Set([
  'type',
  'name',
  'listen',
  'path',
  'source',
  'service',
  'tls',
  'token_file',
  'max_body_bytes',
]);
const TLS_KEYS = new Set(['cert', 'key', 'client_ca', 'allowed_names']);
const PIPELINE_KEYS = new Set(['queue_events', 'queue_bytes', 'batch_events', 'flush_interval_ms']);

export interface ParseConfigOptions {
  /** Shown in diagnostics and used to resolve relative paths. */
  file?: string;
  env?: Record<string, string | undefined>;
  /** Checks that files named by the config exist; off for pure validation. */
  checkFiles?: boolean;
}

export interface ParsedConfig {
  config: AgentConfig | undefined;
  diagnostics: Diagnostic[];
}

/** Parses and validates agent YAML; every problem is reported, each with its line. */
export function parseAgentConfig(text: string, options: ParseConfigOptions = {}): ParsedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const diagnostics: Diagnostic[] = [];
  const file = options.file;
  const baseDir = file ? dirname(resolve(file)) : process.cwd();
  const env = options.env ?? {};

  const at = (node: Node | null | undefined): { line?: number; column?: number } => {
    const range = node?.range;
    if (!range) return {};
    const pos = lineCounter.linePos(range[0]);
    return { line: pos.line, column: pos.col };
  };
  const report = (path: string, message: string, node?: Node | null, hint?: string): void => {
    const d: Diagnostic = { severity: 'error', code: 'KAUDIT_CONFIG_INVALID', message, path };
    if (file !== undefined) d.file = file;
    Object.assign(d, at(node));
    if (hint !== undefined) d.hint = hint;
    diagnostics.push(d);
  };

  for (const e of doc.errors) {
    const d: Diagnostic = {
      severity: 'error',
      code: 'KAUDIT_CONFIG_YAML',
      message: e.message.split('\n')[0] ?? '',
    };
    if (file !== undefined) d.file = file;
    const pos = e.linePos?.[0];
    if (pos) {
      d.line = pos.line;
      d.column = pos.col;
    }
    diagnostics.push(d);
  }
  if (diagnostics.length > 0) return { config: undefined, diagnostics };

  const root = doc.contents;
  if (root !== null && !isMap(root)) {
    report('', 'the config must be a mapping of keys such as cluster, run_path, data, logs', root);
    return { config: undefined, diagnostics };
  }

  const get = (map: Node | null | undefined, key: string): Node | undefined => {
    if (!isMap(map)) return undefined;
    for (const pair of map.items) {
      if (isScalar(pair.key) && pair.key.value === key) return (pair.value as Node | null) ?? undefined;
    }
    return undefined;
  };
  const unknownKeys = (map: Node | null | undefined, allowed: Set<string>, prefix: string): void => {
    if (!isMap(map)) return;
    for (const pair of map.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      if (!allowed.has(k)) {
        report(
          `${prefix}${k}`,
          `unknown key "${k}"`,
          pair.key as Node,
          `allowed here: ${[...allowed].join(', ')}`,
        );
      }
    }
  };
  const str = (node: Node | undefined, path: string): string | undefined => {
    if (node === undefined) return undefined;
    if (isScalar(node) && (typeof node.value === 'string' || typeof node.value === 'number')) {
      const v = String(node.value);
      if (v.trim() === '') {
        report(path, 'must not be empty', node);
        return undefined;
      }
      return v;
    }
    report(path, 'must be a string', node);
    return undefined;
  };
  const int = (node: Node | undefined, path: string, min: number): number | undefined => {
    if (node === undefined) return undefined;
    const v = isScalar(node) ? node.value : undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      report(
        path,
        `must be an integer >= ${min}, got ${isScalar(node) ? JSON.stringify(v) : 'a collection'}`,
        node,
      );
      return undefined;
    }
    return v;
  };
  const bool = (node: Node | undefined, path: string): boolean | undefined => {
    if (node === undefined) return undefined;
    const v = isScalar(node) ? node.value : undefined;
    if (typeof v !== 'boolean') {
      report(path, 'must be true or false', node);
      return undefined;
    }
    return v;
  };
  const pathOf = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const checkFile = (p: string, field: string, node: Node | undefined): void => {
    if (options.checkFiles && !existsSync(p)) report(field, `file not found: ${p}`, node);
  };

  unknownKeys(root, TOP_KEYS, '');

  const envReport = (name: string, message: string): void => {
    diagnostics.push({ severity: 'error', code: 'KAUDIT_CONFIG_ENV', message: `${name}: ${message}` });
  };
  const envInt = (name: string, min: number): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min) {
      envReport(name, `must be an integer >= ${min}, got "${raw}"`);
      return undefined;
    }
    return v;
  };
  const envBool = (name: string): boolean | undefined => {
    const raw = env[name]?.toLowerCase();
    if (raw === undefined || raw === '') return undefined;
    if (['true', '1', 'yes'].includes(raw)) return true;
    if (['false', '0', 'no'].includes(raw)) return false;
    envReport(name, `must be true or false, got "${env[name]}"`);
    return undefined;
  };
  const envStr = (name: string): string | undefined => {
    const raw = env[name];
    return raw === undefined || raw === '' ? undefined : raw;
  };

  const cluster = envStr('KAUDIT_CLUSTER') ?? str(get(root, 'cluster'), 'cluster') ?? 'default';
  const runPathRaw = envStr('KAUDIT_RUN_PATH') ?? str(get(root, 'run_path'), 'run_path');
  const dataRaw = envStr('KAUDIT_DATA') ?? str(get(root, 'data'), 'data');
  if (runPathRaw === undefined && get(root, 'run_path') === undefined) {
    report(
      'run_path',
      'is required: the directory where checkpoints are kept',
      root,
      'or set KAUDIT_RUN_PATH',
    );
  }
  if (dataRaw === undefined && get(root, 'data') === undefined) {
    report('data', 'is required: the directory of the store', root, 'or set KAUDIT_DATA');
  }

  const adminNode = get(root, 'admin');
  unknownKeys(adminNode, new Set(['listen']), 'admin.');
  const adminRaw = envStr('KAUDIT_ADMIN_LISTEN') ?? str(get(adminNode, 'listen'), 'admin.listen');
  let admin = parseListen(DEFAULT_ADMIN_LISTEN) ?? { host: '127.0.0.1', port: 5599 };
  if (adminRaw !== undefined) {
    const parsed = parseListen(adminRaw);
    if (parsed === undefined)
      report('admin.listen', `must be host:port, got "${adminRaw}"`, get(adminNode, 'listen'));
    else admin = parsed;
  }

  const logsEnabled =
    envBool('KAUDIT_LOGS_ENABLED') ?? bool(get(root, 'logs_enabled'), 'logs_enabled') ?? true;
  const maxEventBytes =
    envInt('KAUDIT_MAX_EVENT_BYTES', 1024) ??
    int(get(root, 'max_event_bytes'), 'max_event_bytes', 1024) ??
    DEFAULT_MAX_EVENT_BYTES;
  const maxLineBytes = int(get(root, 'max_line_bytes'), 'max_line_bytes', 1024) ?? DEFAULT_MAX_LINE_BYTES;
  if (maxLineBytes < maxEventBytes) {
    report(
      'max_line_bytes',
      `must be at least max_event_bytes (${maxEventBytes})`,
      get(root, 'max_line_bytes'),
    );
  }
  const redact = envBool('KAUDIT_REDACT') ?? bool(get(root, 'redact'), 'redact') ?? true;
  const retentionDays =
    envInt('KAUDIT_RETENTION_DAYS', 1) ?? int(get(root, 'retention_days'), 'retention_days', 1);
  const storeTrimMemory =
    envBool('KAUDIT_STORE_TRIM_MEMORY') ?? bool(get(root, 'store_trim_memory'), 'store_trim_memory') ?? false;
  const memoryRaw =
    envStr('KAUDIT_STORE_MEMORY_LIMIT') ?? str(get(root, 'store_memory_limit'), 'store_memory_limit');
  if (memoryRaw !== undefined && !/^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i.test(memoryRaw)) {
    report(
      'store_memory_limit',
      `must be a size such as 512MB or 2GB, got "${memoryRaw}"`,
      get(root, 'store_memory_limit'),
    );
  }

  const pipeNode = get(root, 'pipeline');
  unknownKeys(pipeNode, PIPELINE_KEYS, 'pipeline.');
  const pipeline: PipelineConfig = {
    queueEvents:
      int(get(pipeNode, 'queue_events'), 'pipeline.queue_events', 1) ?? DEFAULT_PIPELINE.queueEvents,
    queueBytes:
      int(get(pipeNode, 'queue_bytes'), 'pipeline.queue_bytes', 1024) ?? DEFAULT_PIPELINE.queueBytes,
    batchEvents:
      int(get(pipeNode, 'batch_events'), 'pipeline.batch_events', 1) ?? DEFAULT_PIPELINE.batchEvents,
    flushIntervalMs:
      int(get(pipeNode, 'flush_interval_ms'), 'pipeline.flush_interval_ms', 1) ??
      DEFAULT_PIPELINE.flushIntervalMs,
  };

  const logs: SourceConfig[] = [];
  const logsNode = get(root, 'logs');
  const names = new Map<string, number>();
  if (logsNode !== undefined && !isSeq(logsNode)) {
    report('logs', 'must be a list of sources (- type: file ... / - type: webhook ...)', logsNode);
  } else if (isSeq(logsNode)) {
    logsNode.items.forEach((item, i) => {
      const p = `logs[${i}]`;
      const node = item as Node;
      const before = logs.length;
      if (!isMap(node)) {
        report(p, 'must be a mapping with a type: file or webhook', node);
        return;
      }
      const type = str(get(node, 'type'), `${p}.type`);
      const source = str(get(node, 'source'), `${p}.source`) ?? 'kubernetes.audit';
      const service = str(get(node, 'service'), `${p}.service`) ?? 'audit';
      const explicitName = str(get(node, 'name'), `${p}.name`);
      if (type === 'file') {
        unknownKeys(node, FILE_KEYS, `${p}.`);
        const rawPath = str(get(node, 'path'), `${p}.path`);
        if (rawPath === undefined && get(node, 'path') === undefined) {
          report(`${p}.path`, 'is required for a file source', node);
        }
        const startRaw = str(get(node, 'start_position'), `${p}.start_position`) ?? 'beginning';
        if (startRaw !== 'beginning' && startRaw !== 'end') {
          report(
            `${p}.start_position`,
            `must be beginning or end, got "${startRaw}"`,
            get(node, 'start_position'),
          );
        }
        if (rawPath !== undefined) {
          const path = pathOf(rawPath);
          logs.push({
            type: 'file',
            name: explicitName ?? path,
            path,
            source,
            service,
            startPosition: startRaw === 'end' ? 'end' : 'beginning',
          });
        }
      } else if (type === 'webhook') {
        unknownKeys(node, WEBHOOK_KEYS, `${p}.`);
        const listenRaw = str(get(node, 'listen'), `${p}.listen`);
        let listen: ListenAddress | undefined;
        if (listenRaw === undefined) {
          if (get(node, 'listen') === undefined)
            report(`${p}.listen`, 'is required for a webhook source', node);
        } else {
          listen = parseListen(listenRaw);
          if (listen === undefined)
            report(`${p}.listen`, `must be host:port, got "${listenRaw}"`, get(node, 'listen'));
        }
        const urlPath = str(get(node, 'path'), `${p}.path`) ?? '/audit';
        if (!urlPath.startsWith('/'))
          report(`${p}.path`, `must start with /, got "${urlPath}"`, get(node, 'path'));
        const tlsNode = get(node, 'tls');
        let tls: WebhookTlsConfig | undefined;
        if (tlsNode !== undefined) {
          if (!isMap(tlsNode)) report(`${p}.tls`, 'must be a mapping {cert, key, client_ca}', tlsNode);
          else {
            unknownKeys(tlsNode, TLS_KEYS, `${p}.tls.`);
            const cert = str(get(tlsNode, 'cert'), `${p}.tls.cert`);
            const key = str(get(tlsNode, 'key'), `${p}.tls.key`);
            const clientCa = str(get(tlsNode, 'client_ca'), `${p}.tls.client_ca`);
            if (cert === undefined) report(`${p}.tls.cert`, 'is required with tls', tlsNode);
            if (key === undefined) report(`${p}.tls.key`, 'is required with tls', tlsNode);
            const allowedNode = get(tlsNode, 'allowed_names');
            const allowedNames: string[] = [];
            if (allowedNode !== undefined) {
              if (!isSeq(allowedNode))
                report(`${p}.tls.allowed_names`, 'must be a list of names', allowedNode);
              else
                allowedNode.items.forEach((n, j) => {
                  const v = str(n as Node, `${p}.tls.allowed_names[${j}]`);
                  if (v !== undefined) allowedNames.push(v);
                });
              if (clientCa === undefined) {
                report(
                  `${p}.tls.allowed_names`,
                  'needs tls.client_ca to verify client certificates',
                  allowedNode,
                );
              }
            }
            if (cert !== undefined && key !== undefined) {
              tls = { cert: pathOf(cert), key: pathOf(key), allowedNames };
              checkFile(tls.cert, `${p}.tls.cert`, get(tlsNode, 'cert'));
              checkFile(tls.key, `${p}.tls.key`, get(tlsNode, 'key'));
              if (clientCa !== undefined) {
                tls.clientCa = pathOf(clientCa);
                checkFile(tls.clientCa, `${p}.tls.client_ca`, get(tlsNode, 'client_ca'));
              }
            }
          }
        }
        const tokenRaw = str(get(node, 'token_file'), `${p}.token_file`);
        const tokenFile = tokenRaw === undefined ? undefined : pathOf(tokenRaw);
        if (tokenFile !== undefined) checkFile(tokenFile, `${p}.token_file`, get(node, 'token_file'));
        if (
          tls?.clientCa === undefined &&
          tokenFile === undefined &&
          listen !== undefined &&
          !isLoopback(listen.host)
        ) {
          report(
            p,
            `a webhook listening on ${listen.host} needs tls.client_ca or token_file: anyone could write audit events`,
            node,
            'listen on 127.0.0.1 for an unauthenticated receiver',
          );
        }
        const maxBodyBytes =
          int(get(node, 'max_body_bytes'), `${p}.max_body_bytes`, 1024) ?? DEFAULT_WEBHOOK_MAX_BODY_BYTES;
        if (listen !== undefined) {
          const w: WebhookSourceConfig = {
            type: 'webhook',
            name: explicitName ?? `webhook ${listen.host}:${listen.port}${urlPath}`,
            listen,
            path: urlPath,
            source,
            service,
            maxBodyBytes,
          };
          if (tls !== undefined) w.tls = tls;
          if (tokenFile !== undefined) w.tokenFile = tokenFile;
          logs.push(w);
        }
      } else if (type !== undefined) {
        report(`${p}.type`, `must be file or webhook, got "${type}"`, get(node, 'type'));
      } else if (get(node, 'type') === undefined) {
        report(`${p}.type`, 'is required: file or webhook', node);
      }
      const last = logs[logs.length - 1];
      if (last !== undefined && logs.length > before) {
        const prev = names.get(last.name);
        if (prev !== undefined) {
          report(`${p}.name`, `duplicates the name of logs[${prev}]; give each source a distinct name`, node);
        }
        names.set(last.name, i);
      }
    });
  }

  if (diagnostics.length > 0 || runPathRaw === undefined || dataRaw === undefined) {
    return { config: undefined, diagnostics };
  }
  const config: AgentConfig = {
    cluster,
    runPath: pathOf(runPathRaw),
    dataDir: pathOf(dataRaw),
    logsEnabled,
    admin,
    maxEventBytes,
    maxLineBytes,
    redact,
    storeTrimMemory,
    pipeline,
    logs,
  };
  if (file !== undefined) config.file = file;
  if (retentionDays !== undefined) config.retentionDays = retentionDays;
  if (memoryRaw !== undefined) config.storeMemoryLimit = memoryRaw;
  return { config, diagnostics };
}

/** Reads, parses and validates a config file; throws one UserError listing every problem. */
export function loadAgentConfig(
  file: string,
  env: Record<string, string | undefined> = process.env,
): AgentConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new UserError(
      'KAUDIT_CONFIG_NOT_FOUND',
      `cannot read config ${file}: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  const { config, diagnostics } = parseAgentConfig(text, { file, env, checkFiles: true });
  if (config === undefined || diagnostics.length > 0) {
    throw new UserError(
      'KAUDIT_CONFIG_INVALID',
      `${diagnostics.length} problem${diagnostics.length === 1 ? '' : 's'} in ${file}:\n${diagnostics
        .map((d) => `  ${formatDiagnostic(d)}`)
        .join('\n')}`,
    );
  }
  return config;
}

export function parseListen(text: string): ListenAddress | undefined {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:\s]*)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  const host = m[1] ?? (m[2] === '' || m[2] === undefined ? '0.0.0.0' : m[2]);
  return { host, port };
}

export function formatListen(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
