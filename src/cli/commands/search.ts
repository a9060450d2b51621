import type { Command } from 'commander';
import { UserError } from '../../model/errors.js';
import { closest, REQUEST_VERBS } from '../../policy/known-api.js';
import { filterFromParams } from '../../store/filter-params.js';
import {
  EVENT_COLUMNS,
  type EventColumn,
  SEARCH_DEFAULT_COLUMNS,
  type SearchQuery,
  type SortOrder,
} from '../../store/query.js';
import { openReadStore } from '../../store/registry.js';
import { dataOption, parseIntFlag, parseTimeFlag, resolveDataDir } from '../common.js';
import { formatTable, toJson, writeNdjson } from '../output.js';

interface SearchFlags {
  data?: string;
  user?: string;
  subject?: string;
  verb?: string;
  resource?: string;
  namespace?: string;
  name?: string;
  userAgent?: string;
  sourceIp?: string;
  group?: string;
  stage?: string;
  code?: string;
  denied?: boolean;
  decision?: string;
  minLatency?: string;
  text?: string;
  since?: string;
  until?: string;
  cluster?: string;
  sort: string;
  columns?: string;
  output?: string;
  limit: string;
  json?: boolean;
  wide?: boolean;
}

// kube-apiserver's request verbs (known-api.ts) and what people type for them.
const VERBS = [...REQUEST_VERBS];
const STAGE_NAMES = ['RequestReceived', 'ResponseStarted', 'ResponseComplete', 'Panic'];
const SORTS: Record<string, SortOrder> = { time: 'time', 'time-asc': 'time_asc', latency: 'latency' };
const OUTPUTS = ['table', 'json', 'ndjson', 'csv'] as const;

function bad(flag: string, value: string, expected: string): never {
  throw new UserError('KAUDIT_FLAG_INVALID', `${flag} ${JSON.stringify(value)}: expected ${expected}`);
}

/** `get` for `GET`; an unknown verb is refused with the valid ones (never a silently empty result). */
function verbsOf(text: string): string {
  return text
    .split(',')
    .map((v) => {
      const verb = v.trim().toLowerCase();
      if (!(VERBS as readonly string[]).includes(verb)) {
        const near = closest(verb, VERBS);
        bad('--verb', v, `one of ${VERBS.join(', ')}${near === undefined ? '' : ` (did you mean ${near}?)`}`);
      }
      return verb;
    })
    .join(',');
}

