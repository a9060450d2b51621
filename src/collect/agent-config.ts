import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { type Diagnostic, formatDiagnostic, UserError } from '../model/errors.js';
import { DEFAULT_MAX_EVENT_BYTES } from '../model/prepare.js';
import { diagnostic, type ValidateContext, validate } from '../model/schema-diagnostics.js';
import { readYaml } from '../model/yaml-input.js';
import { type ListenAddress, parseListen } from './config/listen.js';
import type { SourceConfig } from './config/source-config.js';
import { SOURCE_TYPES } from './sources/index.js';

export const DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_ADMIN_LISTEN = '127.0.0.1:5599';

export type { ListenAddress } from './config/listen.js';
export { formatListen, parseListen } from './config/listen.js';
export type {
  FileSourceConfig,
  SourceConfig,
  WebhookSourceConfig,
  WebhookTlsConfig,
} from './config/source-config.js';
export { DEFAULT_WEBHOOK_MAX_BODY_BYTES } from './config/source-config.js';

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
  /** The embedded store's memory limit, e.g. `512MB`; the store's default when unset. */
  storeMemoryLimit?: string;
  /** Have the embedded store give memory back to the system after each import: less RSS, slower writes. */
  storeTrimMemory: boolean;
  pipeline: PipelineConfig;
  logs: SourceConfig[];
  /** Live detection; undefined: off. */
  detect?: DetectConfig;
  /** A store other than the embedded one in dataDir (store/registry.ts StoreSection); password_file resolved. */
  store?: StoreConfig;
  /** `forward:` entries, each validated by its sink type (src/forward/sink-types.ts). */
  forward: unknown[];
}

