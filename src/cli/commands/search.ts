import type { Command } from 'commander';
import type { SearchFilter } from '../../store/search-filter.js';
import { dataOption, parseIntFlag, parseTimeFlag, resolveDataDir } from '../common.js';
import { formatTable, writeNdjson } from '../output.js';
import { openReadStore } from '../store-access.js';

interface SearchFlags {
  data?: string;
  user?: string;
  subject?: string;
  verb?: string;
  resource?: string;
  namespace?: string;
  code?: string;
  decision?: string;
  since?: string;
  until?: string;
  cluster?: string;
  limit: string;
  json?: boolean;
}

const TABLE_COLUMNS = [
  'ts',
  'subject',
  'verb',
  'resource',
  'namespace',
  'name',
  'code',
  'decision',
  'latency_ms',
  'source_ip',
];

export function searchFilterFromFlags(flags: SearchFlags, now = Date.now()): SearchFilter {
  const f: SearchFilter = { limit: parseIntFlag('--limit', flags.limit, 0) };
  if (flags.user !== undefined) f.user = flags.user;
  if (flags.subject !== undefined) f.subject = flags.subject;
  if (flags.verb !== undefined) f.verb = flags.verb;
  if (flags.resource !== undefined) f.resource = flags.resource;
  if (flags.namespace !== undefined) f.namespace = flags.namespace;
  if (flags.code !== undefined) f.code = parseIntFlag('--code', flags.code, 0);
  if (flags.decision !== undefined) f.decision = flags.decision;
  if (flags.cluster !== undefined) f.cluster = flags.cluster;
  if (flags.since !== undefined) f.since = parseTimeFlag('--since', flags.since, now);
  if (flags.until !== undefined) f.until = parseTimeFlag('--until', flags.until, now);
  return f;
}

export function registerSearch(program: Command): void {
  program
    .command('search')
    .description('Find audit events by who, what and when, newest first')
    .addOption(dataOption())
    .option('--user <name>', 'the authenticated user (user.username)')
    .option('--subject <name>', 'who acted: the impersonated user when there is one, else the user')
    .option('--verb <verb>', 'get, list, watch, create, update, patch, delete, ...')
    .option('--resource <res>', 'a resource, or resource/subresource (pods, pods/exec)')
    .option('--namespace <ns>', 'namespace')
    .option('--code <code>', 'HTTP response code (403, 429, ...)')
    .option('--decision <d>', 'authorization decision: allow or forbid')
    .option('--since <when>', 'from this time: a duration ago (1h, 30m, 2d) or RFC3339')
    .option('--until <when>', 'before this time: a duration ago or RFC3339')
    .option('--cluster <name>', 'cluster name given at ingest')
    .option('--limit <n>', 'at most this many events', '100')
    .option('--json', 'one JSON object per line (NDJSON)')
    .addHelpText(
      'after',
      `
Examples:
  kaudit search --decision forbid --since 1h
  kaudit search --resource pods/exec --namespace prod --json`,
    )
    .action(async (flags: SearchFlags) => {
      const filter = searchFilterFromFlags(flags);
      const store = await openReadStore({ dataDir: resolveDataDir(flags.data) });
      try {
        const result = await store.search(filter);
        if (flags.json) writeNdjson(result.rows);
        else process.stdout.write(formatTable(TABLE_COLUMNS, result.rows));
        if (!flags.json && result.rows.length === filter.limit) {
          process.stderr.write(`(showing the newest ${filter.limit}; use --limit for more)\n`);
        }
      } finally {
        await store.close();
      }
    });
}
