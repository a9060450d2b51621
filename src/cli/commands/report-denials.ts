import type { Command } from 'commander';
import type { ExistingRole } from '../../analyze/denials/closest-grant.js';
import { denialsFromStore } from '../../analyze/denials/denials-from-store.js';
import { type DenialGroup, type DenialsReport, reportDenials } from '../../analyze/denials/denials-report.js';
import { UserError } from '../../model/errors.js';
import { dataOption, parseIntFlag, resolveDataDir } from '../common.js';
import { formatTable, toJson } from '../output.js';
import { withReadStore } from '../read-store.js';
import {
  chooseFormat,
  formatOption,
  fromOption,
  mdTable,
  rbacYaml,
  readRbacFile,
  recordsFrom,
  reportNoun,
  storeFilter,
} from './rbac-shared.js';

interface DenialsFlags {
  from?: string[];
  data?: string;
  since?: string;
  until?: string;
  cluster?: string;
  rbac?: string;
  limit?: string;
  suspiciousResources: string;
  suspiciousNamespaces: string;
  json?: boolean;
  format?: string;
}

function existingRoleText(r: ExistingRole): string {
  const where = r.kind === 'Role' ? ` in ${r.namespace}` : '';
  return `Or bind the existing ${r.kind} ${r.name}${where}: it already allows all of them (${r.rules} rule${r.rules === 1 ? '' : 's'}, no wildcards).`;
}

function what(g: DenialGroup): string {
  if (g.nonResourceURL !== '') return g.nonResourceURL;
  const res = g.apiGroup === '' ? g.resource : `${g.resource}.${g.apiGroup}`;
  return g.subresource === '' ? res : `${res}/${g.subresource}`;
}

function groupRows(r: DenialsReport) {
  return r.groups.map((g) => ({
    class: g.admission ? `${g.class}:${g.admission.kind}` : g.class,
    subject: g.subject === '' ? '(unauthenticated)' : g.subject,
    verb: g.verb,
    resource: what(g),
    namespace: g.namespace,
    count: g.count,
    first_seen: g.firstSeen,
    last_seen: g.lastSeen,
    source_ips: g.sourceIPs.join(','),
    user_agent: g.userAgents[0] ?? '',
    audit_id: g.exampleAuditID,
    ...(g.closest !== undefined
      ? {
          closest: g.allowedNow
            ? '(allowed now)'
            : g.closest === null
              ? '(no role bound)'
              : `${g.closest.roleKind} ${g.closest.role} rules[${g.closest.ruleIndex}] lacks ${g.closest.lacks.join(', ')}`,
        }
      : {}),
    message: g.message,
  }));
}

const COLUMNS = [
  'class',
  'subject',
  'verb',
  'resource',
  'namespace',
  'count',
  'last_seen',
  'source_ips',
  'message',
];
const MD_COLUMNS = [
  'class',
  'subject',
  'verb',
  'resource',
  'namespace',
  'count',
  'first_seen',
  'last_seen',
  'source_ips',
  'user_agent',
  'audit_id',
  'message',
];