export const DEFAULT_PIPELINE: PipelineConfig = {
  // Four batches and a source's next item (2,000 events): the three the embedded store has in hand
  // (two importing, one staged) count against the queue until stored, and the next must still be
  // able to fill to a whole batch meanwhile.
  queueEvents: 69_632,
  queueBytes: 192 * 1024 * 1024,
  // One row group of the embedded store (its ROW_GROUP_ROWS): a full batch is written
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

const secretRef = z
  .object({ file: z.string().min(1).optional(), env: z.string().min(1).optional() })
  .strict()
  .refine((v) => (v.file === undefined) !== (v.env === undefined), {
    message: 'give exactly one of file or env',
  });

/** `detect:`: live detection in the agent (the built-in pack, the user's rules and Sigma rules). */
const detectSchema = z
  .object({
    enabled: z.boolean().default(true),
    builtin: z.boolean().default(true),
    rules: z.array(z.string().min(1)).default([]),
    sigma: z.array(z.string().min(1)).default([]),
    /** Rule ids left out. */
    disable: z.array(z.string().min(1)).default([]),
    allow: z
      .object({
        subjects: z.array(z.string()).default([]),
        groups: z.array(z.string()).default([]),
        namespaces: z.array(z.string()).default([]),
        images: z.array(z.string()).default([]),
        userAgents: z.array(z.string()).default([]),
        sourceCidrs: z.array(z.string()).default([]),
      })
      .strict()
      .optional(),
    outputs: z
      .array(
        z.discriminatedUnion('type', [
          z.object({ type: z.literal('stdout') }).strict(),
          z.object({ type: z.literal('file'), path: z.string().min(1) }).strict(),
          z
            .object({ type: z.literal('webhook'), url: z.string().min(1), token: secretRef.optional() })
            .strict(),
          z.object({ type: z.literal('slack'), url: secretRef }).strict(),
        ]),
      )
      .default([]),
    /** At most this many alerts per rule per minute; more are counted, not sent. */
    max_alerts_per_rule_per_minute: z.number().int().min(1).default(60),
  })
  .strict();

export type DetectConfig = z.output<typeof detectSchema>;

/** `detect:` as an empty section gives it: the built-in pack, no outputs but the alert log. */
export function defaultDetectConfig(): DetectConfig {
  return detectSchema.parse({});
}

/** `store:` (docs/clickhouse.md): ClickHouse instead of the embedded store in `data`. */
const storeSchema = z
  .object({
    type: z.literal('clickhouse'),
    url: z.string().min(1),
    database: z.string().min(1).optional(),
    username: z.string().min(1).optional(),
    password_file: z.string().min(1).optional(),
    table: z.string().min(1).optional(),
    distributed: z.string().min(1).optional(),
  })
  .strict();

export type StoreConfig = z.output<typeof storeSchema>;

const SIZE = /^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i;

/** The top of kaudit.yaml; each `logs:` entry is checked by the schema of its type (sources/). */
const topSchema = z
  .object({
    cluster: z.string().min(1).optional(),
    run_path: z.string().min(1),
    data: z.string().min(1),
    admin: z
      .object({ listen: z.string().min(1).optional() })
      .strict()
      .optional(),
    logs_enabled: z.boolean().default(true),
    max_event_bytes: z.number().int().min(1024).default(DEFAULT_MAX_EVENT_BYTES),
    max_line_bytes: z.number().int().min(1024).default(DEFAULT_MAX_LINE_BYTES),
    redact: z.boolean().default(true),
    retention_days: z.number().int().min(1).optional(),
    store_memory_limit: z
      .string()
      .refine((v) => SIZE.test(v), { message: 'must be a size such as 512MB or 2GB' })
      .optional(),
    store_trim_memory: z.boolean().default(false),
    pipeline: z
      .object({
        queue_events: z.number().int().min(1).default(DEFAULT_PIPELINE.queueEvents),
        queue_bytes: z.number().int().min(1024).default(DEFAULT_PIPELINE.queueBytes),
        batch_events: z.number().int().min(1).default(DEFAULT_PIPELINE.batchEvents),
        flush_interval_ms: z.number().int().min(1).default(DEFAULT_PIPELINE.flushIntervalMs),
      })
      .strict()
      .default({
        queue_events: DEFAULT_PIPELINE.queueEvents,
        queue_bytes: DEFAULT_PIPELINE.queueBytes,
        batch_events: DEFAULT_PIPELINE.batchEvents,
        flush_interval_ms: DEFAULT_PIPELINE.flushIntervalMs,
      }),
    logs: z.array(z.unknown()).default([]),
    detect: detectSchema.optional(),
    forward: z.array(z.unknown()).default([]),
    store: storeSchema.optional(),
  })
  .strict();

const HINTS: Record<string, string> = {
  run_path: 'the directory where checkpoints are kept; or set KAUDIT_RUN_PATH',
  data: 'the directory of the store; or set KAUDIT_DATA',
};

export interface ParseConfigOptions {
  /** Shown in diagnostics and used to resolve relative paths. */
  file?: string;
  env?: Record<string, string | undefined>;
  /** Checks that files named by the config exist; off for pure validation. */
  checkFiles?: boolean;
  /**
   * The schema of a `forward:` entry (src/forward/sink-types.ts, given by the caller, which owns the
   * sinks); without it the entries are kept unchecked.
   */
  forwardSchema?: z.ZodType;
}

export interface ParsedConfig {
  config: AgentConfig | undefined;
  diagnostics: Diagnostic[];
}

type EnvKind = 'string' | 'int' | 'bool';
/** KAUDIT_* variables, the key each overrides and how it is read. */
const ENV_KINDS: Record<keyof typeof ENV_VARS, EnvKind> = {
  KAUDIT_CLUSTER: 'string',
  KAUDIT_RUN_PATH: 'string',
  KAUDIT_DATA: 'string',
  KAUDIT_ADMIN_LISTEN: 'string',
  KAUDIT_LOGS_ENABLED: 'bool',
  KAUDIT_MAX_EVENT_BYTES: 'int',
  KAUDIT_REDACT: 'bool',
  KAUDIT_RETENTION_DAYS: 'int',
  KAUDIT_STORE_MEMORY_LIMIT: 'string',
  KAUDIT_STORE_TRIM_MEMORY: 'bool',
};

/** Applies KAUDIT_* variables over the file's values; a bad value is reported by its name. */
function applyEnv(
  doc: Record<string, unknown>,
  env: Record<string, string | undefined>,
  diagnostics: Diagnostic[],
): void {
  for (const [name, key] of Object.entries(ENV_VARS) as [keyof typeof ENV_VARS, string][]) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    let value: unknown = raw;
    const kind = ENV_KINDS[name];
    if (kind === 'int') {
      value = Number(raw);
      if (!Number.isInteger(value)) {
        diagnostics.push({
          severity: 'error',
          code: 'KAUDIT_CONFIG_ENV',
          message: `${name}: must be an integer, got "${raw}"`,
        });
        continue;
      }
    } else if (kind === 'bool') {
      const v = raw.toLowerCase();
      if (['true', '1', 'yes'].includes(v)) value = true;
      else if (['false', '0', 'no'].includes(v)) value = false;
      else {
        diagnostics.push({
          severity: 'error',
          code: 'KAUDIT_CONFIG_ENV',
          message: `${name}: must be true or false, got "${raw}"`,
        });
        continue;
      }
    }
    if (key === 'admin.listen') doc.admin = { ...(doc.admin as object | undefined), listen: value };
    else doc[key] = value;
  }
}

