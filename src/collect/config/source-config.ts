import type { ListenAddress } from './listen.js';

export const DEFAULT_WEBHOOK_MAX_BODY_BYTES = 12 * 1024 * 1024;

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
