import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { type Alert, DetectionEngine } from '../../detect/engine.js';
import { loadRuleFiles } from '../../detect/load-rules.js';
import type { Rule } from '../../detect/rule.js';
import { loadRuleSet } from '../../detect/rule-set.js';
import { readRuleTests, runRuleTests } from '../../detect/rule-tests.js';
import { UserError } from '../../model/errors.js';
import { setExitCode } from '../main.js';
import { formatTable, toJson } from '../output.js';
import { reportRuleProblems } from './detect.js';
import { readLogs } from './policy-files.js';
import { collect, nounCommand } from './rbac-shared.js';

interface ListFlags {
  rules?: string[];
  sigma?: string[];
  builtin: boolean;
  search?: string;
  json?: boolean;
}

/** What `rules list --json` prints for a rule: all a user needs to find and judge it. */
export function ruleSummary(r: Rule): Record<string, unknown> {
  return {
    id: r.id,
    title: r.title,
    severity: r.severity,
    kind: r.kind,
    tactic: r.tactic,
    technique: r.technique,
    tags: r.tags,
    equivalents: r.equivalents,
    source: r.source,
    description: r.description,
    falsePositives: r.falsePositives,
    references: r.references,
    ...(r.file === undefined || r.source === 'builtin' ? {} : { file: r.file }),
  };
}

