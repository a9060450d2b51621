import { Command, Option } from 'commander';
import { type Diagnostic, formatDiagnostic, UserError } from '../../model/errors.js';
import { DEFAULT_NODES, DEFAULT_RATE_PER_S, Simulation } from '../../simulate/generator.js';
import { RotatingWriter } from '../../simulate/rotating-writer.js';
import { drive, type EventSink, fileSink, webhookSink, writeTruth } from '../../simulate/run.js';
import { parseDurationMs, parseRfc3339 } from '../../simulate/time.js';
import { SCENARIOS, type ScenarioName } from '../../simulate/truth.js';
import { WebhookSender } from '../../simulate/webhook-sender.js';
import { EXIT_RUNTIME, setExitCode } from '../main.js';

interface RawOptions {
  out?: string;
  webhook?: string;
  token?: string;
  truth?: string;
  count?: string;
  duration?: string;
  rate?: string;
  follow?: boolean;
  scenario?: string;
  background?: boolean;
  cluster?: string;
  seed?: string;
  nodes?: string;
  start?: string;
  rotateMb?: string;
  maxBackups?: string;
  compress?: boolean;
  json?: boolean;
}

interface Plan {
  out: string | undefined;
  webhook: string | undefined;
  token: string | undefined;
  truthPath: string | undefined;
  count: number | undefined;
  durationMs: number | undefined;
  rate: number;
  follow: boolean;
  scenarios: ScenarioName[];
  seed: number;
  nodes: number;
  startMs: number | undefined;
  rotateBytes: number | undefined;
  maxBackups: number;
  compress: boolean;
  json: boolean;
}

function usage(problems: Diagnostic[], flag: string, message: string, hint?: string): void {
  problems.push({
    severity: 'error',
    code: 'KAUDIT_SIMULATE_USAGE',
    path: flag,
    message,
    ...(hint === undefined ? {} : { hint }),
  });
}

function number(
  problems: Diagnostic[],
  flag: string,
  raw: string | undefined,
  check: { integer?: boolean; min: number; max?: number },
): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  const bad =
    raw.trim() === '' ||
    !Number.isFinite(n) ||
    (check.integer === true && !Number.isInteger(n)) ||
    n < check.min ||
    (check.max !== undefined && n > check.max);
  if (bad) {
    const kind = check.integer ? 'an integer' : 'a number';
    const range = check.max === undefined ? `>= ${check.min}` : `between ${check.min} and ${check.max}`;
    usage(problems, flag, `must be ${kind} ${range}, got "${raw}"`);
    return undefined;
  }
  return n;
}

