/**
 * Loads detection rules from YAML (one rule per document, `---` between several in one file) and
 * checks them whole: every problem is reported with its file, line, field and the allowed values,
 * as the config and policy loaders do, and a file with any problem contributes no rule.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Diagnostic } from '../model/errors.js';
import { diagnostic, type ValidateContext, validate } from '../model/schema-diagnostics.js';
import { type FieldPath, readYamlDocuments } from '../model/yaml-input.js';
import {
  type Condition,
  OPERATORS,
  type Operator,
  parseCidr,
  QUANTIFIERS,
  type Quantifier,
} from './condition.js';
import { parsePath } from './fields.js';
import {
  ALLOW_KINDS,
  type Allowlist,
  emptyAllowlist,
  parseDuration,
  RULE_KINDS,
  type Rule,
  type RuleSource,
  SEVERITIES,
} from './rule.js';

const CODE = 'KAUDIT_RULE_INVALID';
/** Rule files are small; a bigger one is a mistake (an audit log named as rules), not worth parsing. */
export const MAX_RULE_FILE_BYTES = 4 << 20;

const strings = z
  .union([z.string().min(1), z.array(z.string().min(1))])
  .transform((v) => (Array.isArray(v) ? v : [v]));

const allowSchema = z
  .object(
    Object.fromEntries(ALLOW_KINDS.map((k) => [k, z.array(z.string()).default([])])) as Record<
      (typeof ALLOW_KINDS)[number],
      z.ZodDefault<z.ZodArray<z.ZodString>>
    >,
  )
  .strict();

const ruleSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'must be lowercase letters, digits, "-", "_" or "."'),
    title: z.string().min(1),
    description: z.string().default(''),
    severity: z.enum(SEVERITIES),
    tactic: strings.default([]),
    technique: strings.default([]),
    tags: strings.default([]),
    references: strings.default([]),
    falsePositives: strings.default([]),
    equivalents: strings.default([]),
    kind: z.enum(RULE_KINDS).default('match'),
    match: z.unknown().optional(),
    threshold: z
      .object({
        groupBy: strings,
        window: z.string().min(1),
        count: z.number().int().min(1),
        distinct: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    newTerm: z
      .object({ key: strings, value: strings, learn: z.string().min(1) })
      .strict()
      .optional(),
    sequence: z
      .object({
        by: strings,
        window: z.string().min(1),
        steps: z.array(z.object({ match: z.unknown() }).strict()).min(2),
        ordered: z.boolean().default(true),
      })
      .strict()
      .optional(),
    allow: allowSchema.optional(),
    message: z.string().min(1).optional(),
  })
  .strict();

export interface LoadedRules {
  rules: Rule[];
  diagnostics: Diagnostic[];
}

/** Rules from the text of one file. */
export function loadRuleText(text: string, file: string, source: RuleSource): LoadedRules {
  const rules: Rule[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const input of readYamlDocuments(text, file)) {
    if (input.diagnostics.length > 0) {
      diagnostics.push(...input.diagnostics.map((d) => ({ ...d, code: CODE })));
      continue;
    }
    if (input.value === null || input.value === undefined) continue; // an empty document
    const ctx: ValidateContext = { input, file, code: CODE };
    const problems: Diagnostic[] = [];
    const rule = checkRule(input.value, ctx, problems, source);
    diagnostics.push(...problems);
    if (rule !== undefined && problems.length === 0) rules.push({ ...rule, file });
  }
  return { rules, diagnostics };
}

/**
 * Rules from files and directories (every `.yaml`/`.yml` below a directory, but not its `tests/`
 * folders, which hold rule tests). Ids must be unique across everything loaded together.
 */
