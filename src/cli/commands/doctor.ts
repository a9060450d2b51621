import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { formatListen, parseAgentConfig } from '../../collect/agent-config.js';
import { formatDiagnostic, UserError } from '../../model/errors.js';
import { type AgentConfigSummary, type CheckResult, runDoctor } from '../../setup/doctor.js';
import { currentPlatformPaths } from '../../setup/platform-paths.js';
import { parseDurationMs } from '../../simulate/time.js';
import { readAgentLocator } from '../../store/remote/locator.js';
import { dataOption, parsePositiveNumberFlag, resolveDataDir } from '../common.js';
import { EXIT_FINDINGS, setExitCode } from '../main.js';
import { toJson } from '../output.js';

interface DoctorFlags {
  manifest?: string;
  policy?: string;
  config?: string;
  data?: string;
  rootfs: string;
  maxEventAge: string;
  minFreeGib: string;
  timeout: string;
  json?: boolean;
}

/** The config files looked at, in order: --config, KAUDIT_CONFIG, ./kaudit.yaml, the platform's default. */
function configCandidates(flag: string | undefined): string[] {
  if (flag !== undefined) return [resolve(flag)];
  const env = process.env.KAUDIT_CONFIG;
  if (env !== undefined && env !== '') return [resolve(env)];
  return [resolve('kaudit.yaml'), currentPlatformPaths().config];
}

function summarize(file: string): AgentConfigSummary {
  const { config, diagnostics } = parseAgentConfig(readFileSync(file, 'utf8'), {
    file,
    env: process.env,
    checkFiles: true,
  });
  const summary: AgentConfigSummary = {
    file,
    problems: diagnostics.map((d) => formatDiagnostic(d).split('\n')[0] ?? ''),
    filePaths: [],
    webhooks: [],
  };
  if (config !== undefined) {
    summary.runPath = config.runPath;
    summary.dataDir = config.dataDir;
    for (const l of config.logs) {
      if (l.type === 'file') summary.filePaths.push(l.path);
      else
        summary.webhooks.push({
          name: l.name,
          listen: formatListen(l.listen),
          path: l.path,
          tls: l.tls !== undefined,
        });
    }
  }
  return summary;
}

const MARK: Record<CheckResult['status'], string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL', skip: 'skip' };

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description(
      'Check that auditing works end to end here: kube-apiserver flags, policy, log, agent, webhook, disk',
    )
    .option(
      '--manifest <file>',
      'the kube-apiserver static Pod manifest (default /etc/kubernetes/manifests/kube-apiserver.yaml, else the running process)',
    )
    .option('--policy <file>', 'check this audit policy instead of the one kube-apiserver names')
    .option(
      '--config <file>',
      'the agent config (default KAUDIT_CONFIG, ./kaudit.yaml, then the platform default)',
    )
    .addOption(dataOption())
    .option('--rootfs <dir>', "the node's root file system, where host paths are", '/')
    .option('--max-event-age <duration>', 'warn when the newest stored event is older', '10m')
    .option('--min-free-gib <n>', 'fail when the data directory has less free space', '1')
    .option('--timeout <duration>', 'for each HTTP request to the agent or the webhook', '5s')
    .option('--json', 'print the checks as JSON')
    .addHelpText(
      'after',
      `
Each check is ok, warn, fail or skip, with the fix for warn and fail. Exit status: 1 when any check
fails, 0 otherwise.

Examples:
  sudo kaudit doctor                         # on a control-plane node
  kaudit doctor --config /etc/kaudit/kaudit.yaml --json
  kaudit doctor --manifest kube-apiserver.yaml --policy audit-policy.yaml`,
    )
    .action(async (flags: DoctorFlags) => {
      const duration = (flag: string, v: string) => {
        const ms = parseDurationMs(v);
        if (ms === undefined)
          throw new UserError(
            'KAUDIT_FLAG_INVALID',
            `${flag} ${JSON.stringify(v)}: expected a duration such as 10m`,
          );
        return ms;
      };
      const candidates = configCandidates(flags.config);
      const file = candidates.find((f) => existsSync(f));
      if (flags.config !== undefined && file === undefined)
        throw new UserError('KAUDIT_CONFIG_NOT_FOUND', `no config at ${candidates[0]}`);
      const checks = await runDoctor({
        ...(flags.manifest !== undefined ? { manifest: resolve(flags.manifest) } : {}),
        ...(flags.policy !== undefined ? { policy: resolve(flags.policy) } : {}),
        ...(file !== undefined ? { config: summarize(file) } : {}),
        rootfs: resolve(flags.rootfs),
        procDir: '/proc',
        configCandidates: candidates,
        defaultDataDir: resolveDataDir(flags.data),
        readLocator: readAgentLocator,
        maxEventAgeMs: duration('--max-event-age', flags.maxEventAge),
        minFreeBytes: parsePositiveNumberFlag('--min-free-gib', flags.minFreeGib) * 2 ** 30,
        timeoutMs: duration('--timeout', flags.timeout),
        now: Date.now(),
      });
      const failed = checks.some((c) => c.status === 'fail');
      if (flags.json) process.stdout.write(`${toJson({ ok: !failed, checks })}\n`);
      else {
        const width = Math.max(...checks.map((c) => c.id.length));
        for (const c of checks) {
          process.stdout.write(
            `${MARK[c.status]}  ${c.id.padEnd(width)}  ${c.detail}${c.fix ? ` -> fix: ${c.fix}` : ''}\n`,
          );
        }
      }
      if (failed) setExitCode(EXIT_FINDINGS);
    });
}
