/**
 * A Sigma rule's `detection` (search identifiers and a condition) turned into a kaudit Condition,
 * with Sigma's matching semantics (rules specification v2, "Detection"; modifiers appendix v2.1):
 * strings match whole values case-insensitively with `*` and `?` wildcards (`\` escapes them);
 * contains/startswith/endswith put wildcards around the value; `re` is case-sensitive unless its
 * `i` sub-modifier or a leading `(?i)` says otherwise; lists of values are OR unless `all`; maps
 * are AND, lists of maps OR; `null` means the field is absent.
 */
import type { FieldPath } from '../../model/yaml-input.js';
import { type Condition, parseCidr } from '../condition.js';
import { mapSigmaField, mapSigmaValue } from './field-map.js';
import { escapeRegExp, matchIdentifiers, parseCondition, type SigmaExpr } from './parse-condition.js';

export interface DetectionProblem {
  path: FieldPath;
  message: string;
  hint?: string;
  /** True for valid Sigma kaudit does not support; false for a malformed rule. */
  unsupported: boolean;
}

export interface CompiledDetection {
  condition: Condition;
  /** The fields the detection tests, as the rule names them and as kaudit reads them. */
  fields: { label: string; path: string[] }[];
}

const MATCH_MODIFIERS = ['contains', 'startswith', 'endswith'] as const;
const NUMBER_MODIFIERS = ['gt', 'gte', 'lt', 'lte'] as const;
const REGEX_FLAGS = ['i', 'm', 's'] as const;
export const SUPPORTED_MODIFIERS: readonly string[] = [
  ...MATCH_MODIFIERS,
  'all',
  're',
  ...REGEX_FLAGS,
  'cidr',
  'exists',
  'cased',
  'neq',
  ...NUMBER_MODIFIERS,
];

// pySigma also accepts the long names of the regular expression flags.
const REGEX_FLAG_NAMES: Readonly<Record<string, string>> = { ignorecase: 'i', multiline: 'm', dotall: 's' };

/** Modifiers of the Sigma specification kaudit does not support, and why. */
const UNSUPPORTED_MODIFIERS: Readonly<Record<string, string>> = {
  windash: 'it permutes Windows command-line flag characters, which Kubernetes audit events do not have',
  base64: 'it matches base64-encoded text, and kaudit conditions do not encode values',
  base64offset: 'it matches base64-encoded text, and kaudit conditions do not encode values',
  utf16: 'it matches UTF-16 bytes, and audit events are JSON text',
  utf16le: 'it matches UTF-16 bytes, and audit events are JSON text',
  utf16be: 'it matches UTF-16 bytes, and audit events are JSON text',
  wide: 'it matches UTF-16 bytes, and audit events are JSON text',
  expand: 'its placeholders get their values from a processing pipeline, which kaudit does not have',
  fieldref: 'it compares two fields of one event, which kaudit conditions cannot express',
  minute: 'time-part modifiers are not supported',
  hour: 'time-part modifiers are not supported',
  day: 'time-part modifiers are not supported',
  week: 'time-part modifiers are not supported',
  month: 'time-part modifiers are not supported',
  year: 'time-part modifiers are not supported',
};

/**
 * Fields kube-apiserver writes in lower case for every request that names a real resource
 * (apiserver request/requestinfo.go lowercases the HTTP method into the verb; resource names are
 * lowercase, CRD plurals are validated as DNS-1035 labels): a case-insensitive literal compares
 * exactly against its lowercase form there, which lets the engine dispatch on them. Only a request
 * for a path like `/api/v1/PODS`, which names no resource and gets a 404, is missed.
 */
const LOWERCASE_FIELDS = new Set(['verb', 'objectRef.resource']);

