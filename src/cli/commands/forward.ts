import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { DeadLetter } from '../../collect/dead-letter.js';
import { createLogger } from '../../collect/logger.js';
import type { Sink } from '../../collect/sinks.js';
import { createForwarder, type ForwardConfig, forwardSchema } from '../../forward/sink-types.js';
import { type Diagnostic, formatDiagnostic, UserError } from '../../model/errors.js';
import { validate } from '../../model/schema-diagnostics.js';
import { readYaml } from '../../model/yaml-input.js';
import { openReadStore } from '../../store/registry.js';
import { dataOption, resolveDataDir } from '../common.js';
import { setExitCode } from '../main.js';
import { toJson } from '../output.js';
import { storeFilter } from './rbac-shared.js';

interface ForwardFlags {
  to: string;
  sink?: string;
  data?: string;
  since?: string;
  until?: string;
  cluster?: string;
  batch: string;
  json?: boolean;
}

/** What every sink reports (syslog has no filters or dead letters of its own). */
interface SinkFigures {
  name: string;
  sentEvents: number;
  filteredEvents?: number;
  deadLettered?: number;
  retries: number;
  lastError?: string | undefined;
}

/** Events handed to a sink at a time, as the agent's pipeline hands over a stored batch. */
const DEFAULT_BATCH = 1000;

/**
 * The `forward:` entries of a file: an agent config (its `forward:` list), a bare list, or one
 * entry; each checked by its sink type, every problem reported with its line.
 */
export function readForwardConfig(file: string): ForwardConfig[] {
  if (!existsSync(file)) throw new UserError('KAUDIT_FILE_UNREADABLE', `cannot read ${file}: no such file`);
  const input = readYaml(readFileSync(file, 'utf8'), file);
  if (input.diagnostics.length > 0)
    throw new UserError('KAUDIT_CONFIG_INVALID', input.diagnostics.map(formatDiagnostic).join('\n'));
  const v = input.value as { forward?: unknown } | unknown[] | null;
  const [list, at] = Array.isArray(v)
    ? [v, [] as (string | number)[]]
    : v !== null && typeof v === 'object' && 'forward' in v
      ? [v.forward, ['forward']]
      : [[v], []];
  if (!Array.isArray(list) || list.length === 0)
    throw new UserError('KAUDIT_CONFIG_INVALID', `${file}: no forward: entries`, {
      hint: 'forward:\n  - type: http\n    url: https://logs.example.com/audit',
    });
  const diagnostics: Diagnostic[] = [];
  const out: ForwardConfig[] = [];
  list.forEach((entry, i) => {
    const path = Array.isArray(v) || at.length > 0 ? [...at, i] : at;
    const c = validate(forwardSchema, entry, path, { input, file }, diagnostics);
    if (c !== undefined) out.push(c as ForwardConfig);
  });
  if (diagnostics.length > 0)
    throw new UserError(
      'KAUDIT_CONFIG_INVALID',
      `${diagnostics.length} problem(s) in ${file}:\n${diagnostics.map(formatDiagnostic).join('\n')}`,
    );
  return out;
}

export function registerForward(program: Command): void {
  program
    .command('forward')
    .description(
      'Replay stored events to log platforms (backfill a new one): the sinks of the agent config, or of a file',
    )
    .requiredOption(
      '--to <file>',
      'a file with the sinks: an agent config (its forward: list), or a list of forward: entries',
    )
    .option('--sink <name>', 'only the sink of this name (its name:, else its type)')
    .addOption(dataOption())
    .option('--since <when>', 'from this time: a duration ago (7d, 24h) or RFC3339')
    .option('--until <when>', 'before this time')
    .option('--cluster <names>', 'only these clusters (comma-separated)')
    .option('--batch <n>', 'events per request batch', String(DEFAULT_BATCH))
    .option('--json', "print each sink's figures as JSON at the end")
    .addHelpText(
      'after',
      `
Each sink gets the events in store order, filtered by its policy and include/exclude lists, with
the agent's retries and backoff; what a platform refuses for good goes to the dead letters.
Exit status: 0 when everything was sent, 1 when some events were dead-lettered, 2 on bad input.

Examples:
  kaudit forward --to kaudit.yaml --since 7d
  kaudit forward --to splunk.yaml --sink splunk --since 2026-01-01T00:00:00Z --until 2026-02-01T00:00:00Z`,
    )
    .action(async (flags: ForwardFlags) => {
      const batchSize = Number(flags.batch);
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000)
        throw new UserError(
          'KAUDIT_FLAG_INVALID',
          `--batch ${JSON.stringify(flags.batch)}: expected 1 to 100000`,
        );
      const file = resolve(flags.to);
      let configs = readForwardConfig(file);
      if (flags.sink !== undefined) {
        const names = configs.map((c) => c.name ?? c.type);
        configs = configs.filter((c) => (c.name ?? c.type) === flags.sink);
        if (configs.length === 0)
          throw new UserError('KAUDIT_FLAG_INVALID', `--sink ${flags.sink}: ${file} has no such sink`, {
            hint: `its sinks: ${names.join(', ')}`,
          });
      }
      const dataDir = resolveDataDir(flags.data);
      const log = createLogger({ level: 'warn' });
      const deadLetter = new DeadLetter(dataDir);
      const sinks: Sink[] = configs.map((c) =>
        createForwarder(c, {
          log,
          env: process.env,
          pathOf: (p) => resolve(dirname(file), p),
          deadLetter: async (sink, events, reason) => {
            for (const e of events) await deadLetter.add({ source: `forward:${sink}`, reason, data: e.json });
          },
        }),
      );
      const store = await openReadStore(dataDir);
      const filter = storeFilter(flags);
      let read = 0;
      try {
        const total = await store.count(filter);
        const tty = process.stderr.isTTY;
        let pending: Buffer[] = [];
        let cluster = '';
        const flush = async () => {
          if (pending.length === 0) return;
          const batch = { cluster, events: pending };
          pending = [];
          // Sinks run side by side; each sees every batch in store order.
          await Promise.all(sinks.map((s) => s.export(batch)));
          if (tty)
            process.stderr.write(
              `\rkaudit: ${read.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} events forwarded`,
            );
        };
        for await (const page of store.scan({ filter, columns: ['raw', 'cluster'] })) {
          for (const row of page) {
            if (typeof row.raw !== 'string') continue;
            const c = typeof row.cluster === 'string' ? row.cluster : '';
            if (c !== cluster || pending.length >= batchSize) {
              await flush();
              cluster = c;
            }
            pending.push(Buffer.from(row.raw));
            read++;
          }
        }
        await flush();
        if (tty) process.stderr.write('\n');
      } finally {
        await store.close();
        for (const s of sinks) await s.shutdown();
        await deadLetter.close();
      }
      const stats = sinks.map((s) => (s as Sink & { stats(): SinkFigures }).stats());
      if (flags.json) process.stdout.write(`${toJson({ events: read, sinks: stats })}\n`);
      for (const s of stats)
        process.stderr.write(
          `kaudit: ${s.name}: ${s.sentEvents} sent, ${s.filteredEvents ?? 0} filtered out, ${s.deadLettered ?? 0} dead-lettered, ${s.retries} retries${s.lastError !== undefined && (s.deadLettered ?? 0) > 0 ? ` (last error: ${s.lastError})` : ''}\n`,
        );
      if (stats.some((s) => (s.deadLettered ?? 0) > 0)) setExitCode(1);
    });
}