export function registerRules(program: Command): void {
  const rules = nounCommand(program, 'rules', 'Detection rules: list them, test the ones you write');
  rules
    .command('list')
    .description(
      'Every rule: the built-in pack, your rules and Sigma rules, with the peer rules each corresponds to',
    )
    .option('--rules <path>', 'also your rule file or directory; repeatable', collect, [])
    .option('--sigma <path>', 'also a Sigma rule file or directory; repeatable', collect, [])
    .option('--no-builtin', 'leave out the built-in pack')
    .option(
      '--search <text>',
      'only rules whose id, title, tags or equivalents contain this (e.g. a Falco rule name)',
    )
    .option(
      '--json',
      'one rule a line (NDJSON) with id, title, severity, tactic, technique, equivalents, source',
    )
    .addHelpText(
      'after',
      `
Examples:
  kaudit rules list
  kaudit rules list --search "falco:Attach/Exec Pod"
  kaudit rules list --sigma ./sigma/rules --json | jq -r 'select(.source=="sigma") | .id'`,
    )
    .action((flags: ListFlags) => {
      const set = loadRuleSet({ builtin: flags.builtin, rules: flags.rules ?? [], sigma: flags.sigma ?? [] });
      reportRuleProblems(set.diagnostics);
      const needle = flags.search?.toLowerCase();
      const shown = set.rules.filter(
        (r) =>
          needle === undefined ||
          [r.id, r.title, ...r.tags, ...r.equivalents].some((s) => s.toLowerCase().includes(needle)),
      );
      if (flags.json) {
        for (const r of shown) process.stdout.write(`${toJson(ruleSummary(r))}\n`);
        return;
      }
      const rows = shown.map((r) => ({
        id: r.id,
        severity: r.severity,
        kind: r.kind,
        technique: r.technique.join(','),
        source: r.source,
        title: r.title,
        equivalents: r.equivalents.length,
      }));
      process.stdout.write(
        formatTable(['id', 'severity', 'kind', 'technique', 'source', 'equivalents', 'title'], rows, 70),
      );
      process.stderr.write(`kaudit: ${shown.length} rule(s); --json shows the equivalents by name\n`);
    });

  rules
    .command('test')
    .description('Test rules you write: run their test cases, or show what they raise on an audit log')
    .argument('<rules>', 'a rule file (one or more rules)')
    .argument(
      '[events]',
      'a test file (positive: / negative: cases), or an audit log; default: tests/<id>.yaml beside the rule file',
    )
    .option('--json', 'results (or alerts) as NDJSON')
    .addHelpText(
      'after',
      `
A test file lists events that must raise an alert of the rule and near misses that must not:
  positive:
    - name: exec into a pod in kube-system
      events:
        - {verb: create, objectRef: {resource: pods, subresource: exec, namespace: kube-system}}
  negative:
    - name: reading logs is not exec
      events:
        - {verb: get, objectRef: {resource: pods, subresource: log, namespace: kube-system}}
Fields a test event leaves out get defaults (docs/detect.md). Exit status 1 when a case fails.

Examples:
  kaudit rules test my-rules/exec.yaml
  kaudit rules test my-rules/exec.yaml cases.yaml
  kaudit rules test my-rules/exec.yaml /var/log/kubernetes/audit/audit.log`,
    )
    .action(async (ruleFile: string, events: string | undefined, flags: { json?: boolean }) => {
      if (!existsSync(ruleFile))
        throw new UserError('KAUDIT_FILE_UNREADABLE', `cannot read rule file ${ruleFile}: no such file`);
      const loaded = loadRuleFiles([ruleFile], 'user');
      reportRuleProblems(loaded.diagnostics);
      if (loaded.rules.length === 0) throw new UserError('KAUDIT_NO_RULES', `${ruleFile} holds no rule`);
      if (events !== undefined && !isTestFile(events)) {
        await alertsOnLog(loaded.rules, events, flags.json === true);
        return;
      }
      let failed = 0;
      const lines: string[] = [];
      for (const rule of loaded.rules) {
        const file = events ?? join(dirname(ruleFile), 'tests', `${rule.id}.yaml`);
        if (!existsSync(file))
          throw new UserError(
            'KAUDIT_FILE_UNREADABLE',
            `no tests for rule ${rule.id}: ${file} does not exist`,
            {
              hint: `write ${join('tests', `${rule.id}.yaml`)} beside ${basename(ruleFile)}, or give the test file`,
            },
          );
        const { tests, diagnostics } = readRuleTests(file);
        reportRuleProblems(diagnostics);
        for (const r of runRuleTests(rule, tests ?? { positive: [], negative: [] })) {
          if (!r.passed) failed++;
          if (flags.json)
            lines.push(
              toJson({ rule: r.rule, kind: r.kind, name: r.name, passed: r.passed, alerts: r.alerts.length }),
            );
          else
            lines.push(
              `${r.passed ? 'ok  ' : 'FAIL'} ${r.rule} ${r.kind}: ${r.name}${r.passed ? '' : r.kind === 'positive' ? ' (no alert)' : ` (${r.alerts.length} alert(s))`}`,
            );
        }
      }
      process.stdout.write(`${lines.join('\n')}\n`);
      process.stderr.write(`kaudit: ${lines.length - failed} passed, ${failed} failed\n`);
      if (failed > 0) setExitCode(1);
    });
}

/** A YAML file with positive/negative cases, as opposed to an audit log. */
function isTestFile(path: string): boolean {
  if (!/\.ya?ml$/.test(path) || !existsSync(path)) return false;
  return /^(positive|negative):/m.test(readFileSync(path, 'utf8').slice(0, 65_536));
}

async function alertsOnLog(rules: Rule[], path: string, json: boolean): Promise<void> {
  const engine = new DetectionEngine(rules);
  const alerts: Alert[] = [];
  let malformed = 0;
  for await (const { event } of readLogs([path], (r) => {
    malformed += r.malformed;
  }))
    alerts.push(...engine.process(event, { cluster: '' }));
  if (json) for (const a of alerts) process.stdout.write(`${toJson(a)}\n`);
  else for (const a of alerts) process.stdout.write(`${a.time} ${a.rule.id} ${a.auditID} ${a.message}\n`);
  process.stderr.write(
    `kaudit: ${alerts.length} alert(s)${malformed > 0 ? `, ${malformed} malformed record(s) not read` : ''}\n`,
  );
  if (malformed > 0) setExitCode(2);
}
