import type { Command } from 'commander';
import { Option } from 'commander';
import { getPreset, PRESETS, presetToPolicy, renderPolicyYaml } from '../../policy/generate.js';
import { tunePreset } from '../../policy/tune.js';
import { parseIntFlag, parsePositiveNumberFlag } from '../common.js';
import { toJson } from '../output.js';
import { featuresFrom, formatBytes, kubernetesVersionOption, readLogs } from './policy-files.js';

interface GenerateFlags {
  preset: string;
  from?: string[];
  maxRules: string;
  minShare: string;
  kubernetesVersion?: string;
  json?: boolean;
}

export function registerPolicyGenerate(policy: Command): void {
  policy
    .command('generate')
    .description('Print a commented audit policy from a preset, optionally tuned to captured traffic')
    .addOption(
      new Option('--preset <name>', 'recommended (ours), seed, gke or minimal')
        .choices(Object.keys(PRESETS))
        .default('recommended'),
    )
    .option('--from <log...>', 'captured audit logs: drop the heaviest read-only system traffic seen in them')
    .option('--max-rules <n>', 'with --from: add at most this many drop rules', '10')
    .option('--min-share <percent>', 'with --from: drop only sources above this share of the log', '1')
    .addOption(kubernetesVersionOption())
    .option('--json', 'print {"policy", "tuned"} as JSON instead of YAML')
    .addHelpText(
      'after',
      `
Examples:
  kaudit policy generate > /etc/kubernetes/audit-policy.yaml
  kaudit policy generate --preset gke
  kaudit policy generate --from /var/log/kubernetes/audit/audit.log`,
    )
    .action(async (flags: GenerateFlags) => {
      let preset = getPreset(flags.preset);
      let tuned: unknown[] = [];
      if (flags.from && flags.from.length > 0) {
        const result = await tunePreset(preset, readLogs(flags.from), {
          features: featuresFrom(flags),
          maxRules: parseIntFlag('--max-rules', flags.maxRules, 0),
          minShare: parsePositiveNumberFlag('--min-share', flags.minShare) / 100,
        });
        preset = result.preset;
        tuned = result.noisy;
        for (const n of result.noisy) {
          process.stderr.write(
            `kaudit: dropping ${n.user} ${n.verbs.join('/')} ${n.group ? `${n.group}/` : ''}${n.resource}: ${n.events} events, ${formatBytes(n.bytes)} (${(n.share * 100).toFixed(1)}%)\n`,
          );
        }
        if (result.noisy.length === 0)
          process.stderr.write('kaudit: no read-only system traffic heavy enough to drop\n');
      }
      process.stdout.write(
        flags.json ? `${toJson({ policy: presetToPolicy(preset), tuned })}\n` : renderPolicyYaml(preset),
      );
    });
}
