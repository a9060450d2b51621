/**
 * The rules a run uses: the built-in pack, the user's rule files and Sigma rules, less the ones
 * disabled. One place, so `kaudit detect`, `kaudit rules list` and the agent agree.
 */
import type { Diagnostic } from '../model/errors.js';
import { builtinRules } from './builtin.js';
import { duplicateIds, loadRuleFiles } from './load-rules.js';
import type { Rule } from './rule.js';
import { loadSigmaFiles } from './sigma/load-sigma.js';

export interface RuleSetOptions {
  builtin?: boolean;
  /** Files or directories of kaudit rules. */
  rules?: readonly string[];
  /** Files or directories of Sigma rules. */
  sigma?: readonly string[];
  /** Rule ids left out. */
  disabled?: readonly string[];
  /** Only these rule ids (after the others are loaded, so a typo is reported). */
  only?: readonly string[];
}

export interface RuleSet {
  rules: Rule[];
  /** Problems in the user's files; a set with errors must not be run. */
  diagnostics: Diagnostic[];
}

export function loadRuleSet(options: RuleSetOptions): RuleSet {
  const diagnostics: Diagnostic[] = [];
  const all: Rule[] = options.builtin === false ? [] : [...builtinRules()];
  if (options.rules !== undefined && options.rules.length > 0) {
    const loaded = loadRuleFiles(options.rules, 'user');
    all.push(...loaded.rules);
    diagnostics.push(...loaded.diagnostics.filter((d) => d.code !== 'KAUDIT_RULE_DUPLICATE'));
  }
  if (options.sigma !== undefined && options.sigma.length > 0) {
    const loaded = loadSigmaFiles(options.sigma);
    all.push(...loaded.rules);
    diagnostics.push(...loaded.diagnostics.filter((d) => d.code !== 'KAUDIT_RULE_DUPLICATE'));
  }
  diagnostics.push(...duplicateIds(all));
  const known = new Set(all.map((r) => r.id));
  for (const [flag, ids] of [
    ['disabled', options.disabled],
    ['only', options.only],
  ] as const)
    for (const id of ids ?? [])
      if (!known.has(id))
        diagnostics.push({
          severity: 'error',
          code: 'KAUDIT_RULE_UNKNOWN',
          path: flag,
          message: `no rule has the id "${id}"`,
          hint: 'kaudit rules list shows every rule id',
        });
  const disabled = new Set(options.disabled ?? []);
  const only = options.only === undefined || options.only.length === 0 ? undefined : new Set(options.only);
  const rules = all.filter((r) => !disabled.has(r.id) && (only === undefined || only.has(r.id)));
  return { rules, diagnostics };
}
