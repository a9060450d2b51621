import { createReadStream } from 'node:fs';
import type { Command } from 'commander';
import { UserError } from '../../model/errors.js';
import { LineSplitter } from '../../model/frame.js';
import { evaluatePolicy } from '../../policy/evaluate.js';
import { attributesFromJson, attributesFromRecord } from '../../policy/request-attributes.js';
import type { AuditDecision, RequestAttributes } from '../../policy/types.js';
import { formatTable, toJson } from '../output.js';
import {
  entryOption,
  fragmentOption,
  kubernetesVersionOption,
  type PolicySourceFlags,
  readPolicy,
  readTextFile,
} from './policy-files.js';

interface EvalFlags extends PolicySourceFlags {
  user?: string;
  group: string[];
  verb?: string;
  namespace?: string;
  resource?: string;
  name?: string;
  apiGroup?: string;
  path?: string;
  requests?: string;
  json?: boolean;
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function attributesFromFlags(flags: EvalFlags): RequestAttributes {
  if (flags.resource === undefined && flags.path === undefined) {
    throw new UserError(
      'KAUDIT_EVAL_NO_REQUEST',
      'say which request to evaluate: --resource for an API resource, --path for a URL',
      {
        hint: 'e.g. --user alice --verb get --namespace default --resource pods/log, or --requests FILE',
      },
    );
  }
  const [resource = '', subresource = ''] = (flags.resource ?? '').split('/', 2);
  const record: Record<string, unknown> = {
    user:
      flags.user === undefined && flags.group.length === 0
        ? null
        : { username: flags.user ?? '', groups: flags.group },
    verb: flags.verb ?? 'get',
    namespace: flags.namespace ?? '',
    apiGroup: flags.apiGroup ?? '',
    resource,
    subresource,
    name: flags.name ?? '',
    resourceRequest: flags.resource !== undefined,
    path: flags.path ?? '',
  };
  return attributesFromRecord(record, 'flags');
}

function describeRequest(a: RequestAttributes): string {
  const who = a.user ? a.user.username || `groups ${a.user.groups.join(',')}` : '(no user)';
  if (!a.resourceRequest) return `${who} ${a.verb} ${a.path}`;
  const res = `${a.apiGroup ? `${a.apiGroup}/` : ''}${a.resource}${a.subresource ? `/${a.subresource}` : ''}`;
  return `${who} ${a.verb} ${res}${a.name ? ` ${a.name}` : ''}${a.namespace ? ` in ${a.namespace}` : ''}`;
}

async function* requestLines(file: string): AsyncGenerator<{ value: unknown; where: string }> {
  if (file !== '-') readTextFile(file, 'requests file');
  const input = file === '-' ? process.stdin : createReadStream(file);
  const splitter = new LineSplitter();
  let n = 0;
  const lines: { text: string; where: string }[] = [];
  const take = (line: Buffer) => {
    n++;
    const text = line.toString('utf8');
    if (text.trim() !== '') lines.push({ text, where: `${file}:${n}` });
  };
  const drain = function* () {
    for (const { text, where } of lines.splice(0)) {
      try {
        yield { value: JSON.parse(text) as unknown, where };
      } catch (err) {
        throw new UserError(
          'KAUDIT_BAD_REQUEST_ATTRIBUTES',
          `${where}: not JSON: ${(err as Error).message}`,
          {
            hint: 'each line is an audit Event or a request record {user, verb, namespace, apiGroup, resource, subresource, name, resourceRequest, path}',
          },
        );
      }
    }
  };
  for await (const chunk of input as AsyncIterable<Buffer>) {
    splitter.push(chunk, take);
    yield* drain();
  }
  splitter.end(take);
  yield* drain();
}

export function registerPolicyEval(policy: Command): void {
  policy
    .command('eval')
    .description('Show the level, omitted stages and matching rule a policy gives a request')
    .argument('<policy>', 'policy file (- for stdin)')
    .addOption(kubernetesVersionOption())
    .addOption(fragmentOption())
    .addOption(entryOption())
    .option('--user <name>', 'user name')
    .option('--group <group>', 'a group of the user (repeatable)', collect, [])
    .option('--verb <verb>', 'request verb: get, list, watch, create, update, patch, delete, ...', 'get')
    .option('--namespace <ns>', 'namespace ("" or absent: cluster-scoped)')
    .option('--resource <res>', 'resource or resource/subresource, e.g. pods/log')
    .option('--name <name>', 'object name')
    .option('--api-group <group>', 'API group ("" or absent: core)')
    .option('--path <path>', 'URL path; alone it makes a non-resource request, e.g. /healthz')
    .option('--requests <file>', 'evaluate each line: an audit Event, or a request record (- for stdin)')
    .option('--json', 'one JSON line per request: {"level","omitStages","omitManagedFields","rule"}')
    .addHelpText(
      'after',
      `
Examples:
  kaudit policy eval policy.yaml --user alice --group devs --verb get --namespace default --resource pods/log
  kaudit policy eval policy.yaml --verb get --path /healthz/etcd --json
  kaudit policy eval policy.yaml --requests audit.log --json`,
    )
    .action(async (file: string, flags: EvalFlags) => {
      const { policy: p, features } = readPolicy(file, flags);
      const rows: { request: string; decision: AuditDecision }[] = [];
      const emit = (a: RequestAttributes) => {
        const decision = evaluatePolicy(p, a, features);
        if (flags.json) process.stdout.write(`${toJson(decision)}\n`);
        else rows.push({ request: describeRequest(a), decision });
      };
      if (flags.requests !== undefined) {
        for await (const { value, where } of requestLines(flags.requests))
          for (const a of attributesFromJson(value, where)) emit(a);
      } else {
        emit(attributesFromFlags(flags));
      }
      if (!flags.json) {
        process.stdout.write(
          formatTable(
            ['request', 'level', 'omit_stages', 'omit_managed_fields', 'rule'],
            rows.map(({ request, decision: d }) => ({
              request,
              level: d.level,
              omit_stages: d.omitStages.join(',') || '-',
              omit_managed_fields: d.omitManagedFields,
              rule: d.rule === null ? 'none' : `rules[${d.rule}]`,
            })),
            80,
          ),
        );
      }
    });
}
