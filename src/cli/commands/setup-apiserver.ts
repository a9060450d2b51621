import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { formatDiagnostic, UserError } from '../../model/errors.js';
import { getPreset, PRESETS, renderPolicyYaml } from '../../policy/generate.js';
import { lintPolicyText } from '../../policy/lint-file.js';
import {
  type ApiserverSetupOptions,
  DEFAULT_MANIFEST,
  setupApiserverManifest,
} from '../../setup/apiserver-manifest.js';
import { readFileOrThrow, writeFileAtomic } from '../../setup/files.js';
import { lineDiff } from '../../setup/line-diff.js';
import { parseIntFlag } from '../common.js';
import { toJson } from '../output.js';

interface ApiserverFlags {
  manifest: string;
  policyFile?: string;
  preset: string;
  logPath?: string;
  logMaxage?: string;
  logMaxbackup?: string;
  logMaxsize?: string;
  webhook?: boolean;
  webhookConfigFile?: string;
  webhookBatchMaxSize?: string;
  webhookBatchMaxWait?: string;
  rootfs: string;
  backupDir?: string;
  write?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

const say = (line: string) => process.stderr.write(`kaudit: ${line}\n`);

/** 20260304T120000Z: sorts by time and has no characters a file name might not take. */
const stamp = (d: Date) =>
  d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

export function registerSetupApiserver(setup: Command): void {
  setup
    .command('apiserver')
    .description(
      "Add kaudit's audit flags, policy and volumes to a kube-apiserver static Pod manifest (kubeadm-style)",
    )
    .option('--manifest <file>', 'the kube-apiserver static Pod manifest', DEFAULT_MANIFEST)
    .option(
      '--policy-file <path>',
      "--audit-policy-file (default: the manifest's, else /etc/kubernetes/audit-policies/policy.yaml)",
    )
    .addOption(
      new Option('--preset <name>', 'policy written when the policy file does not exist yet')
        .choices(Object.keys(PRESETS))
        .default('recommended'),
    )
    .option(
      '--log-path <path>',
      "--audit-log-path (default: the manifest's, else /var/log/kubernetes/apiserver/audit.log)",
    )
    .option('--log-maxage <days>', '--audit-log-maxage: days to keep rotated logs (default 7)')
    .option('--log-maxbackup <n>', '--audit-log-maxbackup: rotated logs to keep (default 10)')
    .option('--log-maxsize <MB>', '--audit-log-maxsize: rotate at this size (default 100)')
    .option('--webhook', 'also send events to the kaudit webhook (--audit-webhook-* flags)')
    .option(
      '--webhook-config-file <path>',
      'with --webhook: the kubeconfig from `kaudit setup webhook` (default /etc/kubernetes/kaudit/webhook.kubeconfig)',
    )
    .option('--webhook-batch-max-size <n>', 'with --webhook: events per request (default 400)')
    .option('--webhook-batch-max-wait <duration>', 'with --webhook: longest wait before sending (default 5s)')
    .option(
      '--rootfs <dir>',
      "the node's root file system, where the manifest's host paths are (for a chroot or a test)",
      '/',
    )
    .option(
      '--backup-dir <dir>',
      "with --write: where the old manifest is saved (default: the manifest directory's parent)",
    )
    .option('--write', 'write the manifest (after a backup) and the policy if it is missing')
    .option('--dry-run', 'print a diff of what --write would change, and change nothing')
    .option('--json', 'print what changed (and the manifest) as JSON')
    .addHelpText(
      'after',
      `
Without --write the new manifest goes to stdout. Everything else in the manifest stays as it was, and
a second run changes nothing. kubelet restarts kube-apiserver when the file changes.

Examples:
  kaudit setup apiserver --dry-run
  sudo kaudit setup apiserver --write
  sudo kaudit setup apiserver --webhook --write     # after kaudit setup certs and setup webhook
  kaudit setup apiserver --manifest kube-apiserver.yaml --log-path /var/log/audit/audit.log > new.yaml`,
    )
    .action((flags: ApiserverFlags) => {
      if (flags.write && flags.dryRun)
        throw new UserError('KAUDIT_FLAG_INVALID', '--write and --dry-run exclude each other');
      const manifestPath = resolve(flags.manifest);
      const before = readFileOrThrow(manifestPath, 'manifest');
      const opts: ApiserverSetupOptions = {};
      if (flags.policyFile !== undefined) opts.policyFile = flags.policyFile;
      if (flags.logPath !== undefined) opts.logPath = flags.logPath;
      if (flags.logMaxage !== undefined)
        opts.logMaxAgeDays = parseIntFlag('--log-maxage', flags.logMaxage, 0);
      if (flags.logMaxbackup !== undefined)
        opts.logMaxBackups = parseIntFlag('--log-maxbackup', flags.logMaxbackup, 0);
      if (flags.logMaxsize !== undefined)
        opts.logMaxSizeMb = parseIntFlag('--log-maxsize', flags.logMaxsize, 1);
      if (flags.webhook) {
        opts.webhook = {};
        if (flags.webhookConfigFile !== undefined) opts.webhook.configFile = flags.webhookConfigFile;
        if (flags.webhookBatchMaxSize !== undefined)
          opts.webhook.batchMaxSize = parseIntFlag('--webhook-batch-max-size', flags.webhookBatchMaxSize, 1);
        if (flags.webhookBatchMaxWait !== undefined) {
          if (!/^\d+(ms|s|m)$/.test(flags.webhookBatchMaxWait))
            throw new UserError(
              'KAUDIT_FLAG_INVALID',
              `--webhook-batch-max-wait ${JSON.stringify(flags.webhookBatchMaxWait)}: expected a duration such as 5s`,
            );
          opts.webhook.batchMaxWait = flags.webhookBatchMaxWait;
        }
      } else if (flags.webhookConfigFile !== undefined) {
        throw new UserError('KAUDIT_FLAG_INVALID', '--webhook-config-file needs --webhook');
      }

      const result = setupApiserverManifest(before, opts, manifestPath);
      const onHost = (p: string) => join(resolve(flags.rootfs), p);
      const policyPath = onHost(result.hostPaths.policyFile);
      const policyExists = existsSync(policyPath);
      const policyText = policyExists ? undefined : renderPolicyYaml(getPreset(flags.preset));
      if (policyExists) {
        // kube-apiserver does not start with a policy it cannot load: better to stop here.
        const text = readFileOrThrow(policyPath, 'audit policy');
        const errors = lintPolicyText(text, { file: policyPath })
          .flatMap((p) => p.diagnostics)
          .filter((d) => d.severity === 'error');
        if (errors.length > 0) {
          throw new UserError(
            'KAUDIT_SETUP_POLICY_INVALID',
            `the audit policy ${policyPath} has errors kube-apiserver would refuse:\n${errors.map((d) => `  ${formatDiagnostic(d)}`).join('\n')}`,
            { hint: 'fix it (kaudit policy lint), or remove it to have one written from --preset' },
          );
        }
      }
      const webhookPath =
        result.hostPaths.webhookConfigFile === undefined
          ? undefined
          : onHost(result.hostPaths.webhookConfigFile);
      const webhookMissing = webhookPath !== undefined && !existsSync(webhookPath);

      for (const c of result.changes) {
        say(
          c.what === 'flag'
            ? `${c.before === undefined ? 'add' : 'set'} ${c.name}=${c.after}${c.before === undefined ? '' : ` (was ${c.before})`}`
            : `add ${c.what} ${c.name}: ${c.after}`,
        );
      }
      if (result.changes.length === 0) say(`${manifestPath} already has every audit flag and mount`);
      if (!policyExists)
        say(
          `${policyPath} does not exist: ${flags.write ? 'writing' : '--write writes'} it from preset ${flags.preset}`,
        );
      if (webhookMissing) {
        const hint = `make it first: kaudit setup certs, then kaudit setup webhook --kubeconfig-out ${webhookPath}`;
        if (flags.write) {
          // kube-apiserver exits at start when --audit-webhook-config-file cannot be read.
          throw new UserError(
            'KAUDIT_SETUP_WEBHOOK_MISSING',
            `${webhookPath} does not exist; kube-apiserver would not start`,
            {
              hint,
            },
          );
        }
        say(`${webhookPath} does not exist yet: ${hint}`);
      }

      let backup: string | undefined;
      if (flags.write) {
        if (!policyExists && policyText !== undefined) writeFileAtomic(policyPath, policyText);
        if (result.changes.length > 0) {
          const backupDir = resolve(flags.backupDir ?? dirname(dirname(manifestPath)));
          if (backupDir === dirname(manifestPath)) {
            // kubelet would run the backup as a second kube-apiserver Pod.
            throw new UserError(
              'KAUDIT_FLAG_INVALID',
              `--backup-dir ${backupDir} is the static Pod directory`,
              {
                hint: 'kubelet starts every file there; keep backups elsewhere',
              },
            );
          }
          mkdirSync(backupDir, { recursive: true });
          backup = join(backupDir, `${basename(manifestPath)}.kaudit-backup-${stamp(new Date())}`);
          copyFileSync(manifestPath, backup);
          say(`saved ${manifestPath} as ${backup}`);
          writeFileAtomic(manifestPath, result.text, statSync(manifestPath).mode & 0o777);
          say(`wrote ${manifestPath}; kubelet restarts kube-apiserver with it`);
        }
      }

      if (flags.json) {
        process.stdout.write(
          `${toJson({
            manifest: manifestPath,
            changed: result.changes.length > 0,
            changes: result.changes,
            flags: result.flags,
            hostPaths: result.hostPaths,
            policy: {
              path: policyPath,
              existed: policyExists,
              written: Boolean(flags.write && !policyExists),
            },
            written: Boolean(flags.write && result.changes.length > 0),
            backup: backup ?? null,
            ...(flags.write || flags.dryRun ? {} : { text: result.text }),
          })}\n`,
        );
      } else if (flags.dryRun) {
        process.stdout.write(lineDiff(before, result.text, { from: manifestPath, to: manifestPath }));
        if (policyText !== undefined)
          process.stdout.write(lineDiff('', policyText, { from: '/dev/null', to: policyPath }));
      } else if (!flags.write) {
        process.stdout.write(result.text);
      }
    });
}
