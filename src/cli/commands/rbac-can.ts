import type { Command } from 'commander';
import { closestGrant } from '../../analyze/denials/closest-grant.js';
import { authenticatedGroups, RbacAuthorizer, SERVICE_ACCOUNT_PREFIX } from '../../analyze/rbac/authorize.js';
import type { AuthzRequest } from '../../analyze/rbac/evaluation.js';
import type { PolicyRule } from '../../analyze/rbac/types.js';
import { UserError } from '../../model/errors.js';
import { EXIT_FINDINGS, setExitCode } from '../main.js';
import { toJson } from '../output.js';
import { chooseFormat, collect, formatOption, mdTable, rbacNoun, readRbacFile } from './rbac-shared.js';

interface CanFlags {
  rbac?: string;
  namespace?: string;
  name?: string;
  subresource?: string;
  apiGroup?: string;
  group: string[];
  json?: boolean;
  format?: string;
}

/** `alice`, `system:serviceaccount:NS:NAME`, `serviceaccount:NS:NAME` (or `sa:`), `group:NAME`. */
export function parseSubjectArg(
  arg: string,
  extraGroups: readonly string[],
): { user: string; groups: string[] } {
  const m = /^(?:serviceaccount|sa):([^:]+):([^:]+)$/.exec(arg);
  if (m)
    return {
      user: `${SERVICE_ACCOUNT_PREFIX}${m[1]}:${m[2]}`,
      groups: authenticatedGroups(`${SERVICE_ACCOUNT_PREFIX}${m[1]}:${m[2]}`, extraGroups),
    };
  if (arg.startsWith('group:')) {
    const g = arg.slice('group:'.length);
    if (g === '')
      throw new UserError('KAUDIT_FLAG_INVALID', 'subject "group:" names no group', { hint: 'group:devs' });
    return { user: '', groups: [g, ...extraGroups] };
  }
  if (arg === '')
    throw new UserError('KAUDIT_FLAG_INVALID', 'the subject is empty', {
      hint: 'alice, serviceaccount:ci:deployer or group:devs',
    });
  return { user: arg, groups: authenticatedGroups(arg, extraGroups) };
}

/** `pods`, `pods/log`, `deployments.apps`, `deployments.apps/scale`, or a URL path `/healthz`. */
export function parseResourceArg(
  arg: string,
  flags: Pick<CanFlags, 'subresource' | 'apiGroup'>,
): Pick<AuthzRequest, 'resourceRequest' | 'apiGroup' | 'resource' | 'subresource' | 'path'> {
  if (arg.startsWith('/'))
    return { resourceRequest: false, apiGroup: '', resource: '', subresource: '', path: arg };
  const [res = '', sub = '', ...rest] = arg.split('/');
  if (res === '' || rest.length > 0) {
    throw new UserError(
      'KAUDIT_FLAG_INVALID',
      `resource ${JSON.stringify(arg)}: expected RESOURCE[.GROUP][/SUBRESOURCE] or a /path`,
      {
        hint: 'pods, pods/log, deployments.apps/scale, /healthz',
      },
    );
  }
  const dot = res.indexOf('.');
  const resource = dot < 0 ? res : res.slice(0, dot);
  const group = flags.apiGroup ?? (dot < 0 ? '' : res.slice(dot + 1));
  return {
    resourceRequest: true,
    apiGroup: group,
    resource,
    subresource: flags.subresource ?? sub,
    path: '',
  };
}

export function ruleText(r: PolicyRule): string {
  const parts = [`verbs=[${r.verbs.join(',')}]`];
  if (r.nonResourceURLs?.length) parts.push(`nonResourceURLs=[${r.nonResourceURLs.join(',')}]`);
  if (r.apiGroups?.length)
    parts.push(`apiGroups=[${r.apiGroups.map((g) => (g === '' ? '""' : g)).join(',')}]`);
  if (r.resources?.length) parts.push(`resources=[${r.resources.join(',')}]`);
  if (r.resourceNames?.length) parts.push(`resourceNames=[${r.resourceNames.join(',')}]`);
  return parts.join(' ');
}