export function loadRuleFiles(paths: readonly string[], source: RuleSource, known: Rule[] = []): LoadedRules {
  const rules: Rule[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const file of ruleFiles(paths, diagnostics)) {
    let text: string;
    try {
      if (statSync(file).size > MAX_RULE_FILE_BYTES) {
        diagnostics.push({
          severity: 'error',
          code: 'KAUDIT_RULE_UNREADABLE',
          file,
          message: `larger than ${MAX_RULE_FILE_BYTES >> 20} MiB: not a rule file`,
          hint: 'an audit log given where rules were expected?',
        });
        continue;
      }
      text = readFileSync(file, 'utf8');
    } catch (err) {
      diagnostics.push({ severity: 'error', code: 'KAUDIT_RULE_UNREADABLE', file, message: errorText(err) });
      continue;
    }
    const loaded = loadRuleText(text, file, source);
    rules.push(...loaded.rules);
    diagnostics.push(...loaded.diagnostics);
  }
  diagnostics.push(...duplicateIds([...known, ...rules]));
  return { rules, diagnostics };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The rule files under the given paths, sorted within each directory. */
export function ruleFiles(
  paths: readonly string[],
  diagnostics: Diagnostic[],
  exts = ['.yaml', '.yml'],
): string[] {
  const out: string[] = [];
  const unreadable = (path: string, err: unknown) =>
    diagnostics.push({
      severity: 'error',
      code: 'KAUDIT_RULE_UNREADABLE',
      file: path,
      message: errorText(err),
    });
  const visit = (path: string, top: boolean) => {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(path);
    } catch (err) {
      unreadable(path, err);
      return;
    }
    if (st.isDirectory()) {
      if (!top && path.endsWith('/tests')) return;
      let names: string[];
      try {
        names = readdirSync(path).sort();
      } catch (err) {
        unreadable(path, err);
        return;
      }
      for (const name of names) {
        if (name === 'tests' || name.startsWith('.')) continue;
        const child = join(path, name);
        if (exts.some((e) => name.endsWith(e)) || statSync(child).isDirectory()) visit(child, false);
      }
    } else out.push(path);
  };
  for (const p of paths) visit(p, true);
  return out;
}

export function duplicateIds(rules: readonly Rule[]): Diagnostic[] {
  const seen = new Map<string, Rule>();
  const out: Diagnostic[] = [];
  for (const r of rules) {
    const first = seen.get(r.id);
    if (first === undefined) {
      seen.set(r.id, r);
      continue;
    }
    const d: Diagnostic = {
      severity: 'error',
      code: 'KAUDIT_RULE_DUPLICATE',
      path: 'id',
      message: `rule id "${r.id}" is already used by ${first.file ?? `the ${first.source} rules`}`,
      hint: 'give the rule another id, or disable the other one',
    };
    if (r.file !== undefined) d.file = r.file;
    out.push(d);
  }
  return out;
}