type Scalar = string | number | boolean | null;

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isScalar(v: unknown): v is Scalar {
  return v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

export function compileDetection(
  detection: unknown,
  problems: DetectionProblem[],
): CompiledDetection | undefined {
  const at: FieldPath = ['detection'];
  const problem = (path: FieldPath, message: string, unsupported: boolean, hint?: string) => {
    const p: DetectionProblem = { path, message, unsupported };
    if (hint !== undefined) p.hint = hint;
    problems.push(p);
    return undefined;
  };
  if (!isMap(detection)) return problem(at, 'must be a mapping of search identifiers and a condition', false);
  const before = problems.length;
  const fields = new Map<string, { label: string; path: string[] }>();
  const selections = new Map<string, Condition>();
  const names: string[] = [];
  for (const [name, value] of Object.entries(detection)) {
    if (name === 'condition') continue;
    if (name === 'timeframe') {
      problem(
        [...at, name],
        'timeframe belongs to Sigma 1 aggregations, which kaudit does not support',
        true,
        'write a Sigma correlation rule (event_count, value_count, temporal) instead',
      );
      continue;
    }
    names.push(name);
    const c = compileSelection(value, [...at, name], problem, fields);
    if (c !== undefined) selections.set(name, c);
  }
  if (names.length === 0) problem(at, 'has no search identifiers', false);

  const raw = detection.condition;
  const texts = typeof raw === 'string' ? [raw] : Array.isArray(raw) ? raw : undefined;
  if (texts === undefined || texts.length === 0 || !texts.every((t) => typeof t === 'string'))
    return problem(
      [...at, 'condition'],
      'must be a condition (a string) or a list of them',
      false,
      'e.g. condition: selection and not filter',
    );
  const parts: Condition[] = [];
  (texts as string[]).forEach((text, i) => {
    const path = typeof raw === 'string' ? [...at, 'condition'] : [...at, 'condition', i];
    const expr = parseCondition(text);
    if ('message' in expr) {
      problem(path, `"${text}": ${expr.message}`, expr.unsupported);
      return;
    }
    const c = resolve(expr, names, selections, (message) => problem(path, `"${text}": ${message}`, false));
    if (c !== undefined) parts.push(c);
  });
  if (problems.length > before) return undefined;
  // Sigma rules specification: a list of conditions is linked with OR.
  const condition: Condition = parts.length === 1 ? (parts[0] as Condition) : { kind: 'any', of: parts };
  return { condition, fields: [...fields.values()] };
}

type Report = (path: FieldPath, message: string, unsupported: boolean, hint?: string) => undefined;

function resolve(
  expr: SigmaExpr,
  names: readonly string[],
  selections: ReadonlyMap<string, Condition>,
  fail: (message: string) => undefined,
): Condition | undefined {
  const ref = (name: string): Condition | undefined => {
    if (!names.includes(name))
      return fail(`"${name}" is not a search identifier of this detection (it has ${names.join(', ')})`);
    // A selection with its own problems was reported already; the rule is dropped either way.
    return selections.get(name) ?? { kind: 'all', of: [] };
  };
  switch (expr.kind) {
    case 'ref':
      return ref(expr.name);
    case 'not': {
      const inner = resolve(expr.of, names, selections, fail);
      return inner === undefined ? undefined : { kind: 'not', of: inner };
    }
    case 'and':
    case 'or': {
      const of = expr.of.map((e) => resolve(e, names, selections, fail));
      if (of.some((c) => c === undefined)) return undefined;
      return { kind: expr.kind === 'and' ? 'all' : 'any', of: of as Condition[] };
    }
    case 'of': {
      const matched = matchIdentifiers(expr.pattern, names);
      if (matched.length === 0)
        return fail(
          `"${expr.pattern ?? 'them'}" matches no search identifier (there are ${names.join(', ')})`,
        );
      const of = matched.map(ref) as Condition[];
      if (of.length === 1) return of[0];
      return { kind: expr.all ? 'all' : 'any', of };
    }
  }
}

function compileSelection(
  value: unknown,
  path: FieldPath,
  problem: Report,
  fields: Map<string, { label: string; path: string[] }>,
): Condition | undefined {
  if (isMap(value)) {
    const entries = Object.entries(value);
    if (entries.length === 0) return problem(path, 'an empty selection matches everything', false);
    const of = entries.map(([key, v]) => compileItem(key, v, [...path, key], problem, fields));
    if (of.some((c) => c === undefined)) return undefined;
    return of.length === 1 ? of[0] : { kind: 'all', of: of as Condition[] };
  }
  if (Array.isArray(value) && value.length > 0 && value.every(isMap)) {
    const of = value.map((m, i) => compileSelection(m, [...path, i], problem, fields));
    if (of.some((c) => c === undefined)) return undefined;
    return of.length === 1 ? of[0] : { kind: 'any', of: of as Condition[] };
  }
  if (isScalar(value) || (Array.isArray(value) && value.every(isScalar)))
    return problem(
      path,
      'keyword search (values without a field) is not supported: kaudit matches fields, not the raw event text',
      true,
      'name the field, e.g. requestURI|contains: ...',
    );
  return problem(path, 'must be a mapping of fields, or a list of such mappings', false);
}

type Mode = 'equals' | (typeof MATCH_MODIFIERS)[number];

/** One `field|modifiers: value(s)` entry of a selection. */
function compileItem(
  key: string,
  value: unknown,
  path: FieldPath,
  problem: Report,
  fields: Map<string, { label: string; path: string[] }>,
): Condition | undefined {
  const [name = '', ...written] = key.split('|');
  const mods = written.map((m) => REGEX_FLAG_NAMES[m] ?? m);
  if (name === '')
    return problem(
      path,
      'keyword search (values without a field) is not supported: kaudit matches fields, not the raw event text',
      true,
    );
  const field = mapSigmaField(name);
  if (field === undefined)
    return problem(path, `"${name}" is not a field path`, false, 'dotted, e.g. objectRef.resource');
  for (const m of mods) {
    const why = UNSUPPORTED_MODIFIERS[m];
    if (why !== undefined) return problem(path, `the "${m}" modifier is not supported: ${why}`, true);
    if (!SUPPORTED_MODIFIERS.includes(m))
      return problem(path, `unknown modifier "${m}"`, true, `supported: ${SUPPORTED_MODIFIERS.join(', ')}`);
  }
  const has = (m: string) => mods.includes(m);
  const values = Array.isArray(value) ? value : [value];
  if (values.length === 0) return problem(path, 'an empty list of values matches nothing', false);
  const bad = values.find((v) => !isScalar(v));
  if (bad !== undefined)
    return problem(path, 'values must be strings, numbers, true/false or null (or a list of them)', false);

  const matchMods = MATCH_MODIFIERS.filter(has);
  const numberMods = NUMBER_MODIFIERS.filter(has);
  const flags = REGEX_FLAGS.filter(has);
  const kinds = [matchMods.length > 0, numberMods.length > 0, has('re'), has('cidr'), has('exists')].filter(
    Boolean,
  ).length;
  if (kinds > 1 || matchMods.length > 1 || numberMods.length > 1)
    return problem(path, `modifiers ${mods.join('|')} do not combine`, false);
  if (flags.length > 0 && !has('re'))
    return problem(path, `the "${flags.join('|')}" modifier goes with "re"`, false);

  const tests: Condition[] = [];
  const bail = (message: string) => problem(path, message, false);
  if (has('exists')) {
    if (values.length !== 1 || typeof values[0] !== 'boolean')
      return bail('exists takes true or false, e.g. field|exists: true');
    tests.push({ kind: 'test', field, op: 'exists', value: values[0], ignoreCase: false });
  } else if (has('cidr')) {
    for (const v of values) {
      if (typeof v !== 'string' || parseCidr(v) === undefined)
        return bail(`${JSON.stringify(v)} is not an IP address or CIDR`);
      tests.push({ kind: 'test', field, op: 'cidr', value: v, ignoreCase: false });
    }
  } else if (has('re')) {
    for (const v of values) {
      if (typeof v !== 'string') return bail('a regular expression must be a string');
      const re = translateRegex(v, { i: has('i'), m: has('m'), s: has('s') });
      if ('error' in re) return bail(`bad regular expression ${JSON.stringify(v)}: ${re.error}`);
      tests.push({ kind: 'test', field, op: 'regex', value: re.source, ignoreCase: re.ignoreCase });
    }
  } else if (numberMods.length > 0) {
    const op = numberMods[0] as (typeof NUMBER_MODIFIERS)[number];
    for (const v of values) {
      const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
      if (!Number.isFinite(n)) return bail(`${op} takes a number, got ${JSON.stringify(v)}`);
      tests.push({ kind: 'test', field, op, value: n, ignoreCase: false });
    }
  } else {
    const mode: Mode = matchMods[0] ?? 'equals';
    for (const v of values) tests.push(valueCondition(name, field, v, mode, has('cased')));
  }
  for (const t of tests) {
    if (t.kind !== 'test') continue;
    const joined = t.field.join('.');
    if (!fields.has(joined)) fields.set(joined, { label: t.field === field ? name : joined, path: t.field });
  }
  const combined = has('all') ? allOf(tests) : anyOf(tests);
  // Modifiers appendix: neq, "the field is different from the specified values".
  return has('neq') ? { kind: 'not', of: combined } : combined;
}

function allOf(tests: Condition[]): Condition {
  return tests.length === 1 ? (tests[0] as Condition) : { kind: 'all', of: tests };
}

/**
 * OR of tests, with the tests of one field merged: equalities into one list (a set lookup, and
 * what the engine dispatches on), regular expressions into one alternation.
 */
function anyOf(tests: Condition[]): Condition {
  const merged: Condition[] = [];
  for (const t of tests) {
    const prev = merged.find(
      (m) =>
        m.kind === 'test' &&
        t.kind === 'test' &&
        m.op === t.op &&
        (m.op === 'equals' || m.op === 'regex') &&
        m.ignoreCase === t.ignoreCase &&
        m.field.join('\u0000') === t.field.join('\u0000'),
    );
    if (prev === undefined || prev.kind !== 'test' || t.kind !== 'test') {
      merged.push(t.kind === 'test' ? { ...t } : t);
      continue;
    }
    prev.value = [...listOf(prev.value), ...listOf(t.value)];
  }
  for (const m of merged)
    if (m.kind === 'test' && m.op === 'regex' && Array.isArray(m.value))
      m.value = m.value.map((r) => `(?:${String(r)})`).join('|');
  return merged.length === 1 ? (merged[0] as Condition) : { kind: 'any', of: merged };
}

function listOf(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [v];
}

const STAR = Symbol('*');
const ONE = Symbol('?');
type Part = string | typeof STAR | typeof ONE;

/**
 * A Sigma string as literal runs and wildcards. Rules specification, "Escaping": `\` escapes `*`,
 * `?` and itself; a backslash before anything else is a plain backslash.
 */
export function parseWildcards(s: string): Part[] {
  const out: Part[] = [];
  let lit = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i] as string;
    if (ch === '\\') {
      const next = s[i + 1];
      if (next === '*' || next === '?' || next === '\\') {
        lit += next;
        i++;
      } else lit += ch;
    } else if (ch === '*' || ch === '?') {
      if (lit !== '') out.push(lit);
      lit = '';
      if (ch === '?') out.push(ONE);
      else if (out[out.length - 1] !== STAR) out.push(STAR);
    } else lit += ch;
  }
  if (lit !== '') out.push(lit);
  return out;
}