export function registerRbacCan(program: Command): void {
  rbacNoun(program)
    .command('can')
    .description(
      "The RBAC authorizer's answer: may SUBJECT do VERB on RESOURCE, and which binding and rule allow it",
    )
    .argument(
      '<subject>',
      'a username (alice, system:serviceaccount:NS:NAME), serviceaccount:NS:NAME, or group:NAME',
    )
    .argument('<verb>', 'get, list, watch, create, update, patch, delete, deletecollection, or a custom verb')
    .argument(
      '<resource>',
      'RESOURCE[.GROUP][/SUBRESOURCE] (pods, deployments.apps/scale) or a URL path (/healthz)',
    )
    .option(
      '--rbac <file>',
      'the cluster RBAC (kubectl get clusterroles,clusterrolebindings,roles,rolebindings -A -o yaml)',
    )
    .option('-n, --namespace <ns>', 'the namespace of the request (none: cluster-wide)')
    .option('--name <name>', 'the object name (for rules with resourceNames)')
    .option('--subresource <s>', 'the subresource (also as RESOURCE/SUBRESOURCE)')
    .option('--api-group <g>', 'the API group (also as RESOURCE.GROUP)')
    .option(
      '--group <g>',
      'a group the user belongs to (repeatable); system:authenticated is added',
      collect,
      [],
    )
    .option('--json', 'the answer as one JSON object')
    .addOption(formatOption(['table', 'md'], 'table'))
    .addHelpText(
      'after',
      `
Exits 0 when allowed, 1 when not. Only RBAC is evaluated: other authorizers (Node, webhooks) and the
system:masters group's bypass are not.

Examples:
  kaudit rbac can alice list pods -n dev --rbac rbac.yaml
  kaudit rbac can serviceaccount:ci:deployer patch deployments.apps/scale -n app2 --name api --rbac rbac.yaml
  kaudit rbac can bob get /metrics --group monitoring --rbac rbac.yaml --json`,
    )
    .action((subjectArg: string, verb: string, resourceArg: string, flags: CanFlags) => {
      if (flags.rbac === undefined) {
        throw new UserError('KAUDIT_NO_INPUT', 'rbac can needs the cluster RBAC: --rbac FILE', {
          hint: 'kubectl get clusterroles,clusterrolebindings,roles,rolebindings -A -o yaml > rbac.yaml',
        });
      }
      const who = parseSubjectArg(subjectArg, flags.group);
      const what = parseResourceArg(resourceArg, flags);
      const req: AuthzRequest = {
        user: who.user,
        groups: who.groups,
        verb,
        ...what,
        namespace: what.resourceRequest ? (flags.namespace ?? '') : '',
        name: flags.name ?? '',
      };
      const authz = new RbacAuthorizer(readRbacFile(flags.rbac));
      const result = authz.authorize(req);
      const closest = result.allowed ? undefined : closestGrant(authz, req);
      const format = chooseFormat(flags, 'table');
      if (format === 'json') {
        process.stdout.write(`${toJson({ request: req, ...result, ...(closest ? { closest } : {}) })}\n`);
      } else {
        const by = result.by;
        const where = req.resourceRequest
          ? req.namespace === ''
            ? 'cluster-wide'
            : `in namespace ${req.namespace}`
          : '';
        const row = {
          allowed: result.allowed ? 'yes' : 'no',
          binding: by
            ? `${by.bindingKind} ${by.bindingNamespace === '' ? '' : `${by.bindingNamespace}/`}${by.binding}`
            : '',
          role: by ? `${by.roleKind} ${by.role}` : '',
          rule: by ? `rules[${by.ruleIndex}] ${ruleText(by.rule)}` : '',
        };
        if (format === 'md') process.stdout.write(mdTable(['allowed', 'binding', 'role', 'rule'], [row]));
        else {
          process.stdout.write(`${row.allowed}\n`);
          if (by) process.stdout.write(`allowed by ${row.binding} -> ${row.role} ${row.rule}\n`);
          else {
            process.stdout.write(
              `no rule bound to ${subjectArg} allows ${verb} ${resourceArg} ${where}\n`.replace(/ \n$/, '\n'),
            );
            if (closest) {
              process.stdout.write(
                `closest: ${closest.bindingKind} ${closest.bindingNamespace === '' ? '' : `${closest.bindingNamespace}/`}${closest.binding} -> ${closest.roleKind} ${closest.role} rules[${closest.ruleIndex}] ${ruleText(closest.rule)}; lacks ${closest.lacks.join(', ')}\n`,
              );
            }
          }
        }
      }
      if (!result.allowed) setExitCode(EXIT_FINDINGS);
    });
}
