import type { Command } from 'commander';
import { objectHistory, parseObjectTarget } from '../../analyze/history.js';
import { resolveDataDir } from '../common.js';
import { withReadStore } from '../read-store.js';
import { historyDoc } from '../report-docs.js';
import {
  addReportOptions,
  printReport,
  type ReportFlags,
  reportFilter,
  reportLimit,
} from '../report-flags.js';

export function registerHistory(program: Command): void {
  addReportOptions(
    program
      .command('history')
      .description('Every change of one object, in order: who, from where, with what, and the body logged')
      .argument(
        '<object>',
        'RESOURCE/NAMESPACE/NAME, or RESOURCE/NAME for cluster-scoped objects (deployments.apps/payments/api)',
      )
      .option(
        '--uid <uid>',
        'only events of the object with this metadata.uid (tells a re-created object apart)',
      ),
    500,
  )
    .addHelpText(
      'after',
      `
Without --since the whole store is searched.

Examples:
  kaudit history configmaps/payments/payments-config
  kaudit history clusterrolebindings/system:node-debugger --json`,
    )
    .action(async (object: string, flags: ReportFlags & { uid?: string }) => {
      const target = parseObjectTarget(object, flags.uid);
      const filter = reportFilter(flags);
      await withReadStore(resolveDataDir(flags.data), async (store) => {
        const r = await objectHistory(store, { target, filter, limit: reportLimit(flags, 500) });
        printReport(flags, r, historyDoc(r));
      });
    });
}
