/**
 * The `forward:` list of the agent's config: one entry per platform, each with a `type`, its
 * endpoint, credentials from a file or an environment variable (never in the config itself), and
 * the filters every sink has (`policy:`, `include:`, `exclude:`). Adding a platform touches its
 * encoder and this table.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { Logger } from '../collect/logger.js';
import type { Sink } from '../collect/sinks.js';
import { UserError } from '../model/errors.js';
import { loadPolicyOrThrow } from '../policy/load.js';
import { checkBulk, type Delivery } from './deliver.js';
import { datadogEncoder } from './encoders/datadog.js';
import { elasticsearchEncoder } from './encoders/elasticsearch.js';
import type { Encoder } from './encoders/encoder.js';
import { httpEncoder } from './encoders/http.js';
import { lokiEncoder } from './encoders/loki.js';
import { otlpEncoder } from './encoders/otlp.js';
import { splunkEncoder } from './encoders/splunk.js';
import type { OutgoingEvent } from './event-fields.js';
import { type FieldMatch, Forwarder } from './forwarder.js';
import { newChannel, splunkAck } from './splunk-ack.js';
import { SyslogSink } from './syslog.js';

const secret = z
  .object({ file: z.string().min(1).optional(), env: z.string().min(1).optional() })
  .strict()
  .refine((s) => (s.file === undefined) !== (s.env === undefined), {
    message: 'give exactly one of file or env',
  });

const match = z
  .object({
    cluster: z.array(z.string()).optional(),
    verb: z.array(z.string()).optional(),
    namespace: z.array(z.string()).optional(),
    resource: z.array(z.string()).optional(),
    user: z.array(z.string()).optional(),
  })
  .strict();

const common = {
  name: z.string().min(1).optional(),
  policy: z.string().min(1).optional(),
  include: match.optional(),
  exclude: match.optional(),
};

export const forwardSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('datadog'),
      site: z.string().default('datadoghq.com'),
      url: z.string().url().optional(),
      api_key: secret,
      tags: z.array(z.string()).default([]),
      ...common,
    })
    .strict(),
  z.object({ type: z.literal('http'), url: z.string().url(), token: secret.optional(), ...common }).strict(),
  z
    .object({
      type: z.literal('loki'),
      url: z.string().url(),
      tenant: z.string().optional(),
      username: z.string().optional(),
      password: secret.optional(),
      ...common,
    })
    .strict(),
  z
    .object({
      type: z.literal('splunk'),
      url: z.string().url(),
      token: secret,
      sourcetype: z.string().optional(),
      index: z.string().optional(),
      /** The HEC token has indexer acknowledgement on: wait for it, send again when it does not come. */
      ack: z.boolean().default(false),
      ack_timeout_seconds: z.number().int().min(1).default(120),
      ...common,
    })
    .strict(),
  z
    .object({
      type: z.literal('elasticsearch'),
      url: z.string().url(),
      index: z.string().optional(),
      api_key: secret.optional(),
      username: z.string().optional(),
      password: secret.optional(),
      ...common,
    })
    .strict(),
  z
    .object({
      type: z.literal('otlp'),
      url: z.string().url(),
      headers: z.record(z.string(), z.string()).default({}),
      /** OTLP/HTTP's two encodings; collectors take both, protobuf is the smaller and the default. */
      encoding: z.enum(['protobuf', 'json']).default('protobuf'),
      ...common,
    })
    .strict(),
  z
    .object({
      type: z.literal('syslog'),
      address: z.string().regex(/^[^:\s]+:\d{1,5}$/, 'must be host:port'),
      tls: z
        .object({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional() })
        .strict()
        .optional(),
      ...common,
    })
    .strict(),
]);

export type ForwardConfig = z.output<typeof forwardSchema>;

export interface ForwardDeps {
  log: Logger;
  /** Resolves a path of the config. */
  pathOf: (p: string) => string;
  env: Record<string, string | undefined>;
  deadLetter: (sink: string, events: readonly OutgoingEvent[], reason: string) => Promise<void>;
}

