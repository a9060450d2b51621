import type { Command } from 'commander';
import { filterFromParams } from '../../store/filter-params.js';
import { SEARCH_DEFAULT_COLUMNS, type SearchQuery } from '../../store/query.js';
import { openReadStore } from '../../store/registry.js';
import { dataOption, parseIntFlag, parseTimeFlag, resolveDataDir } from '../common.js';
import { formatTable, writeNdjson } from '../output.js';

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

/** The search of the flags: each filter flag maps to the filter parameter of the same name. */
export function searchQueryFromFlags(flags: SearchFlags, now = Date.now()): SearchQuery {
  const p = new URLSearchParams();
  const set = (k: string, v: string | undefined) => {
    if (v !== undefined) p.set(k, v);
  };
  set('user', flags.user);
  set('subject', flags.subject);
  set('verb', flags.verb?.toLowerCase());
  set('resource', flags.resource);
  set('namespace', flags.namespace);
  set('code', flags.code);
  set('decision', flags.decision);
  set('cluster', flags.cluster);
  if (flags.since !== undefined) p.set('since', parseTimeFlag('--since', flags.since, now));
  if (flags.until !== undefined) p.set('until', parseTimeFlag('--until', flags.until, now));
  return {
    filter: filterFromParams(p, { flags: true }),
    limit: parseIntFlag('--limit', flags.limit, 0),
    columns: SEARCH_DEFAULT_COLUMNS,
  };
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
      const query = searchQueryFromFlags(flags);
      const store = await openReadStore(resolveDataDir(flags.data));
      try {
        const result = await store.search(query);
        if (flags.json) writeNdjson(result.rows);
        else if (result.rows.length === 0) process.stderr.write('no events match\n');
        else process.stdout.write(formatTable(TABLE_COLUMNS, result.rows));
        if (!flags.json && result.next !== undefined) {
          process.stderr.write(`(showing the newest ${query.limit}; use --limit for more)\n`);
        }
      } finally {
        await store.close();
      }
    });
}
