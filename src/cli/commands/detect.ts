import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { AlertLog } from '../../detect/alert-log.js';
import { backtest } from '../../detect/backtest.js';
import { type Alert, DetectionEngine } from '../../detect/engine.js';
import { loadRuleSet } from '../../detect/rule-set.js';
import { type Diagnostic, formatDiagnostic, UserError } from '../../model/errors.js';
import { openReadStore } from '../../store/registry.js';
import { dataOption, resolveDataDir } from '../common.js';
import { setExitCode } from '../main.js';
import { formatTable, toJson } from '../output.js';
import { readLogs } from './policy-files.js';
import { collect, storeFilter } from './rbac-shared.js';

interface DetectFlags {
  rules?: string[];
  sigma?: string[];
  builtin: boolean;
  rule?: string;
  disable?: string;
  minSeverity?: string;
  data?: string;
  since?: string;
  until?: string;
  cluster?: string;
  save?: boolean;
  json?: boolean;
}

const SEVERITY_ORDER = ['info', 'low', 'medium', 'high', 'critical'];

export function registerDetect(program: Command): void {
  program
    .command('detect')
    .description(
      'Run detection rules (the built-in pack, your rules, Sigma rules) over audit log files, or over the store (a backtest)',
    )
    .argument(
      '[log...]',
      'audit log files (JSON lines, EventList, arrays, v1beta1, GKE/AKS exports, gzip); - for stdin',
    )
    .option(
      '--rules <path>',
      'also your rule file or directory (kaudit rule format); repeatable',
      collect,
      [],
    )
    .option(
      '--sigma <path>',
      'also a Sigma rule file or directory (logsource kubernetes/audit); repeatable',
      collect,
      [],
    )
    .option('--no-builtin', 'leave out the built-in pack')
    .option('--rule <ids>', 'only these rules (comma-separated ids)')
    .option('--disable <ids>', 'leave out these rules (comma-separated ids)')
    .option('--min-severity <level>', `only alerts at or above: ${SEVERITY_ORDER.join(', ')}`)
    .addOption(dataOption())
    .option('--since <when>', 'with the store: from this time, a duration ago (7d, 24h) or RFC3339')
    .option('--until <when>', 'with the store: before this time')
    .option('--cluster <names>', 'with the store: only these clusters (comma-separated)')
    .option(
      '--save',
      "with the store: record the alerts in the store's alert log (kaudit alerts, the dashboard)",
    )
    .option('--json', 'one alert a line (NDJSON)')
    .addHelpText(
      'after',
      `
Reads every event once, oldest first; stateful rules (thresholds, new terms, sequences) follow the
events' own timestamps, so a backtest raises what the live agent would have raised.
Exit status: 0 with or without alerts, 2 on bad input (unreadable files, malformed records, bad rules).

Examples:
  kaudit detect /var/log/kubernetes/audit/audit.log
  kaudit detect --sigma ./sigma/rules/application/kubernetes --json audit.log.gz
  kaudit detect --data /var/lib/kaudit --since 7d --min-severity high
  kaudit detect --no-builtin --rules ./my-rules audit.log`,
    )
    .action(async (logs: string[], flags: DetectFlags) => {
      if (flags.minSeverity !== undefined && !SEVERITY_ORDER.includes(flags.minSeverity))
        throw new UserError(
          'KAUDIT_FLAG_INVALID',
          `--min-severity ${JSON.stringify(flags.minSeverity)}: expected one of ${SEVERITY_ORDER.join(', ')}`,
        );
      const split = (s: string | undefined) =>
        s === undefined ? undefined : s.split(',').map((x) => x.trim());
      const set = loadRuleSet({
        builtin: flags.builtin,
        rules: flags.rules ?? [],
        sigma: flags.sigma ?? [],
        disabled: split(flags.disable) ?? [],
        only: split(flags.rule) ?? [],
      });
      reportRuleProblems(set.diagnostics);
      if (set.rules.length === 0)
        throw new UserError('KAUDIT_NO_RULES', 'no rules to run', {
          hint: 'drop --no-builtin, or give --rules or --sigma',
        });
      const engine = new DetectionEngine(set.rules);
      const min = SEVERITY_ORDER.indexOf(flags.minSeverity ?? 'info');
      const keep = (a: Alert) => SEVERITY_ORDER.indexOf(a.rule.severity) >= min;
      const progress = process.stderr.isTTY
        ? (n: number) => process.stderr.write(`\rkaudit: ${n.toLocaleString('en-US')} events read`)
        : undefined;

      let alerts: Alert[];
      let events: number;
      if (logs.length > 0) {
        if (flags.since !== undefined || flags.until !== undefined || flags.save)
          throw new UserError(
            'KAUDIT_FLAG_INVALID',
            '--since, --until and --save go with the store, not with log files',
          );
        ({ alerts, events } = await detectInLogs(logs, engine, keep, progress));
      } else {
        const dataDir = resolveDataDir(flags.data);
        const store = await openReadStore(dataDir);
        try {
          const filter = storeFilter(flags);
          const result = await backtest(store, filter, engine, progress);
          events = result.events;
          alerts = (result.alerts as Alert[]).filter(keep);
        } finally {
          await store.close();
        }
        if (flags.save) {
          if (!existsSync(dataDir))
            throw new UserError(
              'KAUDIT_FLAG_INVALID',
              `--save needs a local data directory; ${dataDir} does not exist`,
            );
          const log = await AlertLog.open(dataDir);
          const fresh = await log.append(alerts);
          process.stderr.write(`kaudit: ${fresh.length} new alert(s) recorded in ${log.path}\n`);
        }
      }
      if (progress !== undefined) process.stderr.write('\n');
      printAlerts(alerts, flags.json === true);
      process.stderr.write(
        `kaudit: ${events.toLocaleString('en-US')} events, ${set.rules.length} rules, ${alerts.length} alert(s)${summary(alerts)}\n`,
      );
    });
}

