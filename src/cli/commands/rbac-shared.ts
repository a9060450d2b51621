import type { Command } from 'commander';
import { Option } from 'commander';
import { stringify } from 'yaml';
import { loadRbacOrThrow } from '../../analyze/rbac/load-rbac.js';
import { rbacRecordsFromStore } from '../../analyze/rbac/records-from-store.js';
import type { RbacObject, RbacSet } from '../../analyze/rbac/types.js';
import { type RecordSource, requestRecords } from '../../analyze/request-record.js';
import { formatDiagnostic, UserError } from '../../model/errors.js';
import type { EventFilter } from '../../store/query.js';
import { openReadStore } from '../../store/registry.js';
import { parseTimeFlag, resolveDataDir } from '../common.js';
import { readLogs, readTextFile } from './policy-files.js';

/** `kaudit <noun>`, created by whichever of its verbs registers first. */
export function nounCommand(program: Command, name: string, description: string): Command {
  return program.commands.find((c) => c.name() === name) ?? program.command(name).description(description);
}

export function rbacNoun(program: Command): Command {
  return nounCommand(
    program,
    'rbac',
    'RBAC from the audit log: what a subject can do, least-privilege roles from observed use, a review of the grants',
  );
}

export function reportNoun(program: Command): Command {
  return nounCommand(program, 'report', 'Reports over the audit events: latency, activity, denials');
}

/** Reads the cluster RBAC; warnings go to stderr, errors become one UserError listing them all. */
export function readRbacFile(path: string): RbacSet {
  const { rbac, warnings } = loadRbacOrThrow(readTextFile(path, 'RBAC file'), path);
  for (const w of warnings) process.stderr.write(`kaudit: ${formatDiagnostic(w)}\n`);
  return rbac;
}

export function fromOption(): Option {
  return new Option(
    '--from <log...>',
    'audit log files to read (JSON lines, EventList, gzip, cloud exports ...); without it, the store',
  );
}

/** Where the events come from: log files (--from), else the store (--data) in a time range. */
export interface SourceFlags {
  from?: string[];
  data?: string;
  since?: string;
  until?: string;
  cluster?: string;
}

/**
 * One record per request: of the logs given with --from, or else of the store (directly, or
 * through the running agent), the events of --since/--until/--cluster.
 */
/** The store filter of --since, --until and --cluster. */
export function storeFilter(flags: SourceFlags): EventFilter {
  const filter: EventFilter = {};
  if (flags.since !== undefined) filter.since = parseTimeFlag('--since', flags.since);
  if (flags.until !== undefined) filter.until = parseTimeFlag('--until', flags.until);
  if (flags.cluster !== undefined) filter.cluster = flags.cluster.split(',');
  return filter;
}

/**
 * `subjects`: the usernames the command is about, when known, so that the store reads only their
 * requests (a log is read whole either way).
 */
export function recordsFrom(flags: SourceFlags, command: string, subjects?: readonly string[]): RecordSource {
  if (flags.from !== undefined && flags.from.length > 0) return recordsFromLogs(flags.from, command);
  const filter = storeFilter(flags);
  if (subjects !== undefined) filter.subject = [...subjects];
  const dataDir = resolveDataDir(flags.data);
  return (async function* () {
    const store = await openReadStore(dataDir);
    try {
      yield* rbacRecordsFromStore(store, filter);
    } finally {
      await store.close();
    }
  })();
}

/** One record per request of the logs given with --from. */
export function recordsFromLogs(paths: readonly string[] | undefined, command: string): RecordSource {
  if (paths === undefined || paths.length === 0) {
    throw new UserError(
      'KAUDIT_NO_INPUT',
      `${command} needs audit events: give --from LOG... or --data DIR`,
      {
        hint: `kaudit ${command} --from /var/log/kubernetes/audit/audit.log`,
      },
    );
  }
  const logs = readLogs(paths);
  return requestRecords(
    (async function* () {
      for await (const { event } of logs) yield event;
    })(),
  );
}

export type OutputFormat = 'table' | 'md' | 'yaml' | 'json';

export function formatOption(allowed: readonly OutputFormat[], dflt: OutputFormat): Option {
  return new Option('--format <format>', `output format`).choices([...allowed]).default(dflt);
}

export function chooseFormat(flags: { json?: boolean; format?: string }, dflt: OutputFormat): OutputFormat {
  if (flags.json) return 'json';
  return (flags.format as OutputFormat | undefined) ?? dflt;
}

/** Several RBAC objects as a multi-document YAML stream for `kubectl apply -f -`. */
export function rbacYaml(objects: readonly RbacObject[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');
}

const mdCell = (v: unknown) =>
  String(v ?? '')
    .replace(/\|/g, '\\|')
    .replace(/\s+/g, ' ');

export function mdTable(columns: readonly string[], rows: readonly Record<string, unknown>[]): string {
  if (rows.length === 0) return '_none_\n';
  return [
    `| ${columns.join(' | ')} |`,
    `| ${columns.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${columns.map((c) => mdCell(r[c])).join(' | ')} |`),
  ]
    .join('\n')
    .concat('\n');
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
