import type { Command } from 'commander';
import { Option } from 'commander';
import { type GrantRef, type ReviewReport, reviewRbac } from '../../analyze/rbac/review.js';
import type { RiskSeverity } from '../../analyze/rbac/risky-permissions.js';
import { subjectLabel } from '../../analyze/rbac/subjects.js';
import { UserError } from '../../model/errors.js';
import { dataOption } from '../common.js';
import { EXIT_FINDINGS, setExitCode } from '../main.js';
import { formatTable, toJson } from '../output.js';
import { ruleText } from './rbac-can.js';
import {
  chooseFormat,
  collect,
  formatOption,
  fromOption,
  mdTable,
  rbacNoun,
  rbacYaml,
  readRbacFile,
  recordsFrom,
} from './rbac-shared.js';

interface ReviewFlags {
  from?: string[];
  data?: string;
  since?: string;
  until?: string;
  cluster?: string;
  rbac?: string;
  user: string[];
  includeSystem?: boolean;
  proposals?: boolean;
  failOn?: RiskSeverity;
  json?: boolean;
  format?: string;
}

const SEVERITIES: RiskSeverity[] = ['critical', 'high', 'medium', 'low'];

const grantText = (g: GrantRef) =>
  `${g.bindingKind} ${g.bindingNamespace === '' ? '' : `${g.bindingNamespace}/`}${g.binding} -> ${g.roleKind} ${g.role} rules[${g.ruleIndex}]`;

function subjectRows(r: ReviewReport) {
  return r.subjects.map((s) => ({
    subject: subjectLabel(s.subject),
    requests: s.requests,
    grants: s.grants.length,
    unused: s.unusedGrants,
    wildcard: s.wildcardGrants,
    cluster_admin: s.clusterAdmin.map((b) => b.binding).join(','),
    critical: s.risks.filter((x) => x.severity === 'critical').length,
    high: s.risks.filter((x) => x.severity === 'high').length,
    risky_used: s.risks.filter((x) => x.used).length,
  }));
}

function riskRows(r: ReviewReport) {
  return r.subjects.flatMap((s) =>
    s.risks.map((x) => ({
      severity: x.severity,
      subject: subjectLabel(s.subject),
      risk: x.id,
      where: x.namespace === '' ? '(cluster-wide)' : x.namespace,
      granted_by: [...new Set(x.grants.map(grantText))].join('; '),
      used: x.used ? `yes (${x.exampleAuditID})` : 'no',
    })),
  );
}

function unusedRows(r: ReviewReport) {
  return r.subjects.flatMap((s) =>
    s.grants
      .filter((g) => g.used === 0)
      .map((g) => ({ subject: subjectLabel(s.subject), grant: grantText(g), rule: ruleText(g.rule) })),
  );
}

function unseenRows(r: ReviewReport) {
  return r.unseenBindingSubjects.map((u) => ({
    binding: `${u.bindingKind} ${u.bindingNamespace === '' ? '' : `${u.bindingNamespace}/`}${u.binding}`,
    role: u.role,
    subject: subjectLabel(u.subject),
  }));
}

