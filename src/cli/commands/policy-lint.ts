import type { Command } from 'commander';
import { Option } from 'commander';
import { type Diagnostic, formatDiagnostic } from '../../model/errors.js';
import { lintPolicyText } from '../../policy/lint-file.js';
import { EXIT_FINDINGS, setExitCode } from '../main.js';
import { toJson } from '../output.js';
import {
  featuresFrom,
  fragmentOption,
  kubernetesVersionOption,
  type PolicySourceFlags,
  readTextFile,
} from './policy-files.js';

interface LintFlags extends PolicySourceFlags {
  json?: boolean;
  failOn: 'error' | 'warning';
}

export function registerPolicyLint(policy: Command): void {
  policy
    .command('lint')
    .description(
      'Check audit policy files as kube-apiserver loads them, and warn about what they would really log',
    )
    .argument(
      '<policy...>',
      'policy files (a Policy, a ConfigMap of policies, or a rule list with --fragment); - for stdin',
    )
    .addOption(kubernetesVersionOption())
    .addOption(fragmentOption())
    .addOption(
      new Option('--fail-on <severity>', 'exit 1 on findings of this severity or worse')
        .choices(['error', 'warning'])
        .default('error'),
    )
    .option('--json', 'one JSON diagnostic per line (NDJSON)')
    .addHelpText(
      'after',
      `
Exit status: 0 no errors, 1 errors (kube-apiserver would refuse the file) or warnings with --fail-on warning.

Examples:
  kaudit policy lint /etc/kubernetes/audit-policy.yaml
  kaudit policy lint --kubernetes-version 1.23 --json policy.yaml`,
    )
    .action((files: string[], flags: LintFlags) => {
      const features = featuresFrom(flags);
      const all: Diagnostic[] = [];
      for (const file of files) {
        const text = readTextFile(file, 'policy');
        for (const result of lintPolicyText(text, { file, features, fragment: flags.fragment === true })) {
          all.push(...result.diagnostics);
        }
      }
      for (const d of all) process.stdout.write(flags.json ? `${toJson(d)}\n` : `${formatDiagnostic(d)}\n`);
      const errors = all.filter((d) => d.severity === 'error').length;
      const warnings = all.filter((d) => d.severity === 'warning').length;
      process.stderr.write(
        errors + warnings === 0
          ? `kaudit: ${files.length === 1 ? files[0] : `${files.length} files`}: no problems found\n`
          : `kaudit: ${errors} error(s), ${warnings} warning(s)\n`,
      );
      if (errors > 0 || (flags.failOn === 'warning' && warnings > 0)) setExitCode(EXIT_FINDINGS);
    });
}