function checkRule(
  value: unknown,
  ctx: ValidateContext,
  out: Diagnostic[],
  source: RuleSource,
): Rule | undefined {
  const raw = validate(ruleSchema, value, [], ctx, out);
  if (raw === undefined) {
    // Still check the conditions, so one run reports every problem of the rule.
    const v = value as { match?: unknown; sequence?: { steps?: unknown } } | null;
    if (v !== null && typeof v === 'object') {
      if (v.match !== undefined) checkCondition(v.match, ['match'], ctx, out);
      const steps = v.sequence?.steps;
      if (Array.isArray(steps))
        steps.forEach((step: { match?: unknown } | null, i) => {
          if (step?.match !== undefined)
            checkCondition(step.match, ['sequence', 'steps', i, 'match'], ctx, out);
        });
    }
    return undefined;
  }
  const at = (path: FieldPath, message: string, hint?: string) =>
    out.push(diagnostic(ctx, path, message, hint));

  raw.tactic.forEach((t, i) => {
    if (!/^TA\d{4}$/.test(t)) at(['tactic', i], `"${t}" is not a MITRE ATT&CK tactic id`, 'e.g. TA0002');
  });
  raw.technique.forEach((t, i) => {
    if (!/^T\d{4}(\.\d{3})?$/.test(t))
      at(['technique', i], `"${t}" is not a MITRE ATT&CK technique id`, 'e.g. T1609 or T1552.007');
  });
  raw.equivalents.forEach((e, i) => {
    if (!/^(falco|sigma|elastic|panther|datadog):.+/.test(e))
      at(
        ['equivalents', i],
        `"${e}" must start with the peer's name`,
        'falco:, sigma:, elastic:, panther: or datadog:',
      );
  });

  const rule: Rule = {
    id: raw.id,
    title: raw.title,
    description: raw.description,
    severity: raw.severity,
    tactic: raw.tactic,
    technique: raw.technique,
    tags: raw.tags,
    references: raw.references,
    falsePositives: raw.falsePositives,
    equivalents: raw.equivalents,
    kind: raw.kind,
    allow: raw.allow === undefined ? emptyAllowlist() : (raw.allow as Allowlist),
    message: raw.message ?? raw.title,
    source,
  };
  (raw.allow?.sourceCidrs ?? []).forEach((c, i) => {
    if (parseCidr(c) === undefined) at(['allow', 'sourceCidrs', i], `"${c}" is not an IP address or CIDR`);
  });
  for (const m of rule.message.matchAll(/\{([^}]*)\}/g))
    if (parsePath(m[1] ?? '') === undefined) at(['message'], `"{${m[1]}}" is not a field path`);

  const fields = (list: string[], path: FieldPath) =>
    list.map((f, i) => {
      const segs = parsePath(f);
      if (segs === undefined)
        at([...path, i], `"${f}" is not a field path`, 'dotted, e.g. objectRef.namespace');
      return segs ?? [];
    });
  const duration = (text: string, path: FieldPath) => {
    const ms = parseDuration(text);
    if (ms === undefined) at(path, `"${text}" is not a duration`, 'e.g. 30s, 10m, 1h, 7d');
    return ms ?? 0;
  };
  const needs = (key: string, present: boolean) => {
    if (!present) at([key], `a ${rule.kind} rule needs "${key}"`);
  };
  const forbids = (key: string, present: boolean) => {
    if (present)
      at([key], `"${key}" belongs to ${key === 'newTerm' ? 'new_term' : key} rules, not ${rule.kind} rules`);
  };

  if (rule.kind === 'sequence') {
    forbids('match', raw.match !== undefined);
    needs('sequence', raw.sequence !== undefined);
  } else {
    needs('match', raw.match !== undefined);
    forbids('sequence', raw.sequence !== undefined);
  }
  if (rule.kind === 'threshold') needs('threshold', raw.threshold !== undefined);
  else forbids('threshold', raw.threshold !== undefined);
  if (rule.kind === 'new_term') needs('newTerm', raw.newTerm !== undefined);
  else forbids('newTerm', raw.newTerm !== undefined);

  if (raw.match !== undefined) {
    const c = checkCondition(raw.match, ['match'], ctx, out);
    if (c !== undefined) rule.match = c;
  }
  if (raw.threshold !== undefined) {
    const t = raw.threshold;
    rule.threshold = {
      groupBy: fields(t.groupBy, ['threshold', 'groupBy']),
      windowMs: duration(t.window, ['threshold', 'window']),
      count: t.count,
    };
    if (t.distinct !== undefined)
      rule.threshold.distinct = fields([t.distinct], ['threshold', 'distinct'])[0] ?? [];
  }
  if (raw.newTerm !== undefined) {
    const n = raw.newTerm;
    rule.newTerm = {
      key: fields(n.key, ['newTerm', 'key']),
      value: fields(n.value, ['newTerm', 'value']),
      learnMs: duration(n.learn, ['newTerm', 'learn']),
    };
  }
  if (raw.sequence !== undefined) {
    const s = raw.sequence;
    rule.sequence = {
      by: fields(s.by, ['sequence', 'by']),
      windowMs: duration(s.window, ['sequence', 'window']),
      ordered: s.ordered,
      steps: s.steps.flatMap((step, i) => {
        const c = checkCondition(step.match, ['sequence', 'steps', i, 'match'], ctx, out);
        return c === undefined ? [] : [c];
      }),
    };
  }
  return rule;
}

const CONDITION_KEYS = ['all', 'any', 'not', 'field', ...OPERATORS, ...QUANTIFIERS, 'ignoreCase'];
const STRING_OPS: ReadonlySet<string> = new Set(['prefix', 'suffix', 'contains', 'glob', 'regex']);