const NUMERIC = /^-?\d+(\.\d+)?$/;

function valueCondition(name: string, field: string[], v: Scalar, mode: Mode, cased: boolean): Condition {
  if (v === null) return { kind: 'test', field, op: 'exists', value: false, ignoreCase: false };
  if (typeof v === 'boolean' || (typeof v === 'number' && mode === 'equals'))
    // A number matches the number or its text (some log shippers quote numbers).
    return {
      kind: 'test',
      field,
      op: 'equals',
      value: typeof v === 'number' ? [v, String(v)] : v,
      ignoreCase: false,
    };
  const mapped = mapSigmaValue(name, field, v);
  if (mapped.path !== field)
    return { kind: 'test', field: mapped.path, op: 'equals', value: mapped.value, ignoreCase: false };
  let parts = parseWildcards(String(v));
  if (mode === 'contains') parts = [STAR, ...parts, STAR];
  else if (mode === 'startswith') parts = [...parts, STAR];
  else if (mode === 'endswith') parts = [STAR, ...parts];
  parts = parts.filter((p, i) => !(p === STAR && parts[i - 1] === STAR));
  const ignoreCase = !cased;
  if (parts.length > 0 && parts.every((p) => p === STAR))
    // `field: '*'`: any value at all, i.e. the field is there.
    return { kind: 'test', field, op: 'exists', value: true, ignoreCase: false };
  if (parts.every((p) => typeof p === 'string')) {
    const lit = parts.join('');
    if (ignoreCase && LOWERCASE_FIELDS.has(field.join('.')))
      return { kind: 'test', field, op: 'equals', value: lit.toLowerCase(), ignoreCase: false };
    // Quoted numbers and booleans (`'403'`, `'true'`) also match the JSON number or boolean.
    const low = lit.toLowerCase();
    const typed = NUMERIC.test(lit)
      ? Number(lit)
      : low === 'true'
        ? true
        : low === 'false'
          ? false
          : undefined;
    const value = typed === undefined ? lit : [lit, typed];
    return { kind: 'test', field, op: 'equals', value, ignoreCase };
  }
  const [a, b, c] = parts;
  if (parts.length === 2 && a === STAR && typeof b === 'string')
    return { kind: 'test', field, op: 'suffix', value: b, ignoreCase };
  if (parts.length === 2 && typeof a === 'string' && b === STAR)
    return { kind: 'test', field, op: 'prefix', value: a, ignoreCase };
  if (parts.length === 3 && a === STAR && typeof b === 'string' && c === STAR)
    // Not the engine's `contains`, which on a list field asks for an equal element: Sigma looks
    // for the text inside any value.
    return { kind: 'test', field, op: 'regex', value: escapeRegExp(b), ignoreCase };
  const source = parts
    .map((p) => (p === STAR ? '[\\s\\S]*' : p === ONE ? '[\\s\\S]' : escapeRegExp(p)))
    .join('');
  return { kind: 'test', field, op: 'regex', value: `^${source}$`, ignoreCase };
}