export function registerRbacReview(program: Command): void {
  rbacNoun(program)
    .command('review')
    .description(
      'Hold the cluster RBAC against observed use: unused and wildcard grants, cluster-admin, risky permissions and whether they were used',
    )
    .addOption(fromOption())
    .addOption(dataOption())
    .option('--since <when>', 'with the store: from this time, a duration ago (1h, 7d) or RFC3339')
    .option('--until <when>', 'with the store: before this time')
    .option('--cluster <names>', 'with the store: only these clusters (comma-separated)')
    .option(
      '--rbac <file>',
      'the cluster RBAC (kubectl get clusterroles,clusterrolebindings,roles,rolebindings -A -o yaml)',
    )
    .option(
      '--user <name>',
      'review only this user or system:serviceaccount:NS:NAME (repeatable)',
      collect,
      [],
    )
    .option('--include-system', 'also report never-seen binding subjects named system:*')
    .option('--proposals', 'print the tightened roles built from observed use (table format)')
    .addOption(
      new Option(
        '--fail-on <severity>',
        'exit 1 when a risky permission of this severity or worse is granted',
      ).choices(SEVERITIES),
    )
    .option('--json', 'the whole review as one JSON object')
    .addOption(formatOption(['table', 'md'], 'table'))
    .addHelpText(
      'after',
      `
The risky permissions cover rbac-police's policy library and KubiScan's risky roles (see
docs/rbac.md); each is asked of the RBAC authorizer, so wildcards, aggregated roles and group
bindings count exactly as kube-apiserver counts them. "used" means the subject made a successful
request in the window that the granting rule allowed.

Examples:
  kaudit rbac review --rbac rbac.yaml --from audit.log
  kaudit rbac review --rbac rbac.yaml --from audit.log --user system:serviceaccount:ci:deployer --proposals
  kaudit rbac review --rbac rbac.yaml --from audit.log --format md --fail-on high`,
    )
    .action(async (flags: ReviewFlags) => {
      if (flags.rbac === undefined) {
        throw new UserError('KAUDIT_NO_INPUT', 'rbac review needs the cluster RBAC: --rbac FILE', {
          hint: 'kubectl get clusterroles,clusterrolebindings,roles,rolebindings -A -o yaml > rbac.yaml',
        });
      }
      const rbac = readRbacFile(flags.rbac);
      const report = await reviewRbac(recordsFrom(flags, 'rbac review'), {
        rbac,
        ...(flags.user.length > 0 ? { users: flags.user } : {}),
        ...(flags.includeSystem ? { includeSystemSubjects: true } : {}),
      });
      if (flags.user.length > 0 && report.subjects.length === 0) {
        throw new UserError(
          'KAUDIT_RBAC_UNKNOWN_SUBJECT',
          `no RBAC grants for ${flags.user.join(', ')} in ${flags.rbac}`,
        );
      }
      const format = chooseFormat(flags, 'table');
      const out = process.stdout;
      if (format === 'json') out.write(`${toJson(report)}\n`);
      else if (format === 'md') {
        out.write(
          `## RBAC review\n\n${report.requests} requests, ${report.from ?? '?'} to ${report.to ?? '?'}.\n\n`,
        );
        out.write(
          mdTable(
            [
              'subject',
              'requests',
              'grants',
              'unused',
              'wildcard',
              'cluster_admin',
              'critical',
              'high',
              'risky_used',
            ],
            subjectRows(report),
          ),
        );
        out.write(
          `\n### Risky permissions\n\n${mdTable(['severity', 'subject', 'risk', 'where', 'granted_by', 'used'], riskRows(report))}`,
        );
        out.write(`\n### Grants never used\n\n${mdTable(['subject', 'grant', 'rule'], unusedRows(report))}`);
        out.write(
          `\n### Bindings to subjects never seen\n\n${mdTable(['binding', 'role', 'subject'], unseenRows(report))}`,
        );
        for (const s of report.subjects) {
          if (s.proposal.length > 0)
            out.write(
              `\n### Tightened RBAC for ${subjectLabel(s.subject)}\n\n\`\`\`yaml\n${rbacYaml(s.proposal)}\`\`\`\n`,
            );
        }
      } else {
        out.write(
          formatTable(
            [
              'subject',
              'requests',
              'grants',
              'unused',
              'wildcard',
              'cluster_admin',
              'critical',
              'high',
              'risky_used',
            ],
            subjectRows(report),
            70,
          ),
        );
        const risks = riskRows(report);
        if (risks.length > 0)
          out.write(
            `\n${formatTable(['severity', 'subject', 'risk', 'where', 'granted_by', 'used'], risks, 90)}`,
          );
        const unseen = unseenRows(report);
        if (unseen.length > 0)
          out.write(
            `\nBindings to subjects never seen in the window:\n${formatTable(['binding', 'role', 'subject'], unseen)}`,
          );
        if (flags.proposals) {
          for (const s of report.subjects) {
            if (s.proposal.length > 0)
              out.write(`\n# Tightened RBAC for ${subjectLabel(s.subject)}\n${rbacYaml(s.proposal)}`);
          }
        }
      }
      if (flags.failOn !== undefined) {
        const worst = SEVERITIES.indexOf(flags.failOn);
        if (report.subjects.some((s) => s.risks.some((x) => SEVERITIES.indexOf(x.severity) <= worst)))
          setExitCode(EXIT_FINDINGS);
      }
    });
}
