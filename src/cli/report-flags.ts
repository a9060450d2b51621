import { type Command, Option } from 'commander';
import { UserError } from '../model/errors.js';
import { filterFromParams } from '../store/filter-params.js';
import type { EventFilter } from '../store/query.js';
import { dataOption, parseIntFlag, parseTimeFlag } from './common.js';
import { toJson } from './output.js';
import { type ReportDoc, renderMarkdown, renderText } from './report-doc.js';

export interface ReportFlags {
  data?: string;
  cluster?: string;
  since?: string;
  until?: string;
  subject?: string;
  user?: string;
  verb?: string;
  resource?: string;
  namespace?: string;
  limit?: string;
  json?: boolean;
  format: 'table' | 'md';
}

/** The options every report takes: where, when, whose, how many, and how to print. */
export function addReportOptions(cmd: Command, defaultLimit: number): Command {
  return cmd
    .addOption(dataOption())
    .option('--cluster <names>', 'only these clusters (comma-separated)')
    .option(
      '--since <when>',
      'from this time: a duration ago (1h, 2d) or RFC3339 (default: 24 h before the newest event)',
    )
    .option('--until <when>', 'before this time (default: just after the newest event)')
    .option('--subject <names>', 'only requests made as these subjects')
    .option('--user <names>', 'only requests of these authenticated users')
    .option('--verb <verbs>', 'only these verbs')
    .option('--resource <res>', 'only this resource (pods, pods/exec, pods/*)')
    .option('--namespace <ns>', 'only these namespaces')
    .option('--limit <n>', 'rows per table', String(defaultLimit))
    .option('--json', 'the whole report as one JSON document')
    .addOption(
      new Option('--format <f>', 'table (text) or md (Markdown for a ticket)')
        .choices(['table', 'md'])
        .default('table'),
    );
}

/** The report's EventFilter from its flags; bad values are exit 2 naming the flag. */
export function reportFilter(flags: ReportFlags, now = Date.now()): EventFilter {
  const p = new URLSearchParams();
  for (const key of ['cluster', 'subject', 'user', 'verb', 'resource', 'namespace'] as const) {
    const v = flags[key];
    if (v !== undefined) p.set(key, v);
  }
  if (flags.since !== undefined) p.set('since', parseTimeFlag('--since', flags.since, now));
  if (flags.until !== undefined) p.set('until', parseTimeFlag('--until', flags.until, now));
  return filterFromParams(p, { flags: true });
}

export function reportLimit(flags: ReportFlags, fallback: number): number {
  return flags.limit === undefined ? fallback : parseIntFlag('--limit', flags.limit, 1);
}

/** Prints a report: the typed result as JSON, or its document as text or Markdown. */
export function printReport(flags: ReportFlags, result: unknown, doc: ReportDoc): void {
  if (flags.json) process.stdout.write(`${toJson(result)}\n`);
  else if (flags.format === 'md') process.stdout.write(renderMarkdown(doc));
  else process.stdout.write(renderText(doc));
}

export function requireValue(flag: string, value: string | undefined): string {
  if (value === undefined || value === '') throw new UserError('KAUDIT_FLAG_INVALID', `${flag} is required`);
  return value;
}