/** Turns flags into a plan, collecting every problem before reporting them together. */
export function planSimulation(o: RawOptions): Plan {
  const p: Diagnostic[] = [];
  const count = number(p, '--count', o.count, { integer: true, min: 1 });
  let durationMs: number | undefined;
  if (o.duration !== undefined) {
    durationMs = parseDurationMs(o.duration);
    if (durationMs === undefined || durationMs <= 0) {
      usage(p, '--duration', `must be a duration like 90s, 10m or 1h30m, got "${o.duration}"`);
    }
  }
  const rate = number(p, '--rate', o.rate, { min: 0.01 }) ?? DEFAULT_RATE_PER_S;
  const given = number(p, '--seed', o.seed, { integer: true, min: 0, max: 4294967295 }) ?? 1;
  // Two clusters simulated with the same seed are different clusters: other IDs, other traffic.
  const seed = o.cluster === undefined ? given : (given ^ fnv1a(o.cluster)) >>> 0;
  const nodes = number(p, '--nodes', o.nodes, { integer: true, min: 1, max: 5000 }) ?? DEFAULT_NODES;
  const rotateMb = number(p, '--rotate-mb', o.rotateMb, { min: 0.001 });
  const maxBackups = number(p, '--max-backups', o.maxBackups, { integer: true, min: 0 }) ?? 0;
  let startMs: number | undefined;
  if (o.start !== undefined) {
    const us = parseRfc3339(o.start);
    if (us === undefined)
      usage(p, '--start', `must be an RFC 3339 time like 2026-01-15T09:00:00Z, got "${o.start}"`);
    else startMs = us / 1000;
  }
  const scenarios: ScenarioName[] = [];
  for (const s of (o.scenario ?? SCENARIOS.join(',')).split(',').map((x) => x.trim())) {
    if (s === '') continue;
    if ((SCENARIOS as readonly string[]).includes(s)) scenarios.push(s as ScenarioName);
    else usage(p, '--scenario', `unknown scenario "${s}"`, `choose from ${SCENARIOS.join(', ')}`);
  }
  if (scenarios.length === 0 && o.scenario !== undefined) usage(p, '--scenario', 'names no scenario');
  // An incident is seen against the cluster's everyday traffic, unless asked for alone.
  if (o.background !== false && !scenarios.includes('normal')) scenarios.unshift('normal');

  const out = o.out === '-' ? undefined : o.out;
  if (o.out !== undefined && o.webhook !== undefined) usage(p, '--webhook', 'cannot be combined with --out');
  if (o.webhook !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(o.webhook);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      usage(p, '--webhook', `must be an http(s) URL, got "${o.webhook}"`);
    }
  }
  if (o.token !== undefined && o.webhook === undefined) usage(p, '--token', 'only applies with --webhook');
  if (out === undefined) {
    for (const [flag, set] of [
      ['--rotate-mb', o.rotateMb !== undefined],
      ['--max-backups', o.maxBackups !== undefined],
      ['--compress', o.compress === true],
    ] as const) {
      if (set) usage(p, flag, 'only applies with --out FILE');
    }
  }
  if (o.count === undefined && o.duration === undefined && !o.follow) {
    usage(
      p,
      '--count',
      'say how much to generate',
      'pass --count N or --duration 10m, or --follow to run until stopped',
    );
  }
  if (o.json && out === undefined && o.webhook === undefined) {
    usage(p, '--json', 'needs --out FILE or --webhook URL: stdout already carries the events');
  }
  if (p.length > 0) {
    throw new UserError(
      'KAUDIT_SIMULATE_USAGE',
      `invalid flags:\n${p.map((d) => `  ${formatDiagnostic(d)}`).join('\n')}`,
      {
        hint: 'run kaudit simulate --help',
      },
    );
  }
  return {
    out,
    webhook: o.webhook,
    token: o.token,
    truthPath: o.truth ?? (out === undefined ? undefined : `${out}.truth.json`),
    count,
    durationMs,
    rate,
    follow: o.follow === true,
    scenarios,
    seed,
    nodes,
    startMs,
    rotateBytes: rotateMb === undefined ? undefined : Math.floor(rotateMb * 1024 * 1024),
    maxBackups,
    compress: o.compress === true,
    json: o.json === true,
  };
}