/** Checks one condition and returns it in its compiled-ready form; problems go to `out`. */
export function checkCondition(
  value: unknown,
  path: FieldPath,
  ctx: ValidateContext,
  out: Diagnostic[],
): Condition | undefined {
  const at = (p: FieldPath, message: string, hint?: string) => {
    out.push(diagnostic(ctx, p, message, hint));
    return undefined;
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return at(path, 'a condition must be a mapping', 'e.g. {field: verb, equals: create}, {all: [...]}');
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  for (const k of keys)
    if (!CONDITION_KEYS.includes(k))
      at([...path, k], `unknown key "${k}" in a condition`, `allowed: ${CONDITION_KEYS.join(', ')}`);
  if (keys.some((k) => !CONDITION_KEYS.includes(k))) return undefined;

  for (const group of ['all', 'any'] as const) {
    if (!(group in obj)) continue;
    if (keys.length !== 1) return at(path, `"${group}" stands alone: put other tests inside its list`);
    const list = obj[group];
    if (!Array.isArray(list) || list.length === 0)
      return at([...path, group], 'must be a non-empty list of conditions');
    const of = list.map((c, i) => checkCondition(c, [...path, group, i], ctx, out));
    if (of.some((c) => c === undefined)) return undefined;
    return { kind: group, of: of as Condition[] };
  }
  if ('not' in obj) {
    if (keys.length !== 1) return at(path, '"not" stands alone: put other tests inside it');
    const of = checkCondition(obj.not, [...path, 'not'], ctx, out);
    return of === undefined ? undefined : { kind: 'not', of };
  }

  if (typeof obj.field !== 'string')
    return at([...path, 'field'], 'a test needs a "field" (a dotted path into the event)');
  const field = parsePath(obj.field);
  if (field === undefined) return at([...path, 'field'], `"${obj.field}" is not a field path`);
  const ops = keys.filter((k) => k !== 'field' && k !== 'ignoreCase');
  if (ops.length !== 1)
    return at(
      path,
      ops.length === 0
        ? `field "${obj.field}" has no operator`
        : `one operator per test, got ${ops.join(', ')}`,
      `operators: ${[...OPERATORS, ...QUANTIFIERS].join(', ')}`,
    );
  const op = ops[0] as Operator | Quantifier;
  const v = obj[op];
  if ((QUANTIFIERS as readonly string[]).includes(op)) {
    const of = checkCondition(v, [...path, op], ctx, out);
    return of === undefined ? undefined : { kind: 'quantifier', field, q: op as Quantifier, of };
  }
  const ignoreCase = obj.ignoreCase ?? false;
  if (typeof ignoreCase !== 'boolean') return at([...path, 'ignoreCase'], 'must be true or false');
  if (ignoreCase && !STRING_OPS.has(op) && op !== 'equals' && op !== 'in')
    return at([...path, 'ignoreCase'], `ignoreCase goes with string operators, not "${op}"`);
  const problem = checkOperand(op as Operator, v);
  if (problem !== undefined) return at([...path, op], problem);
  return { kind: 'test', field, op: op as Operator, value: v, ignoreCase };
}

function isScalar(v: unknown): boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

function checkOperand(op: Operator, v: unknown): string | undefined {
  const list = Array.isArray(v) ? v : [v];
  switch (op) {
    case 'equals':
      return list.length > 0 && list.every(isScalar)
        ? undefined
        : 'must be a string, number or true/false (or a list)';
    case 'in':
      return Array.isArray(v) && v.length > 0 && v.every(isScalar)
        ? undefined
        : 'must be a non-empty list of values';
    case 'exists':
      return typeof v === 'boolean' ? undefined : 'must be true or false';
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      return typeof v === 'number' ? undefined : 'must be a number';
    case 'cidr': {
      const bad = list.find((c) => typeof c !== 'string' || parseCidr(c) === undefined);
      return list.length > 0 && bad === undefined
        ? undefined
        : `"${String(bad)}" is not an IP address or CIDR`;
    }
    case 'regex': {
      if (list.length === 0 || !list.every((p) => typeof p === 'string'))
        return 'must be a string (or a list)';
      for (const p of list as string[]) {
        try {
          new RegExp(p);
        } catch (err) {
          return `bad regular expression: ${errorText(err)}`;
        }
      }
      return undefined;
    }
    default:
      return list.length > 0 && list.every((s) => typeof s === 'string' && s !== '')
        ? undefined
        : 'must be a non-empty string (or a list)';
  }
}
