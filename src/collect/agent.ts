import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { UserError } from '../model/errors.js';
import type { Store } from '../store/store.js';
import { AdminHandler } from './admin-handler.js';
import { type AgentConfig, formatListen } from './agent-config.js';
import { CheckpointRegistry, writeFileAtomic } from './checkpoint-registry.js';
import type { FileSourceStatus } from './file-source.js';
import type { Logger } from './logger.js';
import { type DeadLetterSink, Pipeline, type PipelineStats, type Preparer } from './pipeline.js';
import { SOURCE_TYPES } from './sources/index.js';
import type { Source, SourceDeps } from './sources/source.js';
import type { WebhookStatus } from './webhook-source.js';

export interface AgentOptions {
  config: AgentConfig;
  store: Store;
  prepare: Preparer;
  deadLetter: DeadLetterSink & { readonly path?: string };
  log: Logger;
  version: string;
  /** Test and bench knobs for the file sources. */
  scanIntervalMs?: number;
  rotatedIdleMs?: number;
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
  store: StoreStatus;
}

/** What `<data>/agent.json` and `<run_path>/agent.json` hold, so other commands find the running agent. */
export interface AgentLocator {
  pid: number;
  admin: string;
  dataDir: string;
  runPath: string;
  startedAt: string;
  version: string;
  /** Bearer token of the read API; the file is written readable by the agent's user only. */
  token: string;
}

export const AGENT_FILE = 'agent.json';
const CHECKPOINT_COMMIT_MS = 1000;

/** Sources -> pipeline -> store, with checkpoints and the local admin API. */
export class Agent {
  readonly pipeline: Pipeline;
  readonly registry: CheckpointRegistry;
  private readonly sources: Source[] = [];
  private admin: http.Server | undefined;
  private adminAddress: AddressInfo | undefined;
  private commitTimer: NodeJS.Timeout | undefined;
  private readonly startedAt = new Date();
  /** The read API's bearer token, new at each start; other commands read it from agent.json. */
  private readonly token = randomBytes(32).toString('base64url');
  private stopping: Promise<void> | undefined;

  constructor(private readonly opts: AgentOptions) {
    const { config } = opts;
    this.registry = CheckpointRegistry.open(config.runPath);
    // One more than the store runs at once: the next batch is staged while both imports run.
    const writesInFlight = opts.store.capabilities.parallelWrites + 1;
    const fills = (writesInFlight + 1) * config.pipeline.batchEvents;
    if (config.pipeline.queueEvents < fills)
      opts.log.warn('pipeline.queue_events holds too few events to fill batches while others are written', {
        queue_events: config.pipeline.queueEvents,
        suggested: fills,
      });
    this.pipeline = new Pipeline({
      store: opts.store,
      cluster: config.cluster,
      queueEvents: config.pipeline.queueEvents,
      queueBytes: config.pipeline.queueBytes,
      batchEvents: config.pipeline.batchEvents,
      flushIntervalMs: config.pipeline.flushIntervalMs,
      writesInFlight,
      deadLetter: opts.deadLetter,
      log: opts.log,
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
    };
    for (const source of config.logs) {
      const kind = SOURCE_TYPES.get(source.type);
      if (kind === undefined) throw new Error(`internal: no source type ${source.type}`);
      this.sources.push(kind.create(source, deps));
    }
  }

  get adminUrl(): string {
    const a = this.adminAddress;
    return a === undefined ? '' : `http://${formatListen({ host: a.address, port: a.port })}`;
  }

  async start(): Promise<void> {
    const { config, log } = this.opts;
    await this.startAdmin();
    this.pipeline.start();
    for (const s of this.sources) await s.start();
    this.commitTimer = setInterval(() => {
      this.registry
        .commit()
        .catch((err: unknown) => log.error('checkpoint write failed', { error: String(err) }));
    }, CHECKPOINT_COMMIT_MS);
    const locator: AgentLocator = {
      pid: process.pid,
      admin: this.adminUrl,
      dataDir: config.dataDir,
      runPath: config.runPath,
      startedAt: this.startedAt.toISOString(),
      version: this.opts.version,
      token: this.token,
    };
    const text = `${JSON.stringify(locator, null, 2)}\n`;
    await writeFileAtomic(join(config.runPath, AGENT_FILE), text, 0o600);
    await writeFileAtomic(join(config.dataDir, AGENT_FILE), text, 0o600);
    log.info('agent started', {
      cluster: config.cluster,
      admin: this.adminUrl,
      sources: config.logsEnabled ? config.logs.length : 0,
      logs_enabled: config.logsEnabled,
      store: this.opts.store.location,
    });
  }

  private async startAdmin(): Promise<void> {
    const handler = new AdminHandler(this, this.opts.store, this.token);
    const server = http.createServer((req, res) => void handler.serve(req, res));
    const { host, port } = this.opts.config.admin;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new UserError(
            'KAUDIT_LISTEN_FAILED',
            `admin API cannot listen on ${formatListen({ host, port })}: ${err.message}`,
            {
              hint:
                err.code === 'EADDRINUSE'
                  ? 'another agent runs? set admin.listen or KAUDIT_ADMIN_LISTEN'
                  : '',
            },
          ),
        ),
      );
      server.listen(port, host, () => resolve());
    });
    this.admin = server;
    this.adminAddress = server.address() as AddressInfo;
    if (!/^(127\.|::1$|localhost$)/.test(host)) {
      this.opts.log.warn(
        'the admin API is plain HTTP: its token and the events it answers with cross the network in clear; keep it on loopback',
        {
          listen: formatListen({ host, port }),
        },
      );
    }
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
      const stats = await withTimeout(store.stats(), 5000);
      storeStatus.rows = stats.rows;
      storeStatus.oldest = stats.oldest;
      storeStatus.newest = stats.newest;
      if (stats.tableChecks !== undefined) storeStatus.tableChecks = stats.tableChecks;
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
      store: storeStatus,
    };
  }

  /** Drains: sources stop, the queue is written, checkpoints committed, then the store is closed by the caller. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const { log, config } = this.opts;
    log.info('agent stopping: draining the pipeline');
    // Sources stop taking input while the queue drains; a reader blocked on a full queue is freed
    // when the pipeline shuts down, even if the store never recovers.
    for (const s of this.sources) s.requestStop();
    const stopped = Promise.all(this.sources.map((s) => s.stop()));
    await this.pipeline.shutdown();
    await stopped;
    if (this.commitTimer !== undefined) clearInterval(this.commitTimer);
    this.registry.markDirty();
    await this.registry.commit();
    await new Promise<void>((resolve) => {
      if (this.admin === undefined) resolve();
      else {
        this.admin.close(() => resolve());
        this.admin.closeAllConnections?.();
      }
    });
    await rm(join(config.runPath, AGENT_FILE), { force: true });
    await rm(join(config.dataDir, AGENT_FILE), { force: true });
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