function human(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/**
 * Without --start, traffic ends about now, so `--since 1h` finds it: it starts the run's simulated
 * length before the current second (--duration, or --count at --rate). Follow mode writes in real
 * time, so it starts now.
 */
export function defaultStartMs(
  plan: Pick<Plan, 'follow' | 'durationMs' | 'count' | 'rate'>,
  now = Date.now(),
): number {
  const second = Math.floor(now / 1000) * 1000;
  if (plan.follow) return second;
  const lengthMs = plan.durationMs ?? ((plan.count ?? 0) / plan.rate) * 1000;
  return second - Math.ceil(lengthMs / 1000) * 1000;
}

/** 32-bit FNV-1a of a string. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(text, 'utf8')) {
    h ^= ch;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

async function run(plan: Plan): Promise<void> {
  const sim = new Simulation({
    seed: plan.seed,
    startMs: plan.startMs ?? defaultStartMs(plan),
    ratePerS: plan.rate,
    nodes: plan.nodes,
    scenarios: plan.scenarios,
    ...(plan.count === undefined ? {} : { count: plan.count }),
    ...(plan.durationMs === undefined ? {} : { durationMs: plan.durationMs }),
  });

  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let writer: RotatingWriter | undefined;
  let sender: WebhookSender | undefined;
  let sink: EventSink;
  let stdoutBytes = 0;
  if (plan.out !== undefined) {
    writer = new RotatingWriter({
      path: plan.out,
      ...(plan.rotateBytes === undefined ? {} : { maxBytes: plan.rotateBytes }),
      maxBackups: plan.maxBackups,
      compress: plan.compress,
      bufferBytes: plan.follow ? 64 * 1024 : 4 * 1024 * 1024,
      writeBehind: true,
    });
    sink = fileSink(writer);
  } else if (plan.webhook !== undefined) {
    sender = new WebhookSender({
      url: plan.webhook,
      ...(plan.token === undefined ? {} : { token: plan.token }),
    });
    sink = webhookSink(sender);
  } else {
    let chunk: string[] = [];
    const flush = async (): Promise<void> => {
      if (chunk.length === 0) return;
      const text = chunk.join('');
      chunk = [];
      stdoutBytes += Buffer.byteLength(text);
      if (!process.stdout.write(text)) await new Promise((resolve) => process.stdout.once('drain', resolve));
    };
    sink = {
      write: (e) => {
        chunk.push(e.line);
        return chunk.length >= 2000 ? flush() : undefined;
      },
      flush,
    };
  }

  const started = performance.now();
  let events: number;
  try {
    let truthWrittenAt = performance.now();
    const truthPath = plan.truthPath;
    events = await drive(sim, sink, {
      follow: plan.follow,
      signal: stop.signal,
      // A live run keeps its truth current, so a demo can compare findings while it runs.
      onProgress: () => {
        if (!plan.follow || truthPath === undefined || performance.now() - truthWrittenAt < 10_000) return;
        writeTruth(truthPath, sim.truth());
        truthWrittenAt = performance.now();
      },
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const seconds = (performance.now() - started) / 1000;
  const rotation = await writer?.finish();
  const truth = sim.truth();
  if (plan.truthPath !== undefined) writeTruth(plan.truthPath, truth);

  const bytes = rotation?.bytes ?? sender?.stats.bytes ?? stdoutBytes;
  const summary = {
    events,
    bytes,
    seconds: Math.round(seconds * 1000) / 1000,
    eventsPerSecond: seconds > 0 ? Math.round(events / seconds) : events,
    start: truth.start,
    end: truth.end,
    seed: plan.seed,
    scenarios: plan.scenarios,
    ...(rotation === undefined ? {} : { files: rotation.files, rotations: rotation.rotations }),
    ...(sender === undefined
      ? {}
      : {
          webhook: {
            url: plan.webhook,
            batches: sender.stats.batches,
            retries: sender.stats.retries,
            dropped: sender.stats.dropped,
          },
        }),
    ...(plan.truthPath === undefined ? {} : { truth: plan.truthPath }),
    steps: truth.steps.length,
  };
  const where =
    rotation !== undefined
      ? `${rotation.files.length} file${rotation.files.length === 1 ? '' : 's'} (${rotation.files.join(', ')})`
      : sender !== undefined
        ? `${sender.stats.batches} EventList batches to ${plan.webhook}`
        : 'stdout';
  process.stderr.write(
    `kaudit: simulated ${events} events (${human(bytes)}, ${truth.start} to ${truth.end}) in ${summary.seconds}s into ${where}\n`,
  );
  if (plan.truthPath !== undefined) {
    process.stderr.write(
      `kaudit: ground truth for ${truth.steps.length} scenario steps in ${plan.truthPath}\n`,
    );
  }
  if (plan.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  if (sender !== undefined && sender.stats.dropped > 0) {
    process.stderr.write(
      `kaudit: error: the webhook did not accept ${sender.stats.dropped} events after retries: ${sender.stats.lastError ?? 'unknown error'}\n`,
    );
    setExitCode(EXIT_RUNTIME);
  }
}

export function registerSimulate(program: Command): void {
  program.addCommand(
    new Command('simulate')
      .description(
        'Generate realistic kube-apiserver audit traffic with incident scenarios and their ground truth',
      )
      .option(
        '--out <file>',
        'write JSON lines to FILE, rotated like kube-apiserver (- for stdout, the default)',
      )
      .option('--webhook <url>', 'POST EventList batches to URL, as the audit webhook backend does')
      .option('--token <token>', 'bearer token for --webhook')
      .option('--truth <file>', 'where to write the ground truth (default: FILE.truth.json beside --out)')
      .option('--count <n>', 'stop after N events')
      .option('--duration <d>', 'stop after this much simulated time, e.g. 10m')
      .option('--rate <events/s>', `events per simulated second (default ${DEFAULT_RATE_PER_S})`)
      .option('--follow', 'write in real time at --rate instead of as fast as possible')
      .option(
        '--scenario <list>',
        `comma-separated: ${SCENARIOS.join(',')} (default all); normal, the background traffic, is always added`,
      )
      .option('--no-background', 'only the named scenarios, without the background traffic (normal)')
      .option('--seed <n>', 'seed for the generator; the same seed gives the same bytes (default 1)')
      .option(
        '--cluster <name>',
        'the simulated cluster: mixed into the seed, so each cluster gets its own audit IDs',
      )
      .option('--nodes <n>', `worker nodes in the simulated cluster (default ${DEFAULT_NODES})`)
      .option(
        '--start <rfc3339>',
        'simulated time of the first event (default: so that the traffic ends now; now with --follow); give it for the same bytes on every run',
      )
      .option('--rotate-mb <n>', 'rotate the file before it exceeds N MiB (--audit-log-maxsize)')
      .option('--max-backups <n>', 'keep at most N rotated files, 0 keeps all (--audit-log-maxbackup)')
      .option('--compress', 'gzip rotated files (--audit-log-compress)')
      .addOption(new Option('--json', 'print a JSON summary on stdout'))
      .action(async (options: RawOptions) => {
        await run(planSimulation(options));
      }),
  );
}