export function registerReportDenials(program: Command): void {
  reportNoun(program)
    .command('denials')
    .description(
      'Refused requests grouped by subject, verb, resource and namespace: why (RBAC, admission, authentication, other) and the RBAC that fixes them',
    )
    .addOption(fromOption())
    .addOption(dataOption())
    .option('--since <when>', 'with the store: from this time, a duration ago (1h, 7d) or RFC3339')
    .option('--until <when>', 'with the store: before this time')
    .option('--cluster <names>', 'with the store: only these clusters (comma-separated)')
    .option(
      '--rbac <file>',
      'the cluster RBAC: the closest existing role per denial, and fixes that only add what is missing',
    )
    .option('--limit <n>', 'show at most this many groups, the largest first')
    .option(
      '--suspicious-resources <n>',
      'a subject denied on this many distinct resources is probing, not missing a permission',
      '6',
    )
    .option('--suspicious-namespaces <n>', 'a subject denied in this many namespaces is probing', '5')
    .option('--json', 'the whole report as one JSON object')
    .addOption(formatOption(['table', 'md'], 'table'))
    .addHelpText(
      'after',
      `
Classes: rbac (the authorizer said forbid), admission (the authorizer allowed it and an admission
step refused: PodSecurity, a validating webhook or policy, ResourceQuota, LimitRange,
NamespaceLifecycle), authentication (401), other (429 from API Priority and Fairness, 409 ...).
Each subject with rbac denials gets the smallest Role/ClusterRole and binding that allows them,
unless it looks like probing: anonymous, denied on many resources or namespaces, or never seen
succeeding while denied on several resources.

Examples:
  kaudit report denials --from audit.log
  kaudit report denials --from audit.log --rbac rbac.yaml --format md > ticket.md
  kaudit report denials --from audit.log --json | jq '.subjects[] | select(.fix)'`,
    )
    .action(async (flags: DenialsFlags) => {
      const rbac = flags.rbac === undefined ? undefined : readRbacFile(flags.rbac);
      const limit = flags.limit === undefined ? undefined : parseIntFlag('--limit', flags.limit, 1);
      const options = {
        suspiciousResources: parseIntFlag('--suspicious-resources', flags.suspiciousResources, 1),
        suspiciousNamespaces: parseIntFlag('--suspicious-namespaces', flags.suspiciousNamespaces, 1),
        ...(rbac ? { rbac } : {}),
        ...(limit === undefined ? {} : { limit }),
      };
      // From the store, the store counts the requests and only the refused ones are read.
      const report =
        flags.from !== undefined && flags.from.length > 0
          ? await reportDenials(recordsFrom(flags, 'report denials'), options)
          : await withReadStore(resolveDataDir(flags.data), (store) =>
              denialsFromStore(store, storeFilter(flags), options),
            );
      if (report.requests === 0) {
        throw new UserError('KAUDIT_NO_INPUT', 'the audit logs hold no completed requests', {
          hint: 'kaudit reads ResponseComplete events; check the audit policy logs that stage',
        });
      }
      const format = chooseFormat(flags, 'table');
      const out = process.stdout;
      const withClosest = (cols: string[]) => (rbac ? [...cols.slice(0, -1), 'closest', 'message'] : cols);
      const columns = withClosest(COLUMNS);
      const fixes = report.subjects.filter((s) => s.fix !== null);
      const suspicious = report.subjects.filter((s) => s.suspicious.length > 0);
      const counts = `${report.denied} of ${report.requests} requests denied: rbac ${report.byClass.rbac}, admission ${report.byClass.admission}, authentication ${report.byClass.authentication}, other ${report.byClass.other}`;
      if (format === 'json') out.write(`${toJson(report)}\n`);
      else if (format === 'md') {
        out.write(
          `## Denied requests\n\n${counts} (${report.from ?? '?'} to ${report.to ?? '?'}).\n\n${mdTable(withClosest(MD_COLUMNS), groupRows(report))}`,
        );
        if (suspicious.length > 0) {
          out.write(
            `\n### Suspicious subjects (no fix proposed)\n\n${mdTable(
              ['subject', 'why'],
              suspicious.map((s) => ({
                subject: s.subject || '(unauthenticated)',
                why: s.suspicious.join('; '),
              })),
            )}`,
          );
        }
        for (const s of fixes) {
          out.write(`\n### RBAC fix for ${s.subject}\n\n`);
          if (s.fix?.existingRole) out.write(`${existingRoleText(s.fix.existingRole)}\n\n`);
          out.write(`\`\`\`yaml\n${rbacYaml(s.fix?.objects ?? [])}\`\`\`\n`);
        }
      } else {
        out.write(`${counts}\n\n`);
        if (report.groups.length > 0) out.write(formatTable(columns, groupRows(report), 80));
        for (const s of suspicious)
          out.write(
            `\nsuspicious: ${s.subject || '(unauthenticated)'}: ${s.suspicious.join('; ')} (no fix proposed)\n`,
          );
        for (const s of fixes) {
          out.write(`\n# RBAC fix for ${s.subject}: allows its ${s.fix?.requests ?? 0} denied request(s)\n`);
          if (s.fix?.existingRole) out.write(`# ${existingRoleText(s.fix.existingRole)}\n`);
          out.write(rbacYaml(s.fix?.objects ?? []));
        }
      }
    });
}
