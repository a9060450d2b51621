import type { Command } from 'commander';
import { activityReport } from '../../analyze/activity.js';
import { latencyReport } from '../../analyze/latency.js';
import { resolveDataDir } from '../common.js';
import { withReadStore } from '../read-store.js';
import { activityDoc, latencyDoc } from '../report-docs.js';
import {
  addReportOptions,
  printReport,
  type ReportFlags,
  reportFilter,
  reportLimit,
} from '../report-flags.js';
import { reportNoun } from './rbac-shared.js';

/** `kaudit report <name>`: the analyses, over the store (or through the running agent). */
export function registerReport(program: Command): Command {
  const report = reportNoun(program).addHelpText(
    'after',
    `
Every report covers the last 24 hours of the data unless --since/--until say otherwise, and prints
text tables, Markdown (--format md) or one JSON document (--json).`,
  );

  addReportOptions(
    report
      .command('latency')
      .description('Slow requests, the clients that load the API server, 429s and expensive LISTs'),
    20,
  )
    .addHelpText(
      'after',
      `
Examples:
  kaudit report latency --since 6h
  kaudit report latency --verb list --format md > slow-lists.md`,
    )
    .action(async (flags: ReportFlags) => {
      const filter = reportFilter(flags);
      await withReadStore(resolveDataDir(flags.data), async (store) => {
        const r = await latencyReport(store, { filter, limit: reportLimit(flags, 20) });
        printReport(flags, r, latencyDoc(r));
      });
    });

  addReportOptions(
    report
      .command('activity')
      .description('Top subjects, user agents, sources, verbs and resources; rates; first-seen subjects'),
    10,
  )
    .addHelpText(
      'after',
      `
Examples:
  kaudit report activity --cluster prod
  kaudit report activity --namespace payments --json | jq .newSubjects`,
    )
    .action(async (flags: ReportFlags) => {
      const filter = reportFilter(flags);
      await withReadStore(resolveDataDir(flags.data), async (store) => {
        const r = await activityReport(store, { filter, limit: reportLimit(flags, 10) });
        printReport(flags, r, activityDoc(r));
      });
    });
  return report;
}
