import type { z } from 'zod';
import type { Diagnostic } from '../../model/errors.js';
import type { CheckpointRegistry } from '../checkpoint-registry.js';
import type { Clock } from '../clock.js';
import type { FileSourceStatus } from '../file-source.js';
import type { Logger } from '../logger.js';
import type { PipelineItem, Preparer } from '../pipeline.js';
import type { WebhookStatus } from '../webhook-source.js';

export type SourceStatus = FileSourceStatus | WebhookStatus;

/** A running source: it reads or receives events and offers them to the pipeline. */
export interface Source {
  readonly name: string;
  start(): Promise<void>;
  /** Stops taking input now; `stop()` waits for what is in hand. */
  requestStop(): void;
  stop(): Promise<void>;
  status(): SourceStatus;
}

/** What every source may use. */
export interface SourceDeps {
  registry: CheckpointRegistry;
  /** Waits for room (files). */
  offer: (item: PipelineItem) => Promise<void>;
  /** Queues now or says no (webhooks answer 429). */
  tryOffer: (item: PipelineItem) => boolean;
  prepare: Preparer;
  maxLineBytes: number;
  log: Logger;
  /** Test knobs of the file tailer. */
  scanIntervalMs?: number;
  rotatedIdleMs?: number;
  /** Time for polling, scans and backoff (default: the system clock). */
  clock?: Clock;
}

/** Helpers a source type gets while its config entry is read. */
export interface ConfigureContext {
  /** Resolves a path of the config against the config file's directory. */
  pathOf(p: string): string;
  /** Reports a missing file (when the loader checks files). */
  checkFile(path: string, field: string): void;
  /** A problem with a field of this entry (`tls.client_ca`, or '' for the entry itself). */
  report(field: string, message: string, hint?: string): void;
  diagnostics: Diagnostic[];
}

/**
 * One kind of `logs:` entry: the schema of its YAML mapping (snake_case keys), how it becomes a typed
 * config, and how it runs. Adding a kind touches its own file and the registry (sources/index.ts).
 */
export interface SourceType<
  Raw = unknown,
  Config extends { type: string; name: string } = { type: string; name: string },
> {
  readonly type: string;
  readonly schema: z.ZodType<Raw>;
  configure(raw: Raw, ctx: ConfigureContext): Config | undefined;
  create(config: Config, deps: SourceDeps): Source;
}