/** Prints every problem of the rule files; errors stop the run (exit 2). */
export function reportRuleProblems(diagnostics: readonly Diagnostic[]): void {
  const errors = diagnostics.filter((d) => d.severity === 'error');
  // Pointed at all of SigmaHQ, thousands of rules are for other log sources: say so once.
  const skipped = diagnostics.filter((d) => d.code === 'KAUDIT_SIGMA_SKIPPED');
  const shown = skipped.length > 5 ? diagnostics.filter((d) => !skipped.slice(3).includes(d)) : diagnostics;
  for (const d of shown) process.stderr.write(`kaudit: ${formatDiagnostic(d)}\n`);
  if (shown.length < diagnostics.length)
    process.stderr.write(
      `kaudit: ... and ${skipped.length - 3} more Sigma rules skipped (not Kubernetes audit rules)\n`,
    );
  if (errors.length > 0)
    throw new UserError('KAUDIT_RULE_INVALID', `${errors.length} problem(s) in the rules; nothing was run`, {
      hint: 'kaudit rules list --rules DIR checks rule files without running them',
    });
}

async function detectInLogs(
  paths: readonly string[],
  engine: DetectionEngine,
  keep: (a: Alert) => boolean,
  progress: ((n: number) => void) | undefined,
): Promise<{ alerts: Alert[]; events: number }> {
  const alerts: Alert[] = [];
  let events = 0;
  let bad = 0;
  const logs = readLogs(paths, (r) => {
    bad += r.malformed;
    process.stderr.write(
      `kaudit: ${r.path}: ${r.malformed} malformed record(s) not read, first ${r.first}\n`,
    );
  });
  for await (const { event } of logs) {
    events++;
    for (const a of engine.process(event, { cluster: '' })) if (keep(a)) alerts.push(a);
    if (progress !== undefined && events % 50_000 === 0) progress(events);
  }
  // Alerts were printed for every good event; the bad ones still make this run a failure.
  if (bad > 0) setExitCode(2);
  return { alerts, events };
}

function printAlerts(alerts: readonly Alert[], json: boolean): void {
  if (json) {
    for (const a of alerts) process.stdout.write(`${toJson(a)}\n`);
    return;
  }
  if (alerts.length === 0) return;
  const rows = alerts.map((a) => ({
    time: a.time,
    severity: a.rule.severity,
    rule: a.rule.id,
    subject: a.subject,
    verb: a.verb,
    resource: a.resource,
    object: a.namespace === null ? a.name : `${a.namespace}/${a.name ?? ''}`,
    message: a.message,
  }));
  process.stdout.write(
    formatTable(['time', 'severity', 'rule', 'subject', 'verb', 'resource', 'object', 'message'], rows),
  );
}

function summary(alerts: readonly Alert[]): string {
  if (alerts.length === 0) return '';
  const by = new Map<string, number>();
  for (const a of alerts) by.set(a.rule.severity, (by.get(a.rule.severity) ?? 0) + 1);
  const parts = [...SEVERITY_ORDER].reverse().flatMap((s) => (by.has(s) ? [`${by.get(s)} ${s}`] : []));
  return ` (${parts.join(', ')})`;
}
