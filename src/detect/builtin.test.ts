import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILTIN_RULES_DIR, builtinRules } from './builtin.js';
import { readRuleTests, runRuleTests } from './rule-tests.js';

const rules = builtinRules();

describe('builtin rules, each on its own tests', () => {
  it('loads at least 40 rules', () => {
    expect(rules.length).toBeGreaterThanOrEqual(40);
  });

  for (const rule of rules) {
    it(rule.id, () => {
      const file = join(BUILTIN_RULES_DIR, 'tests', `${rule.id}.yaml`);
      expect(existsSync(file)).toBe(true);
      const { tests, diagnostics } = readRuleTests(file);
      expect(diagnostics).toEqual([]);
      const failed = runRuleTests(rule, tests ?? { positive: [], negative: [] })
        .filter((r) => !r.passed)
        .map((r) => `${r.kind}: ${r.name}`);
      expect(failed).toEqual([]);
    });
  }
});
