import type { Store } from '../store/contract.js';
import type { AgentConfig } from './agent-config.js';
import { CheckpointRegistry } from './checkpoint-registry.js';
import { type Clock, type ClockTimer, systemClock } from './clock.js';
import type { FileSourceStatus } from './file-source.js';
import type { Logger } from './logger.js';
import type { OpenFile } from './open-file.js';
import { type DeadLetterSink, Pipeline, type PipelineStats, type Preparer } from './pipeline.js';
import { FanOut, type Sink, type SinkStats } from './sinks.js';
import { SOURCE_TYPES } from './sources/index.js';
import type { Source, SourceDeps } from './sources/source.js';
import { guardStoreFile } from './store-guard.js';
import type { WebhookStatus } from './webhook-source.js';

export interface AgentOptions {
  config: AgentConfig;
  store: Store;
  prepare: Preparer;
  deadLetter: DeadLetterSink & { readonly path?: string };
  log: Logger;
  version: string;
  /** Consumers after the store: detections, forwarders. */
  sinks?: readonly Sink[];
  /** Test and bench knobs for the file sources. */
  scanIntervalMs?: number;
  rotatedIdleMs?: number;
  /** How checkpoint files are opened (fault tests inject a full disk). */
  openFile?: OpenFile;
  /** Time for the pipeline, the file sources and checkpoint commits (default: the system clock). */
  clock?: Clock;
}

export interface StoreStatus {
  backend: string;
  location: string;
  status: 'OK' | 'Error';
  error?: string;
  rows: number | null;
  oldest: string | null;
  newest: string | null;
  /** See StoreStats.tableChecks. */
  tableChecks?: number;
  /** Rows per cluster: a shared store (ClickHouse) holds the events of many clusters. */
  clusters?: { cluster: string; rows: number }[];
}

export interface AgentStatus {
  agent: {
    pid: number;
    version: string;
    cluster: string;
    startedAt: string;
    uptimeSeconds: number;
    runPath: string;
    dataDir: string;
    admin: string;
    config: string | null;
    logsEnabled: boolean;
  };
  logs: (FileSourceStatus | WebhookStatus)[];
  pipeline: PipelineStats & { deadLetterPath: string | null };
  /** The checkpoint file: when it was last written, and why the last write failed until one succeeds. */
  checkpoints: { path: string; status: 'OK' | 'Error'; error?: string; lastCommitAt: string | null };
  store: StoreStatus;
  sinks: SinkStats[];
}

/** Checkpoints are written this long after the last write ended (not on a fixed beat, so never two at once). */
export const CHECKPOINT_COMMIT_MS = 1000;

/** Sources -> pipeline -> store, with checkpoints and the local admin API. */
export class Agent {
  readonly pipeline: Pipeline;
  readonly registry: CheckpointRegistry;
  private readonly sources: Source[] = [];
  private readonly clock: Clock;
  private commitTimer: ClockTimer | undefined;
  private commitsStopped = false;
  private readonly startedAt = new Date();
  private stopping: Promise<void> | undefined;
  private readonly sinks: FanOut;
  /** Where its API listens, for `kaudit status`; set by whoever serves it. */
  adminUrl = '';

  constructor(private readonly opts: AgentOptions) {
    const { config } = opts;
    this.registry = CheckpointRegistry.open(
      config.runPath,
      opts.openFile === undefined ? {} : { openFile: opts.openFile },
    );
    // One more than the store runs at once: the next batch is staged while both imports run.
    const writesInFlight = opts.store.capabilities.parallelWrites + 1;
    const fills = (writesInFlight + 1) * config.pipeline.batchEvents;
    if (config.pipeline.queueEvents < fills)
      opts.log.warn('pipeline.queue_events holds too few events to fill batches while others are written', {
        queue_events: config.pipeline.queueEvents,
        suggested: fills,
      });
    this.clock = opts.clock ?? systemClock;
    this.sinks = new FanOut(opts.sinks ?? [], { log: opts.log });
    this.pipeline = new Pipeline({
      // A store file deleted or replaced under the agent stops acknowledgements (see store-guard.ts).
      store: guardStoreFile(opts.store).store,
      cluster: config.cluster,
      queueEvents: config.pipeline.queueEvents,
      queueBytes: config.pipeline.queueBytes,
      batchEvents: config.pipeline.batchEvents,
      flushIntervalMs: config.pipeline.flushIntervalMs,
      writesInFlight,
      deadLetter: opts.deadLetter,
      log: opts.log,
      sinks: this.sinks,
      ...(opts.clock === undefined ? {} : { clock: opts.clock }),
    });
    if (!config.logsEnabled) return;
    const deps: SourceDeps = {
      registry: this.registry,
      offer: (item) => this.pipeline.offer(item),
      tryOffer: (item) => this.pipeline.tryOffer(item),
      prepare: opts.prepare,
      maxLineBytes: config.maxLineBytes,
      log: opts.log,
      ...(opts.scanIntervalMs === undefined ? {} : { scanIntervalMs: opts.scanIntervalMs }),
      ...(opts.rotatedIdleMs === undefined ? {} : { rotatedIdleMs: opts.rotatedIdleMs }),
      ...(opts.clock === undefined ? {} : { clock: opts.clock }),
    };
    for (const source of config.logs) {
      const kind = SOURCE_TYPES.get(source.type);
      if (kind === undefined) throw new Error(`internal: no source type ${source.type}`);
      this.sources.push(kind.create(source, deps));
    }
  }

