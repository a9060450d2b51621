import type { Command } from 'commander';
import { registerPolicyEval } from './policy-eval.js';
import { registerPolicyGenerate } from './policy-generate.js';
import { registerPolicyLint } from './policy-lint.js';
import { registerPolicySimulate } from './policy-simulate.js';

/** `kaudit policy lint | eval | simulate | generate`: the audit Policy toolkit. */
export function registerPolicy(program: Command): void {
  const policy = program
    .command('policy')
    .description('Audit policy toolkit: lint, evaluate, simulate and generate kube-apiserver audit policies');
  registerPolicyLint(policy);
  registerPolicyEval(policy);
  registerPolicySimulate(policy);
  registerPolicyGenerate(policy);
}