/** `1s`, `250ms`, `1.5s`, or a number of milliseconds. */
function latencyMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (m === null) bad('--min-latency', text, 'a duration such as 250ms, 1s or 1.5s');
  const n = Number(m[1]);
  return m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n;
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
  if (flags.verb !== undefined) set('verb', verbsOf(flags.verb));
  set('resource', flags.resource);
  set('namespace', flags.namespace);
  set('name', flags.name);
  set('userAgent', flags.userAgent);
  set('sourceIp', flags.sourceIp);
  set('apiGroup', flags.group);
  if (flags.stage !== undefined) {
    const stages = flags.stage
      .split(',')
      .map(
        (x) =>
          STAGE_NAMES.find((st) => st.toLowerCase() === x.trim().toLowerCase()) ??
          bad('--stage', x, `one of ${STAGE_NAMES.join(', ')}`),
      );
    set('stage', stages.join(','));
  }
  set('code', flags.code);
  if (flags.denied === true) set('denied', 'true');
  if (flags.decision !== undefined) {
    const d = flags.decision.toLowerCase();
    if (d !== 'allow' && d !== 'forbid') bad('--decision', flags.decision, 'allow or forbid');
    set('decision', d);
  }
  if (flags.minLatency !== undefined) set('minLatencyMs', String(latencyMs(flags.minLatency)));
  set('text', flags.text);
  set('cluster', flags.cluster);
  if (flags.since !== undefined) p.set('since', parseTimeFlag('--since', flags.since, now));
  if (flags.until !== undefined) p.set('until', parseTimeFlag('--until', flags.until, now));
  const sort = SORTS[flags.sort] ?? bad('--sort', flags.sort, `one of ${Object.keys(SORTS).join(', ')}`);
  let columns: readonly EventColumn[] = SEARCH_DEFAULT_COLUMNS;
  if (flags.columns !== undefined) {
    const list = flags.columns.split(',').map((c) => c.trim());
    const unknown = list.filter((c) => !(EVENT_COLUMNS as readonly string[]).includes(c));
    if (unknown.length > 0)
      bad('--columns', unknown.join(','), `columns of the events view: ${EVENT_COLUMNS.join(', ')}`);
    columns = list as EventColumn[];
  }
  return {
    filter: filterFromParams(p, { flags: true }),
    limit: parseIntFlag('--limit', flags.limit, 0),
    columns,
    sort,
  };
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
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
    .option('--code <code>', 'response code: 403, a class 4xx, a range 400-499, or a list')
    .option('--decision <d>', 'authorization decision: allow or forbid')
    .option('--since <when>', 'from this time: a duration ago (1h, 30m, 2d) or RFC3339')
    .option('--until <when>', 'before this time: a duration ago or RFC3339')
    .option('--cluster <name>', 'cluster name given at ingest')
    .option('--name <name>', 'object name')
    .option('--user-agent <text>', 'user agent contains this (case-insensitive)')
    .option('--source-ip <ip>', 'one of the source IPs')
    .option('--group <group>', "API group ('' for the core group): apps, rbac.authorization.k8s.io ...")
    .option('--stage <stage>', 'RequestReceived, ResponseStarted, ResponseComplete or Panic')
    .option('--denied', 'only refused requests (401 and 403)')
    .option('--min-latency <d>', 'at least this slow: 250ms, 1s')
    .option('--text <text>', 'the request URI contains this')
    .option('--sort <order>', 'time (newest first), time-asc or latency (slowest first)', 'time')
    .option('--columns <list>', 'columns to show, comma-separated (see the events view)')
    .option('--output <format>', 'table, json (one document), ndjson or csv')
    .option('--limit <n>', 'at most this many events', '100')
    .option('--json', 'one JSON object per line (NDJSON)')
    .option('--wide', 'show whole cells: do not fit the table to the terminal')
    .addHelpText(
      'after',
      `
Examples:
  kaudit search --decision forbid --since 1h
  kaudit search --resource pods/exec --namespace prod --json`,
    )
    .action(async (flags: SearchFlags) => {
      const query = searchQueryFromFlags(flags);
      const output = flags.json ? 'ndjson' : (flags.output ?? 'table');
      if (!(OUTPUTS as readonly string[]).includes(output)) bad('--output', output, OUTPUTS.join(', '));
      const store = await openReadStore(resolveDataDir(flags.data));
      try {
        const result = await store.search(query);
        const columns = flags.columns === undefined ? TABLE_COLUMNS : (query.columns as readonly string[]);
        if (result.rows.length === 0) process.stderr.write('no events match\n');
        if (output === 'ndjson') writeNdjson(result.rows);
        else if (output === 'json') process.stdout.write(`${toJson(result.rows)}\n`);
        else if (output === 'csv') {
          const cols = query.columns ?? SEARCH_DEFAULT_COLUMNS;
          process.stdout.write(`${cols.join(',')}\n`);
          for (const r of result.rows) process.stdout.write(`${cols.map((c) => csvCell(r[c])).join(',')}\n`);
        } else if (result.rows.length > 0)
          process.stdout.write(
            flags.wide
              ? formatTable(columns, result.rows, Number.MAX_SAFE_INTEGER, undefined)
              : formatTable(columns, result.rows),
          );
        if (output === 'table' && result.next !== undefined) {
          process.stderr.write(`(showing the first ${query.limit}; use --limit for more)\n`);
        }
      } finally {
        await store.close();
      }
    });
}