/**
 * A Sigma regular expression (a PCRE subset, modifiers appendix "Regular Expression") as a
 * JavaScript one. Flags come from the `i`, `m`, `s` sub-modifiers or a leading `(?ims)`; the
 * engine takes only case-insensitivity, so `s` and `m` are written into the pattern.
 */
export function translateRegex(
  text: string,
  flags: { i: boolean; m: boolean; s: boolean },
): { source: string; ignoreCase: boolean } | { error: string } {
  let src = text;
  const inline = /^\(\?([ims]+)\)/.exec(src);
  const f = { ...flags };
  if (inline !== null) {
    for (const ch of inline[1] ?? '') f[ch as 'i' | 'm' | 's'] = true;
    src = src.slice(inline[0].length);
  }
  src = src.replace(/\(\?P</g, '(?<');
  let out = '';
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const ch = src[i] as string;
    if (ch === '\\') {
      out += ch + (src[i + 1] ?? '');
      i++;
    } else if (inClass) {
      if (ch === ']') inClass = false;
      out += ch;
    } else if (ch === '[') {
      inClass = true;
      out += ch;
      if (src[i + 1] === '^') out += src[++i];
      // PCRE reads a `]` right after `[` or `[^` as a member; JavaScript as an empty class.
      if (src[i + 1] === ']') {
        out += '\\]';
        i++;
      }
    } else if (ch === '.' && f.s) out += '[\\s\\S]';
    else if (ch === '^' && f.m) out += '(?<![^\\n])';
    else if (ch === '$' && f.m) out += '(?![^\\n])';
    else out += ch;
  }
  try {
    new RegExp(out, f.i ? 'i' : '');
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
  return { source: out, ignoreCase: f.i };
}
