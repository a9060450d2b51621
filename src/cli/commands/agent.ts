import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Command, Option } from 'commander';
import { Agent } from '../../collect/agent.js';
import {
  type AgentConfig,
  DEFAULT_ADMIN_LISTEN,
  DEFAULT_MAX_LINE_BYTES,
  DEFAULT_PIPELINE,
  defaultDetectConfig,
  loadAgentConfig,
  parseListen,
} from '../../collect/agent-config.js';
import { DeadLetter } from '../../collect/dead-letter.js';
import { createLogger, type Logger, type LogLevel } from '../../collect/logger.js';
import type { Preparer } from '../../collect/pipeline.js';
import { RetriedWrite } from '../../collect/retried-write.js';
import { ForwardCursors } from '../../forward/forward-cursors.js';
import { createForwarder, type ForwardConfig, forwardSchema } from '../../forward/sink-types.js';
import { StoreFollower } from '../../forward/store-follower.js';
import { UserError } from '../../model/errors.js';
import {
  DEFAULT_MAX_EVENT_BYTES,
  type PrepareOptions,
  prepareLine,
  prepareValue,
} from '../../model/prepare.js';
import { agentApp } from '../../server/agent-app.js';
import { TokenAuth } from '../../server/auth.js';
import { listen, type RunningServer } from '../../server/listen.js';
import { storeApi } from '../../server/store-api.js';
import { currentPlatformPaths } from '../../setup/platform-paths.js';
import { type OpenStoreOptions, openStore } from '../../store/registry.js';
import { AGENT_FILE, type AgentLocator } from '../../store/remote/locator.js';
import { dataOption, resolveDataDir } from '../common.js';
import { EXIT_RUNTIME, exitNow } from '../main.js';
import { VERSION } from '../version.js';
import { startDetection } from './agent-detection.js';

interface AgentFlags {
  config?: string;
  demo?: boolean;
  data?: string;
  logFormat: 'text' | 'json';
  logLevel: LogLevel;
  demoRate: string;
}

// Four batches. The window's keys cost ~190 bytes each (262,144 held ~50 MB of heap), and with the
// anti-join bounded by stage time a repeat the window has let go costs one cheap lookup.
const AGENT_DEDUPE_WINDOW = 65_536;
// Row-group-sized imports need little: catching up at full speed, 256MB gave the same throughput as
// 768MB with ~150 MB less RSS, and 128MB ran out of memory. 320MB leaves room for larger events.
const AGENT_STORE_MEMORY_LIMIT = '320MB';
const RETENTION_EVERY_MS = 6 * 3600_000;

/**
 * `--config`, else KAUDIT_CONFIG, else ./kaudit.yaml when it exists, else the platform's own place
 * (/etc/kaudit/kaudit.yaml for a system agent on Linux; docs/setup.md lists them) when it exists.
 */
export function findConfigFile(
  flag: string | undefined,
  platformConfig: string = currentPlatformPaths().config,
): string | undefined {
  const file = flag ?? process.env.KAUDIT_CONFIG;
  if (file !== undefined && file !== '') return resolve(file);
  if (existsSync('kaudit.yaml')) return resolve('kaudit.yaml');
  return existsSync(platformConfig) ? platformConfig : undefined;
}

export function preparerFor(config: Pick<AgentConfig, 'maxEventBytes' | 'redact'>): Preparer {
  const opts: PrepareOptions = { maxEventBytes: config.maxEventBytes, redact: config.redact };
  return { options: opts, line: (b) => prepareLine(b, opts), value: (v) => prepareValue(v, opts) };
}

function demoConfig(dataDir: string, workDir: string): AgentConfig {
  const admin = parseListen(process.env.KAUDIT_ADMIN_LISTEN ?? DEFAULT_ADMIN_LISTEN);
  return {
    cluster: process.env.KAUDIT_CLUSTER ?? 'demo',
    runPath: join(workDir, 'run'),
    dataDir,
    logsEnabled: true,
    admin: admin ?? { host: '127.0.0.1', port: 5599 },
    maxEventBytes: DEFAULT_MAX_EVENT_BYTES,
    maxLineBytes: DEFAULT_MAX_LINE_BYTES,
    redact: true,
    storeTrimMemory: false,
    pipeline: DEFAULT_PIPELINE,
    forward: [],
    detect: defaultDetectConfig(),
    logs: [
      {
        type: 'file',
        name: 'demo audit.log',
        path: join(workDir, 'logs', 'audit.log'),
        source: 'kubernetes.audit',
        service: 'audit',
        startPosition: 'beginning',
      },
    ],
  };
}

