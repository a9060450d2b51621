import type { Command } from 'commander';
import { type GenerateResult, generateRbac, type SubjectSelection } from '../../analyze/rbac/generate.js';
import {
  parseServiceAccountFlag,
  recordMatchesSubject,
  subjectLabel,
  subjectOfUser,
  usernamesOf,
} from '../../analyze/rbac/subjects.js';
import { RBAC_GROUP, type Subject } from '../../analyze/rbac/types.js';
import { collectRecords } from '../../analyze/request-record.js';
import { UserError } from '../../model/errors.js';
import { dataOption } from '../common.js';
import { formatTable, toJson } from '../output.js';
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

interface GenerateFlags {
  from?: string[];
  data?: string;
  since?: string;
  until?: string;
  cluster?: string;
  user: string[];
  serviceaccount: string[];
  group: string[];
  all?: boolean;
  rbac?: string;
  expandVerbs: boolean;
  expandMultiNamespace: boolean;
  expandMultiName: boolean;
  namePrefix: string;
  json?: boolean;
  format?: string;
}

function selection(flags: GenerateFlags): SubjectSelection {
  const subjects: Subject[] = [
    // A service account's username given as --user is bound as the ServiceAccount it is.
    ...flags.user.map(subjectOfUser),
    ...flags.serviceaccount.map(parseServiceAccountFlag),
    ...flags.group.map((name): Subject => ({ kind: 'Group', apiGroup: RBAC_GROUP, name })),
  ];
  if (flags.all === true) {
    if (subjects.length > 0)
      throw new UserError(
        'KAUDIT_FLAG_INVALID',
        '--all cannot be combined with --user, --serviceaccount or --group',
      );
    return { all: true };
  }
  if (subjects.length === 0) {
    throw new UserError(
      'KAUDIT_FLAG_INVALID',
      'name whom to generate RBAC for: --user U, --serviceaccount NS:NAME, --group G or --all',
      {
        hint: 'kaudit rbac generate --user alice --from audit.log',
      },
    );
  }
  return { subjects };
}

function summaryRows(r: GenerateResult) {
  return r.subjects.map((s) => ({
    subject: subjectLabel(s.subject),
    requests: s.requests,
    already_allowed: s.alreadyAllowed,
    objects:
      s.objects.map((o) => `${o.kind}${o.metadata.namespace ? ` ${o.metadata.namespace}` : ''}`).join(', ') ||
      '(nothing to add)',
  }));
}

export function registerRbacGenerate(program: Command): void {
  rbacNoun(program)
    .command('generate')
    .description(
      'Least-privilege Roles/ClusterRoles and bindings that allow exactly what the subjects were seen doing',
    )
    .addOption(fromOption())
    .addOption(dataOption())
    .option('--since <when>', 'with the store: from this time, a duration ago (1h, 7d) or RFC3339')
    .option('--until <when>', 'with the store: before this time')
    .option('--cluster <names>', 'with the store: only these clusters (comma-separated)')
    .option('--user <name>', 'a user (repeatable)', collect, [])
    .option('--serviceaccount <ns:name>', 'a service account (repeatable)', collect, [])
    .option('--group <name>', 'a group: one set of roles for what its members did (repeatable)', collect, [])
    .option('--all', 'every user and service account seen, each with its own roles')
    .option('--rbac <file>', 'the cluster RBAC: generate only what it does not already allow')
    .option(
      '--no-expand-verbs',
      'grant only the verbs seen (default: watch/list also get get/list/watch, update/patch also get and each other)',
    )
    .option(
      '--no-expand-multi-namespace',
      'keep one Role per namespace even when a resource is used in several',
    )
    .option('--no-expand-multi-name', 'keep resourceNames even when several names of a resource are used')
    .option('--name-prefix <prefix>', 'first part of the generated object names', 'kaudit')
    .option('--json', 'the result (per subject, with the objects) as one JSON object')
    .addOption(formatOption(['yaml', 'table', 'md'], 'yaml'))
    .addHelpText(
      'after',
      `
Follows audit2rbac: successful and denied requests both count; discovery and self-review requests
are left to the bootstrap roles (system:discovery, system:basic-user); when a request was made
through impersonation the impersonated user is the subject; create is never limited by name.
The YAML on stdout is ready for kubectl apply -f -.

Examples:
  kaudit rbac generate --user alice --from audit.log
  kaudit rbac generate --serviceaccount ci:deployer --from audit.log --rbac rbac.yaml
  kaudit rbac generate --all --from audit.log --format table
  kaudit rbac generate --group devs --from audit.log --no-expand-verbs`,
    )
    .action(async (flags: GenerateFlags) => {
      const select = selection(flags);
      const existing = flags.rbac === undefined ? undefined : readRbacFile(flags.rbac);
      const records = await collectRecords(
        recordsFrom(flags, 'rbac generate', 'subjects' in select ? usernamesOf(select.subjects) : undefined),
      );
      if ('subjects' in select) {
        const unknown = select.subjects.filter((s) => !records.some((r) => recordMatchesSubject(r, s)));
        if (unknown.length > 0) {
          const seen = [...new Set(records.map((r) => r.subject))].filter((s) => s !== '').slice(0, 8);
          throw new UserError(
            'KAUDIT_RBAC_UNKNOWN_SUBJECT',
            `no requests by ${unknown.map(subjectLabel).join(', ')} in the audit events`,
            {
              hint: seen.length > 0 ? `subjects seen: ${seen.join(', ')}` : 'the logs hold no requests',
            },
          );
        }
      }
      const result = await generateRbac(records, {
        select,
        expandVerbs: flags.expandVerbs,
        expandMultiNamespace: flags.expandMultiNamespace,
        expandMultiName: flags.expandMultiName,
        namePrefix: flags.namePrefix,
        ...(existing ? { existing } : {}),
      });
      const format = chooseFormat(flags, 'yaml');
      const out = process.stdout;
      if (format === 'json') out.write(`${toJson(result)}\n`);
      else if (format === 'table') {
        out.write(
          formatTable(['subject', 'requests', 'already_allowed', 'objects'], summaryRows(result), 100),
        );
      } else if (format === 'md') {
        out.write(
          `## RBAC generated from observed use\n\n${mdTable(['subject', 'requests', 'already_allowed', 'objects'], summaryRows(result))}`,
        );
        if (result.objects.length > 0) out.write(`\n\`\`\`yaml\n${rbacYaml(result.objects)}\`\`\`\n`);
      } else if (result.objects.length > 0) out.write(rbacYaml(result.objects));
      if (result.objects.length === 0 && format !== 'json') {
        process.stderr.write('kaudit: nothing to generate: every request is already allowed\n');
      }
    });
}
