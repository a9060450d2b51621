import type { Command } from 'commander';
import { queryAlerts, SEVERITIES } from '../../detect/alert-log.js';
import { UserError } from '../../model/errors.js';
import { dataOption, parseIntFlag, parseTimeFlag, resolveDataDir } from '../common.js';
import { formatTable, toJson } from '../output.js';

interface AlertsFlags {
  data?: string;
  since?: string;
  until?: string;
  severity?: string;
  rule?: string;
  cluster?: string;
  limit: string;
  json?: boolean;
}

export function registerAlerts(program: Command): void {
  program
    .command('alerts')
    .description('Alerts raised by detections (the agent, or kaudit detect --data), newest first')
    .addOption(dataOption())
    .option('--since <when>', 'from this time: a duration ago (1h, 7d) or RFC3339')
    .option('--until <when>', 'before this time')
    .option('--severity <level>', `at or above: ${SEVERITIES.join(', ')}`)
    .option('--rule <ids>', 'only these rules (comma-separated)')
    .option('--cluster <names>', 'only these clusters (comma-separated)')
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'one alert a line (NDJSON), as the agent writes them')
    .addHelpText(
      'after',
      `
Examples:
  kaudit alerts --since 24h --severity high
  kaudit alerts --json | jq -r '.auditID'`,
    )
    .action(async (flags: AlertsFlags) => {
      if (flags.severity !== undefined && !(SEVERITIES as readonly string[]).includes(flags.severity))
        throw new UserError(
          'KAUDIT_FLAG_INVALID',
          `--severity ${JSON.stringify(flags.severity)}: expected one of ${SEVERITIES.join(', ')}`,
        );
      const alerts = await queryAlerts(resolveDataDir(flags.data), {
        limit: parseIntFlag('--limit', flags.limit, 1),
        ...(flags.since === undefined ? {} : { since: parseTimeFlag('--since', flags.since) }),
        ...(flags.until === undefined ? {} : { until: parseTimeFlag('--until', flags.until) }),
        ...(flags.severity === undefined ? {} : { minSeverity: flags.severity }),
        ...(flags.rule === undefined ? {} : { rule: flags.rule.split(',') }),
        ...(flags.cluster === undefined ? {} : { cluster: flags.cluster.split(',') }),
      });
      if (flags.json) {
        for (const a of alerts) process.stdout.write(`${toJson(a)}\n`);
        return;
      }
      if (alerts.length === 0) {
        process.stderr.write('no alerts match\n');
        return;
      }
      const rows = alerts.map((a) => ({
        time: a.time,
        severity: a.rule.severity,
        rule: a.rule.id,
        subject: a.subject,
        message: a.message,
        audit_id: a.auditID ?? (a.auditIDs ?? []).join(','),
      }));
      process.stdout.write(formatTable(['time', 'severity', 'rule', 'subject', 'message', 'audit_id'], rows));
    });
}