/** Parses and validates agent YAML; every problem is reported, each with its line and field. */
export function parseAgentConfig(text: string, options: ParseConfigOptions = {}): ParsedConfig {
  const file = options.file;
  const input = readYaml(text, file);
  if (input.diagnostics.length > 0) return { config: undefined, diagnostics: input.diagnostics };
  const ctx: ValidateContext = { input, file, hints: HINTS };
  const diagnostics: Diagnostic[] = [];
  const baseDir = file ? dirname(resolve(file)) : process.cwd();
  const pathOf = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));

  const value = input.value ?? {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    diagnostics.push(
      diagnostic(ctx, [], 'the config must be a mapping of keys such as cluster, run_path, data, logs'),
    );
    return { config: undefined, diagnostics };
  }
  const doc = { ...(value as Record<string, unknown>) };
  applyEnv(doc, options.env ?? {}, diagnostics);
  const top = validate(topSchema, doc, [], ctx, diagnostics);

  let admin = parseListen(DEFAULT_ADMIN_LISTEN) as ListenAddress;
  const adminText = top?.admin?.listen;
  if (adminText !== undefined) {
    const parsed = parseListen(adminText);
    if (parsed === undefined)
      diagnostics.push(diagnostic(ctx, ['admin', 'listen'], `must be host:port, got "${adminText}"`));
    else admin = parsed;
  }
  if (top !== undefined && top.max_line_bytes < top.max_event_bytes)
    diagnostics.push(
      diagnostic(ctx, ['max_line_bytes'], `must be at least max_event_bytes (${top.max_event_bytes})`),
    );

  const logs: SourceConfig[] = [];
  const names = new Map<string, number>();
  const entries = Array.isArray(doc.logs) ? doc.logs : [];
  entries.forEach((entry, i) => {
    const at = ['logs', i];
    const type = (entry as { type?: unknown } | null)?.type;
    const kind = typeof type === 'string' ? SOURCE_TYPES.get(type) : undefined;
    const kinds = [...SOURCE_TYPES.keys()].join(' or ');
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      diagnostics.push(diagnostic(ctx, at, `must be a mapping with a type: ${kinds}`));
      return;
    }
    if (kind === undefined) {
      diagnostics.push(
        diagnostic(
          ctx,
          [...at, 'type'],
          type === undefined ? `is required: ${kinds}` : `must be ${kinds}, got ${JSON.stringify(type)}`,
        ),
      );
      return;
    }
    const raw = validate(kind.schema, entry, at, ctx, diagnostics);
    if (raw === undefined) return;
    const config = kind.configure(raw, {
      pathOf,
      checkFile: (p, field) => {
        if (options.checkFiles && !existsSync(p))
          diagnostics.push(diagnostic(ctx, [...at, ...field.split('.')], `file not found: ${p}`));
      },
      report: (field, message, hint) =>
        diagnostics.push(diagnostic(ctx, field === '' ? at : [...at, ...field.split('.')], message, hint)),
      diagnostics,
    }) as SourceConfig | undefined;
    if (config === undefined) return;
    const prev = names.get(config.name);
    if (prev !== undefined)
      diagnostics.push(
        diagnostic(
          ctx,
          [...at, 'name'],
          `duplicates the name of logs[${prev}]; give each source a distinct name`,
        ),
      );
    names.set(config.name, i);
    logs.push(config);
  });

  const forward: unknown[] = [];
  if (top !== undefined)
    top.forward.forEach((entry, i) => {
      if (options.forwardSchema === undefined) forward.push(entry);
      else {
        const v = validate(options.forwardSchema, entry, ['forward', i], ctx, diagnostics);
        if (v !== undefined) forward.push(v);
      }
    });

  diagnostics.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  if (diagnostics.length > 0 || top === undefined) return { config: undefined, diagnostics };
  const config: AgentConfig = {
    cluster: top.cluster ?? 'default',
    runPath: pathOf(top.run_path),
    dataDir: pathOf(top.data),
    logsEnabled: top.logs_enabled,
    admin,
    maxEventBytes: top.max_event_bytes,
    maxLineBytes: top.max_line_bytes,
    redact: top.redact,
    storeTrimMemory: top.store_trim_memory,
    pipeline: {
      queueEvents: top.pipeline.queue_events,
      queueBytes: top.pipeline.queue_bytes,
      batchEvents: top.pipeline.batch_events,
      flushIntervalMs: top.pipeline.flush_interval_ms,
    },
    logs,
    forward,
  };
  // Detection is on unless the config turns it off: the built-in pack costs little and is why
  // many collect audit logs at all.
  const detect = top.detect ?? detectSchema.parse({});
  if (detect.enabled) config.detect = detect;
  if (file !== undefined) config.file = file;
  if (top.retention_days !== undefined) config.retentionDays = top.retention_days;
  if (top.store_memory_limit !== undefined) config.storeMemoryLimit = top.store_memory_limit;
  if (top.store !== undefined) {
    const { password_file, ...store } = top.store;
    config.store = password_file === undefined ? store : { ...store, password_file: pathOf(password_file) };
  }
  return { config, diagnostics };
}

/** Reads, parses and validates a config file; throws one UserError listing every problem. */
export function loadAgentConfig(
  file: string,
  env: Record<string, string | undefined> = process.env,
  forwardSchema?: z.ZodType,
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
  const { config, diagnostics } = parseAgentConfig(text, {
    file,
    env,
    checkFiles: true,
    ...(forwardSchema === undefined ? {} : { forwardSchema }),
  });
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
