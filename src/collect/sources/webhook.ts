import { z } from 'zod';
import { isLoopbackHost, parseListen } from '../config/listen.js';
import {
  DEFAULT_WEBHOOK_LIMITS,
  DEFAULT_WEBHOOK_MAX_BODY_BYTES,
  defaultWebhookLimits,
  WEBHOOK_BUFFERED_BODIES_FACTOR,
  type WebhookLimits,
  type WebhookSourceConfig,
  type WebhookTlsConfig,
} from '../config/source-config.js';
import { WebhookServer } from '../webhook-source.js';
import type { Source, SourceType } from './source.js';

export const listenSchema = z
  .string()
  .min(1)
  .transform((text, ctx) => {
    const a = parseListen(text);
    if (a === undefined) {
      ctx.addIssue({ code: 'custom', message: `must be host:port, got "${text}"` });
      return z.NEVER;
    }
    return a;
  });

const schema = z
  .object({
    type: z.literal('webhook'),
    name: z.string().min(1).optional(),
    listen: listenSchema,
    path: z
      .string()
      .default('/audit')
      .refine((p) => p.startsWith('/'), { message: 'must start with /' }),
    source: z.string().min(1).default('kubernetes.audit'),
    service: z.string().min(1).default('audit'),
    tls: z
      .object({
        cert: z.string().min(1),
        key: z.string().min(1),
        client_ca: z.string().min(1).optional(),
        allowed_names: z.array(z.string().min(1)).default([]),
      })
      .strict()
      .refine((t) => t.allowed_names.length === 0 || t.client_ca !== undefined, {
        message: 'allowed_names needs client_ca to verify client certificates',
        path: ['allowed_names'],
      })
      .optional(),
    token_file: z.string().min(1).optional(),
    max_body_bytes: z.number().int().min(1024).default(DEFAULT_WEBHOOK_MAX_BODY_BYTES),
    // Default: max_body_bytes, as before these were configurable.
    max_decompressed_bytes: z.number().int().min(1024).optional(),
    // Default: 8 x max_body_bytes.
    max_buffered_bytes: z.number().int().min(1024).optional(),
    max_connections: z.number().int().min(1).default(DEFAULT_WEBHOOK_LIMITS.maxConnections),
    headers_timeout_ms: z.number().int().min(100).default(DEFAULT_WEBHOOK_LIMITS.headersTimeoutMs),
    request_timeout_ms: z.number().int().min(100).default(DEFAULT_WEBHOOK_LIMITS.requestTimeoutMs),
    body_idle_timeout_ms: z.number().int().min(100).default(DEFAULT_WEBHOOK_LIMITS.bodyIdleMs),
    stop_grace_ms: z.number().int().min(0).default(DEFAULT_WEBHOOK_LIMITS.stopGraceMs),
  })
  .strict()
  // Node refuses a server whose headers timeout is longer than its request timeout. `when`: checked
  // beside the other fields' problems, so that every problem is reported at once.
  .refine((w) => w.request_timeout_ms >= w.headers_timeout_ms, {
    message: 'must be at least headers_timeout_ms',
    path: ['request_timeout_ms'],
    when: (p) => validNumbers(p.value, ['request_timeout_ms', 'headers_timeout_ms']),
  })
  .refine((w) => (w.max_buffered_bytes ?? Number.POSITIVE_INFINITY) >= w.max_body_bytes, {
    message: 'must be at least max_body_bytes, or no body could be received',
    path: ['max_buffered_bytes'],
    when: (p) => validNumbers(p.value, ['max_buffered_bytes']),
  });

/** True when the fields a cross-field check reads are integers (absent ones take their defaults). */
function validNumbers(value: unknown, fields: string[]): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return fields.every((f) => v[f] === undefined || Number.isInteger(v[f]));
}

/** `type: webhook`: receives kube-apiserver's audit webhook (EventList batches). */
export const webhookSourceType: SourceType<z.output<typeof schema>, WebhookSourceConfig> = {
  type: 'webhook',
  schema,
  configure(raw, ctx) {
    let tls: WebhookTlsConfig | undefined;
    if (raw.tls !== undefined) {
      tls = {
        cert: ctx.pathOf(raw.tls.cert),
        key: ctx.pathOf(raw.tls.key),
        allowedNames: raw.tls.allowed_names,
      };
      ctx.checkFile(tls.cert, 'tls.cert');
      ctx.checkFile(tls.key, 'tls.key');
      if (raw.tls.client_ca !== undefined) {
        tls.clientCa = ctx.pathOf(raw.tls.client_ca);
        ctx.checkFile(tls.clientCa, 'tls.client_ca');
      }
    }
    const tokenFile = raw.token_file === undefined ? undefined : ctx.pathOf(raw.token_file);
    if (tokenFile !== undefined) ctx.checkFile(tokenFile, 'token_file');
    if (tls?.clientCa === undefined && tokenFile === undefined && !isLoopbackHost(raw.listen.host)) {
      ctx.report(
        '',
        `a webhook listening on ${raw.listen.host} needs tls.client_ca or token_file: anyone could write audit events`,
        'listen on 127.0.0.1 for an unauthenticated receiver',
      );
      return undefined;
    }
    const w: WebhookSourceConfig = {
      type: 'webhook',
      name: raw.name ?? `webhook ${raw.listen.host}:${raw.listen.port}${raw.path}`,
      listen: raw.listen,
      path: raw.path,
      source: raw.source,
      service: raw.service,
      maxBodyBytes: raw.max_body_bytes,
    };
    const limits: WebhookLimits = {
      headersTimeoutMs: raw.headers_timeout_ms,
      requestTimeoutMs: raw.request_timeout_ms,
      bodyIdleMs: raw.body_idle_timeout_ms,
      maxConnections: raw.max_connections,
      stopGraceMs: raw.stop_grace_ms,
      maxBufferedBytes: raw.max_buffered_bytes ?? WEBHOOK_BUFFERED_BODIES_FACTOR * raw.max_body_bytes,
      maxDecompressedBytes: raw.max_decompressed_bytes ?? raw.max_body_bytes,
    };
    // Only when one differs from its default: a config without them reads as it did before they
    // were configurable (the receiver takes defaultWebhookLimits(max_body_bytes) then).
    const defaults = defaultWebhookLimits(raw.max_body_bytes);
    if ((Object.keys(limits) as (keyof WebhookLimits)[]).some((k) => limits[k] !== defaults[k]))
      w.limits = limits;
    if (tls !== undefined) w.tls = tls;
    if (tokenFile !== undefined) w.tokenFile = tokenFile;
    return w;
  },
  create(config, deps): Source {
    const server = new WebhookServer(config, deps.prepare, deps.tryOffer, deps.log, config.limits);
    return {
      name: config.name,
      start: async () => {
        await server.start();
      },
      requestStop: () => server.requestStop(),
      stop: () => server.stop(),
      status: () => server.handler.status(),
    };
  },
};