/** A `{file}` or `{env}` secret of the config; a missing one is a config error naming the field. */
export function readSecret(
  s: { file?: string | undefined; env?: string | undefined },
  field: string,
  deps: Pick<ForwardDeps, 'env' | 'pathOf'>,
): string {
  if (s.env !== undefined) {
    const v = deps.env[s.env];
    if (v === undefined || v === '')
      throw new UserError('KAUDIT_CONFIG_INVALID', `${field}: the environment variable ${s.env} is not set`);
    return v;
  }
  const file = deps.pathOf(s.file ?? '');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new UserError(
      'KAUDIT_CONFIG_INVALID',
      `${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
}

function trimSlash(u: string): string {
  return u.replace(/\/+$/, '');
}

/** A running sink for one `forward:` entry. */
export function createForwarder(c: ForwardConfig, deps: ForwardDeps): Sink {
  const name = c.name ?? c.type;
  if (c.type === 'syslog') {
    const [host = '', port = '0'] = c.address.split(':');
    const tls =
      c.tls === undefined
        ? undefined
        : {
            ...(c.tls.ca === undefined ? {} : { ca: readFileSync(deps.pathOf(c.tls.ca)) }),
            ...(c.tls.cert === undefined ? {} : { cert: readFileSync(deps.pathOf(c.tls.cert)) }),
            ...(c.tls.key === undefined ? {} : { key: readFileSync(deps.pathOf(c.tls.key)) }),
          };
    return new SyslogSink({
      name,
      host,
      port: Number(port),
      log: deps.log,
      ...(tls === undefined ? {} : { tls }),
    });
  }
  let url: string;
  let encoder: Encoder;
  let check: typeof checkBulk | undefined;
  let confirm: ((answer: string) => Promise<Delivery>) | undefined;
  switch (c.type) {
    case 'datadog':
      url = c.url ?? `https://http-intake.logs.${c.site}/api/v2/logs`;
      encoder = datadogEncoder({ apiKey: readSecret(c.api_key, `${name}.api_key`, deps), tags: c.tags });
      break;
    case 'http':
      url = c.url;
      encoder = httpEncoder(
        c.token === undefined ? {} : { token: readSecret(c.token, `${name}.token`, deps) },
      );
      break;
    case 'loki':
      url = `${trimSlash(c.url)}/loki/api/v1/push`;
      encoder = lokiEncoder({
        ...(c.tenant === undefined ? {} : { tenant: c.tenant }),
        ...(c.username === undefined ? {} : { username: c.username }),
        ...(c.password === undefined ? {} : { password: readSecret(c.password, `${name}.password`, deps) }),
      });
      break;
    case 'splunk': {
      url = `${trimSlash(c.url)}/services/collector/event`;
      const token = readSecret(c.token, `${name}.token`, deps);
      const channel = newChannel();
      encoder = splunkEncoder({
        token,
        ...(c.ack ? { channel } : {}),
        ...(c.sourcetype === undefined ? {} : { sourcetype: c.sourcetype }),
        ...(c.index === undefined ? {} : { index: c.index }),
      });
      if (c.ack)
        confirm = splunkAck({
          url: trimSlash(c.url),
          token,
          channel,
          timeoutMs: c.ack_timeout_seconds * 1000,
        });
      break;
    }
    case 'elasticsearch':
      url = `${trimSlash(c.url)}/_bulk`;
      check = checkBulk;
      encoder = elasticsearchEncoder({
        ...(c.index === undefined ? {} : { index: c.index }),
        ...(c.api_key === undefined ? {} : { apiKey: readSecret(c.api_key, `${name}.api_key`, deps) }),
        ...(c.username === undefined ? {} : { username: c.username }),
        ...(c.password === undefined ? {} : { password: readSecret(c.password, `${name}.password`, deps) }),
      });
      break;
    case 'otlp':
      url = `${trimSlash(c.url)}/v1/logs`;
      encoder = otlpEncoder({ headers: c.headers, encoding: c.encoding });
      break;
  }
  const policy =
    c.policy === undefined
      ? undefined
      : loadPolicyOrThrow(readFileSync(deps.pathOf(c.policy), 'utf8'), { file: c.policy });
  return new Forwarder({
    name,
    type: c.type,
    url,
    encoder,
    ...(check === undefined ? {} : { check }),
    ...(confirm === undefined ? {} : { confirm }),
    ...(policy === undefined ? {} : { policy }),
    ...(c.include === undefined ? {} : { include: c.include as FieldMatch }),
    ...(c.exclude === undefined ? {} : { exclude: c.exclude as FieldMatch }),
    deadLetter: (events, reason) => deps.deadLetter(name, events, reason),
    log: deps.log,
  });
}