  async start(): Promise<void> {
    const { config, log } = this.opts;
    this.pipeline.start();
    for (const s of this.sources) await s.start();
    this.scheduleCommit();
    log.info('agent started', {
      cluster: config.cluster,
      sources: config.logsEnabled ? config.logs.length : 0,
      logs_enabled: config.logsEnabled,
      sinks: this.sinks.size,
      store: this.opts.store.location,
    });
  }

  private scheduleCommit(): void {
    if (this.commitsStopped) return;
    this.commitTimer = this.clock.setTimeout(() => {
      this.commitTimer = undefined;
      this.registry
        .commit()
        .catch((err: unknown) => this.opts.log.error('checkpoint write failed', { error: String(err) }))
        .finally(() => this.scheduleCommit());
    }, CHECKPOINT_COMMIT_MS);
  }

  async status(): Promise<AgentStatus> {
    const { config, store } = this.opts;
    const pipeline = this.pipeline.stats();
    const storeStatus: StoreStatus = {
      backend: store.backend,
      location: store.location,
      status: pipeline.storeError === undefined ? 'OK' : 'Error',
      rows: null,
      oldest: null,
      newest: null,
    };
    if (pipeline.storeError !== undefined) storeStatus.error = pipeline.storeError;
    try {
      const info = await withTimeout(store.info(), 5000);
      storeStatus.rows = info.rows;
      storeStatus.oldest = info.oldest;
      storeStatus.newest = info.newest;
      storeStatus.clusters = info.clusters.map((c) => ({ cluster: c.cluster, rows: c.rows }));
      const checks = info.details.tableChecks;
      if (typeof checks === 'number') storeStatus.tableChecks = checks;
    } catch (err) {
      storeStatus.status = 'Error';
      storeStatus.error = `stats: ${err instanceof Error ? err.message : String(err)}`;
    }
    return {
      agent: {
        pid: process.pid,
        version: this.opts.version,
        cluster: config.cluster,
        startedAt: this.startedAt.toISOString(),
        uptimeSeconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
        runPath: config.runPath,
        dataDir: config.dataDir,
        admin: this.adminUrl,
        config: config.file ?? null,
        logsEnabled: config.logsEnabled,
      },
      logs: this.sources.map((s) => s.status()),
      pipeline: { ...pipeline, deadLetterPath: this.opts.deadLetter.path ?? null },
      checkpoints: {
        path: this.registry.path,
        status: this.registry.lastError === undefined ? 'OK' : 'Error',
        ...(this.registry.lastError === undefined ? {} : { error: this.registry.lastError }),
        lastCommitAt: this.registry.lastCommitAt?.toISOString() ?? null,
      },
      store: storeStatus,
      sinks: this.sinks.stats(),
    };
  }

  /** Drains: sources stop, the queue is written, checkpoints committed, then the store is closed by the caller. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const { log } = this.opts;
    log.info('agent stopping: draining the pipeline');
    // Sources stop taking input while the queue drains; a reader blocked on a full queue is freed
    // when the pipeline shuts down, even if the store never recovers.
    for (const s of this.sources) s.requestStop();
    const stopped = Promise.all(this.sources.map((s) => s.stop()));
    await this.pipeline.shutdown();
    await stopped;
    this.commitsStopped = true;
    if (this.commitTimer !== undefined) this.clock.clearTimeout(this.commitTimer);
    this.registry.markDirty();
    await this.registry.commit();
    await this.sinks.shutdown();
    const s = this.pipeline.stats();
    log.info('agent stopped', {
      stored: s.eventsStored,
      duplicates: s.duplicates,
      queued_left: s.queuedEvents,
    });
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
