import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { evaluatePolicy, invertStages, unionStages } from './evaluate.js';
import { parseKubeVersion, policyFeatures } from './kube-version.js';
import { loadPolicyText } from './load.js';
import { attributesFromRecord } from './request-attributes.js';
import type { Policy } from './types.js';
import { validatePolicy } from './validate.js';

// kube-apiserver's own policy tests, transcribed (test/fixtures/third-party, with its licence).
const CASES_FILE = fileURLToPath(
  new URL('../../test/fixtures/third-party/k8s-policy-cases.json', import.meta.url),
);

interface Decision {
  level?: string;
  omitStages?: string[];
  omitManagedFields?: boolean;
}
interface EvalCase {
  id: string;
  request: Record<string, unknown>;
  policy: Policy;
  expected: Decision;
  min_kubernetes_version?: string;
  expected_before_min_version?: Decision;
}
interface Cases {
  evaluation_cases: EvalCase[];
  omit_managed_fields_cases: EvalCase[];
  union_stages_cases: { id: string; s1: string[] | null; s2: string[] | null; expected_set: string[] }[];
  invert_stages_cases: { id: string; stages: string[]; expected_set: string[] }[];
  validation_cases: { id: string; policy: Policy; valid: boolean; error_fields_derived?: string[] }[];
  loader_cases: {
    id: string;
    yaml: string;
    expect: 'ok' | 'error';
    expected_rule_count?: number;
    expected_policy?: { rules: unknown[] };
  }[];
  counts: Record<string, number>;
}

const cases = JSON.parse(readFileSync(CASES_FILE, 'utf8')) as Cases;
const sorted = (xs: readonly string[]) => [...xs].sort();

/** Drops empty strings and lists, as Go's omitempty does when the expected policy was written down. */
function compact(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(compact);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (x === '' || (Array.isArray(x) && x.length === 0)) continue;
      out[k] = compact(x);
    }
    return out;
  }
  return v;
}

describe('k8s-policy-cases.json', () => {
  it('holds as many cases as it says', () => {
    expect(cases.evaluation_cases).toHaveLength(cases.counts.evaluation_cases ?? -1);
    expect(cases.validation_cases).toHaveLength(cases.counts.validation_cases ?? -1);
    expect(cases.loader_cases).toHaveLength(cases.counts.loader_cases ?? -1);
  });

  it.each(cases.evaluation_cases.map((c) => [c.id, c] as const))('evaluation %s', (_id, c) => {
    const attrs = attributesFromRecord(c.request);
    const got = evaluatePolicy(c.policy, attrs);
    expect(got.level).toBe(c.expected.level);
    expect(sorted(got.omitStages)).toEqual(sorted(c.expected.omitStages ?? []));
    if (c.min_kubernetes_version !== undefined && c.expected_before_min_version) {
      const v = parseKubeVersion(c.min_kubernetes_version);
      const before = evaluatePolicy(c.policy, attrs, policyFeatures({ major: v.major, minor: v.minor - 1 }));
      expect(before.level).toBe(c.expected_before_min_version.level);
      expect(sorted(before.omitStages)).toEqual(sorted(c.expected_before_min_version.omitStages ?? []));
    }
  });

  it.each(cases.omit_managed_fields_cases.map((c) => [c.id, c] as const))(
    'omitManagedFields %s',
    (_id, c) => {
      expect(evaluatePolicy(c.policy, attributesFromRecord(c.request)).omitManagedFields).toBe(
        c.expected.omitManagedFields,
      );
    },
  );

  it.each(cases.union_stages_cases.map((c) => [c.id, c] as const))('union of stages %s', (_id, c) => {
    expect(sorted(unionStages(c.s1, c.s2))).toEqual(sorted(c.expected_set));
  });

  it.each(cases.invert_stages_cases.map((c) => [c.id, c] as const))('inverted stages %s', (_id, c) => {
    expect(sorted(invertStages(c.stages))).toEqual(sorted(c.expected_set));
  });

  it.each(cases.validation_cases.map((c) => [c.id, c] as const))('validation %s', (_id, c) => {
    const errors = validatePolicy(c.policy).filter((d) => d.severity === 'error');
    if (c.valid) {
      expect(errors).toEqual([]);
    } else {
      // Upstream names a resources entry `rules[0].resources.group`; kaudit adds the entry index.
      const paths = errors.map((d) => (d.path ?? '').replace(/\.resources\[\d+\]/, '.resources'));
      expect(sorted([...new Set(paths)])).toEqual(sorted(c.error_fields_derived ?? []));
    }
  });

  const loaderCodes: Record<string, string> = {
    'load-2': 'KAUDIT_POLICY_API_VERSION',
    'load-4': 'KAUDIT_POLICY_NO_RULES',
    'load-5': 'KAUDIT_POLICY_EMPTY',
  };
  it.each(cases.loader_cases.map((c) => [c.id, c] as const))('loader %s', (id, c) => {
    const [loaded, ...more] = loadPolicyText(c.yaml, { file: 'policy.yaml' });
    expect(more).toEqual([]);
    const errors = loaded?.diagnostics.filter((d) => d.severity === 'error') ?? [];
    if (c.expect === 'error') {
      expect(errors.map((d) => d.code)).toContain(loaderCodes[id]);
      return;
    }
    expect(errors).toEqual([]);
    expect(loaded?.policy?.rules).toHaveLength(c.expected_rule_count ?? 1);
    if (c.expected_policy) expect(compact(loaded?.policy?.rules)).toEqual(c.expected_policy.rules);
    if (id === 'load-3') {
      // The misplaced verbs are dropped, as kube-apiserver's lenient decoding does, and reported.
      expect(loaded?.policy?.rules[0]?.verbs).toBeUndefined();
      expect(loaded?.diagnostics).toContainEqual(
        expect.objectContaining({
          severity: 'warning',
          code: 'KAUDIT_POLICY_UNKNOWN_FIELD',
          path: 'rules[0].resources[0].verbs',
          line: 10,
          column: 5,
        }),
      );
    }
  });
});
