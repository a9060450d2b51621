/** The built-in rule pack: `rules/builtin/*.yaml` beside this module (the build copies them). */
import { fileURLToPath } from 'node:url';
import type { Diagnostic } from '../model/errors.js';
import { loadRuleFiles } from './load-rules.js';
import type { Rule } from './rule.js';

export const BUILTIN_RULES_DIR = fileURLToPath(new URL('./rules/builtin/', import.meta.url));

let cached: Rule[] | undefined;

/** The pack; a problem in it is a bug in kaudit, so it throws. */
export function builtinRules(): Rule[] {
  if (cached === undefined) {
    const { rules, diagnostics } = loadRuleFiles([BUILTIN_RULES_DIR], 'builtin');
    const errors: Diagnostic[] = diagnostics.filter((d) => d.severity === 'error');
    if (errors.length > 0)
      throw new Error(
        `the builtin rule pack does not load: ${errors.map((d) => `${d.file}:${d.line} ${d.path ?? ''} ${d.message}`).join('; ')}`,
      );
    cached = rules;
  }
  return cached;
}
