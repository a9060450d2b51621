import type { ListenAddress } from './listen.js';

export const DEFAULT_WEBHOOK_MAX_BODY_BYTES = 12 * 1024 * 1024;

/**
 * How the webhook receiver bounds slow, idle and greedy clients (see docs/security.md). Every
 * field has a default; the config names them in snake_case (`max_connections`, `headers_timeout_ms`).
 */
export interface WebhookLimits {
  /** Time a client has to send its request headers (Node's headersTimeout; also the TLS handshake). */
  headersTimeoutMs: number;
  /** Time a client has to send a whole request, headers and body. */
  requestTimeoutMs: number;
  /** A body that sends no bytes for this long is answered 408 and its connection closed. */
  bodyIdleMs: number;
  /** Connections open at once; more are refused by the socket layer. */
  maxConnections: number;
  /** On stop, requests already in the pipeline get this long to be answered before their sockets are closed. */
  stopGraceMs: number;
  /** Bytes of bodies held at once, all requests together, compressed and decompressed; past it, 429. */
  maxBufferedBytes: number;
  /** A gzip body's size once decompressed; past it, 413. */
  maxDecompressedBytes: number;
}

/** Bodies held at once by default: this many max_body_bytes. */
export const WEBHOOK_BUFFERED_BODIES_FACTOR = 8;

export const DEFAULT_WEBHOOK_LIMITS: Omit<WebhookLimits, 'maxBufferedBytes' | 'maxDecompressedBytes'> = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  bodyIdleMs: 10_000,
  // kube-apiserver keeps a few connections per receiver.
  maxConnections: 256,
  stopGraceMs: 10_000,
};

/** The limits for a receiver taking bodies of up to `maxBodyBytes`, all defaults. */
export function defaultWebhookLimits(maxBodyBytes: number): WebhookLimits {
  return {
    ...DEFAULT_WEBHOOK_LIMITS,
    maxBufferedBytes: WEBHOOK_BUFFERED_BODIES_FACTOR * maxBodyBytes,
    maxDecompressedBytes: maxBodyBytes,
  };
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
  /** Defaults to defaultWebhookLimits(maxBodyBytes). */
  limits?: WebhookLimits;
}

export type SourceConfig = FileSourceConfig | WebhookSourceConfig;