function startSimulator(workDir: string, rate: string, log: Logger, stopping: () => boolean): ChildProcess {
  const bin = fileURLToPath(new URL('../bin.js', import.meta.url));
  const args = [
    bin,
    'simulate',
    '--follow',
    '--rate',
    rate,
    '--out',
    join(workDir, 'logs', 'audit.log'),
    '--rotate-mb',
    '20',
    '--max-backups',
    '5',
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.on('data', (d: Buffer) => process.stderr.write(`[simulate] ${d.toString()}`));
  child.on('exit', (code, signal) => {
    if (!stopping())
      log.warn('the demo simulator exited', { code: code ?? undefined, signal: signal ?? undefined });
  });
  return child;
}

function demoBanner(agent: Agent, config: AgentConfig, dataFlag: string | undefined): string {
  const data = dataFlag === undefined ? '' : ` --data ${config.dataDir}`;
  return `
kaudit demo: a simulated kube-apiserver writes ${config.logs[0]?.type === 'file' ? config.logs[0].path : ''}
(rotating like kube-apiserver), and this agent tails it into the store in ${config.dataDir}.

Try, in another terminal:
  kaudit status                                   # the agent's sources, lag, store
  kaudit search${data} --decision forbid --since 1h   # goes through the agent while it holds the store
  kaudit query${data} "SELECT verb, count(*) AS n FROM events GROUP BY 1 ORDER BY n DESC"
  kaudit report latency${data}                    # slow requests and the clients behind them
  kaudit alerts${data}                            # what the detection rules raised (the attack comes ~9 minutes in)
  open ${agent.adminUrl}/                  # the dashboard: the simulated cluster's traffic filling in

Stop with Ctrl-C: the agent drains its queue and saves its checkpoints.
`;
}

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('Collect audit events continuously: tail audit log files and receive the audit webhook')
    .option(
      '--config <file>',
      "agent config (YAML); default KAUDIT_CONFIG, then ./kaudit.yaml, then the platform's (e.g. /etc/kaudit/kaudit.yaml)",
    )
    .option('--demo', 'run on a simulated cluster writing a rotating audit log in a temp dir (npm start)')
    .addOption(dataOption())
    .addOption(
      new Option('--log-format <format>', 'stderr log format').choices(['text', 'json']).default('text'),
    )
    .addOption(
      new Option('--log-level <level>', 'least severe log level')
        .choices(['debug', 'info', 'warn', 'error'])
        .default('info'),
    )
    .option('--demo-rate <n>', 'events per second the demo simulator writes', '200')
    .addHelpText(
      'after',
      `
The config is shaped like the Datadog Agent's logs section; see docs/agent.md.

Examples:
  kaudit agent --config /etc/kaudit/kaudit.yaml
  KAUDIT_LOGS_ENABLED=false kaudit agent --config kaudit.yaml   # admin API and store only
  kaudit agent --demo`,
    )
    .action(async (flags: AgentFlags) => {
      const log = createLogger({ level: flags.logLevel, format: flags.logFormat });
      // Listening from the start: a SIGTERM while the agent starts (opening a large store can take
      // seconds) lets it finish starting and then drain, instead of killing it on the spot.
      const signalled = waitForSignal(log);
      let config: AgentConfig;
      let workDir: string | undefined;
      if (flags.demo) {
        workDir = mkdtempSync(join(tmpdir(), 'kaudit-demo-'));
        config = demoConfig(resolveDataDir(flags.data), workDir);
      } else {
        const file = findConfigFile(flags.config);
        if (file === undefined) {
          throw new UserError('KAUDIT_CONFIG_MISSING', 'kaudit agent needs a config', {
            hint: 'pass --config kaudit.yaml (see docs/agent.md), or try `kaudit agent --demo`',
          });
        }
        config = loadAgentConfig(file, process.env, forwardSchema);
        if (flags.data !== undefined) config.dataDir = resolve(flags.data);
      }

      // A long-running process keeps fewer keys than a one-shot ingest: its batches arrive in time
      // order, so older keys are rarely needed, and memory matters more. One store thread per
      // import, as in ingest: the store runs two imports side by side.
      const storeOpts: OpenStoreOptions = {
        threads: 1,
        dedupeWindow: AGENT_DEDUPE_WINDOW,
        memoryLimit: config.storeMemoryLimit ?? AGENT_STORE_MEMORY_LIMIT,
        trimMemory: config.storeTrimMemory,
        // Batches short of a row group (cut by the flush interval) go through the WAL, their rows
        // held uncompressed in memory until a checkpoint compresses them, pausing commits meanwhile.
        // At 20k events/s, 128MB of WAL held ~230 MB in the store before each checkpoint, 32MB under
        // 90 MB, with p99 freshness 1.2-1.4 s (256MB: ~1.9 s). A catch-up writes whole row groups,
        // past the WAL.
        checkpointThreshold: '32MB',
      };
      if (config.retentionDays !== undefined) storeOpts.retentionDays = config.retentionDays;
      const store = await openStore(config.store ?? config.dataDir, storeOpts);
      const deadLetter = new DeadLetter(config.dataDir);
      const pathOf = (p: string) =>
        config.file === undefined ? resolve(p) : resolve(dirname(config.file), p);
      const detection = await startDetection(config, log, process.env, pathOf);
      // Each forwarder follows the store from its own cursor in run_path: an outage, a full queue or
      // a restart loses nothing (docs/forward.md).
      const cursors = ForwardCursors.open(config.runPath);
      // A backlog of a full batch or more: ingest is saturated, and the forwarders wait for it
      // (store-follower.ts). Set once the agent exists.
      let ingestBusy = () => false;
      const forwarders = config.forward.map(
        (entry) =>
          new StoreFollower({
            inner: createForwarder(entry as ForwardConfig, {
              log,
              env: process.env,
              pathOf,
              deadLetter: async (sink, events, reason) => {
                for (const e of events)
                  await deadLetter.add({ source: `forward:${sink}`, reason, data: e.json });
              },
            }),
            store,
            cluster: config.cluster,
            cursors,
            log,
            busy: () => ingestBusy(),
            // ClickHouse runs inserts side by side, so a batch stamped earlier can become visible
            // after a later one: the cursor stays this far behind (store-follower.ts, docs/forward.md).
            settleMs: store.capabilities.settleMs,
          }),
      );
      const names = forwarders.map((f) => f.name);
      const twice = names.find((n, i) => names.indexOf(n) !== i);
      if (twice !== undefined)
        throw new UserError('KAUDIT_CONFIG_INVALID', `forward: two sinks are named ${twice}`, {
          hint: 'give each sink its own `name:`; each keeps its own cursor in run_path',
        });
      for (const f of forwarders) f.start();
      const sinks = detection === undefined ? forwarders : [detection.sink, ...forwarders];
      const agent = new Agent({
        config,
        store,
        prepare: preparerFor(config),
        deadLetter,
        log,
        version: VERSION,
        sinks,
      });
      ingestBusy = () => agent.pipeline.stats().queuedEvents >= config.pipeline.batchEvents;
      // The agent's API: its own token, new at each start, written to agent.json (owner-only) where
      // the CLI finds it. The demo's data is simulated, so its dashboard needs no token.
      const token = randomBytes(32).toString('base64url');
      const auth = new TokenAuth();
      if (!flags.demo) auth.add(token, 'admin');
      let simulator: ChildProcess | undefined;
      let stopping = false;
      let retention: NodeJS.Timeout | undefined;
      let server: RunningServer | undefined;
      const locators = [join(config.runPath, AGENT_FILE), join(config.dataDir, AGENT_FILE)];
      let locatorWrites: RetriedWrite[] = [];
      try {
        await agent.start();
        server = await listen(
          agentApp({
            status: async () => ({
              ...(await agent.status()),
              ...(detection === undefined ? {} : { detection: detection.stats() }),
              forward: forwarders.map((f) => f.stats()),
            }),
            store,
            auth,
            dataDir: config.dataDir,
            storeApi: (req) => storeApi(store, req),
          }),
          { host: config.admin.host, port: config.admin.port, tokens: auth.configured },
        );
        agent.adminUrl = server.url;
        const locator: AgentLocator = {
          pid: process.pid,
          admin: server.url,
          dataDir: config.dataDir,
          runPath: config.runPath,
          startedAt: new Date().toISOString(),
          version: VERSION,
          token,
        };
        // Retried in the background when it fails (descriptors exhausted): collecting goes on.
        locatorWrites = locators.map(
          (path) =>
            new RetriedWrite({ path, text: `${JSON.stringify(locator, null, 2)}\n`, mode: 0o600, log }),
        );
        for (const w of locatorWrites) await w.start();
        log.info('agent API listening', { admin: server.url });
        if (config.retentionDays !== undefined) {
          const days = config.retentionDays;
          retention = setInterval(() => {
            store
              .deleteOlderThan(days)
              .then((n) => n > 0 && log.info('retention: rows deleted', { rows: n, days }))
              .catch((err: unknown) => log.error('retention failed', { error: String(err) }));
          }, RETENTION_EVERY_MS);
        }
        if (workDir !== undefined) {
          simulator = startSimulator(workDir, flags.demoRate, log, () => stopping);
          process.stderr.write(demoBanner(agent, config, flags.data));
        }
        await signalled;
      } finally {
        stopping = true;
        if (retention !== undefined) clearInterval(retention);
        simulator?.kill('SIGTERM');
        await agent.stop();
        await detection?.close();
        await server?.close();
        for (const w of locatorWrites) await w.cancel();
        for (const file of locators) await rm(file, { force: true });
        await deadLetter.close();
        await store.close();
        if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
      }
    });
}

/** Resolves on the first SIGTERM or SIGINT; a second one exits at once. */
function waitForSignal(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    let received = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (received) {
        log.warn('second signal: exiting without draining', { signal });
        exitNow(EXIT_RUNTIME);
      }
      received = true;
      log.info('signal received', { signal });
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
