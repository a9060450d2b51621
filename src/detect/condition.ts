/**
 * Conditions of the rule language, checked on load (condition-check.ts) and compiled here once
 * into closures, so matching an event runs no interpreter: each field test is a getter and a
 * value test built for its operator.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { compileGetter, type EventContext, type Getter } from './fields.js';

export const OPERATORS = [
  'equals',
  'in',
  'prefix',
  'suffix',
  'contains',
  'glob',
  'regex',
  'cidr',
  'exists',
  'gt',
  'gte',
  'lt',
  'lte',
] as const;
export type Operator = (typeof OPERATORS)[number];

export const QUANTIFIERS = ['anyOf', 'allOf', 'noneOf'] as const;
export type Quantifier = (typeof QUANTIFIERS)[number];

export type Condition =
  | { kind: 'all'; of: Condition[] }
  | { kind: 'any'; of: Condition[] }
  | { kind: 'not'; of: Condition }
  | { kind: 'test'; field: string[]; op: Operator; value: unknown; ignoreCase: boolean }
  | { kind: 'quantifier'; field: string[]; q: Quantifier; of: Condition };

export type Predicate = (root: unknown) => boolean;

/** Compiles a condition; at the top the root is an EventContext, inside a quantifier an element. */
export function compileCondition(c: Condition, relative = false): Predicate {
  switch (c.kind) {
    case 'all': {
      const parts = c.of.map((x) => compileCondition(x, relative));
      if (parts.length === 1) return parts[0] as Predicate;
      return (root) => {
        for (const p of parts) if (!p(root)) return false;
        return true;
      };
    }
    case 'any': {
      const parts = c.of.map((x) => compileCondition(x, relative));
      if (parts.length === 1) return parts[0] as Predicate;
      return (root) => {
        for (const p of parts) if (p(root)) return true;
        return false;
      };
    }
    case 'not': {
      const inner = compileCondition(c.of, relative);
      return (root) => !inner(root);
    }
    case 'quantifier':
      return compileQuantifier(compileGetter(c.field, relative), c.q, compileCondition(c.of, true));
    case 'test':
      return compileTest(compileGetter(c.field, relative), c.op, c.value, c.ignoreCase);
  }
}

function compileQuantifier(get: Getter, q: Quantifier, inner: Predicate): Predicate {
  const elements = (root: unknown): unknown[] => {
    const v = get(root);
    if (v === undefined || v === null) return [];
    return Array.isArray(v) ? v : [v];
  };
  if (q === 'anyOf') return (root) => elements(root).some(inner);
  if (q === 'allOf') return (root) => elements(root).every(inner);
  return (root) => !elements(root).some(inner);
}

type ValueTest = (v: unknown) => boolean;

function compileTest(get: Getter, op: Operator, value: unknown, ignoreCase: boolean): Predicate {
  if (op === 'exists') {
    const want = value === true;
    return (root) => present(get(root)) === want;
  }
  if (op === 'contains') {
    // On an array field, `contains` asks for an element; on a string, for a substring.
    const element = stringTest(value, ignoreCase, (s, w) => s === w);
    const substring = stringTest(value, ignoreCase, (s, w) => s.includes(w));
    return (root) => {
      const v = get(root);
      if (Array.isArray(v)) return v.some(element);
      return substring(asText(v));
    };
  }
  const test = valueTest(op, value, ignoreCase);
  if (STRING_OPS.has(op)) {
    // A mapping is tested as its JSON text (as Falco tests `ka.req.configmap.obj`): keys and values.
    return (root) => {
      const v = get(root);
      if (Array.isArray(v)) return v.some((x) => test(asText(x)));
      return test(asText(v));
    };
  }
  return (root) => {
    const v = get(root);
    if (Array.isArray(v)) return v.some(test);
    return test(v);
  };
}

const STRING_OPS: ReadonlySet<Operator> = new Set(['prefix', 'suffix', 'glob', 'regex']);

/** String operators read numbers as their decimal text (`responseStatus.code` prefix "4") and mappings as JSON. */
function asText(v: unknown): unknown {
  if (typeof v === 'number') return String(v);
  return v !== null && typeof v === 'object' ? JSON.stringify(v) : v;
}

function present(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  return !Array.isArray(v) || v.length > 0;
}

function valueTest(
  op: Exclude<Operator, 'exists' | 'contains'>,
  value: unknown,
  ignoreCase: boolean,
): ValueTest {
  switch (op) {
    case 'equals':
    case 'in':
      return equalsTest(value, ignoreCase);
    case 'prefix':
      return stringTest(value, ignoreCase, (s, w) => s.startsWith(w));
    case 'suffix':
      return stringTest(value, ignoreCase, (s, w) => s.endsWith(w));
    case 'glob': {
      const res = listOf(value).map((g) => globToRegExp(String(g), ignoreCase));
      return (v) => typeof v === 'string' && res.some((r) => r.test(v));
    }
    case 'regex': {
      const res = listOf(value).map((p) => new RegExp(String(p), ignoreCase ? 'i' : ''));
      return (v) => typeof v === 'string' && res.some((r) => r.test(v));
    }
    case 'cidr':
      return cidrTest(listOf(value).map(String));
    case 'gt':
      return numberTest((n) => n > Number(value));
    case 'gte':
      return numberTest((n) => n >= Number(value));
    case 'lt':
      return numberTest((n) => n < Number(value));
    case 'lte':
      return numberTest((n) => n <= Number(value));
  }
}

function listOf(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [value];
}

/** Strings compare as strings (case folded when asked); numbers and booleans exactly. */
function equalsTest(value: unknown, ignoreCase: boolean): ValueTest {
  const wanted = listOf(value);
  const strings = new Set(
    wanted.filter((w) => typeof w === 'string').map((w) => (ignoreCase ? (w as string).toLowerCase() : w)),
  );
  const others = wanted.filter((w) => typeof w !== 'string');
  if (others.length === 0) {
    if (ignoreCase) return (v) => typeof v === 'string' && strings.has(v.toLowerCase());
    return (v) => typeof v === 'string' && strings.has(v);
  }
  return (v) => {
    if (typeof v === 'string') return strings.has(ignoreCase ? v.toLowerCase() : v);
    return others.includes(v);
  };
}

function stringTest(value: unknown, ignoreCase: boolean, f: (s: string, w: string) => boolean): ValueTest {
  const wanted = listOf(value).map((w) => (ignoreCase ? String(w).toLowerCase() : String(w)));
  if (wanted.length === 1) {
    const w = wanted[0] as string;
    if (ignoreCase) return (v) => typeof v === 'string' && f(v.toLowerCase(), w);
    return (v) => typeof v === 'string' && f(v, w);
  }
  return (v) => {
    if (typeof v !== 'string') return false;
    const s = ignoreCase ? v.toLowerCase() : v;
    return wanted.some((w) => f(s, w));
  };
}

function numberTest(f: (n: number) => boolean): ValueTest {
  return (v) => {
    const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
    return Number.isFinite(n) && f(n);
  };
}

/** `*` any run of characters, `?` one; everything else literal; the whole value must match. */
export function globToRegExp(glob: string, ignoreCase: boolean): RegExp {
  let re = '';
  for (const ch of glob) {
    if (ch === '*') re += '[\\s\\S]*';
    else if (ch === '?') re += '[\\s\\S]';
    else re += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, ignoreCase ? 'i' : '');
}

/** `10.0.0.0/8`, `fd00::/8`, or a bare address; false for an invalid one (checked on load). */
export function parseCidr(
  text: string,
): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', bits] = text.split('/');
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  if (family === undefined) return undefined;
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits)))
    return undefined;
  return { address, prefix, family };
}

/** Addresses remembered per CIDR test: a cluster's clients are few, the native check is not free. */
const CIDR_MEMO_ENTRIES = 4096;

export function cidrTest(cidrs: readonly string[]): ValueTest {
  const list = new BlockList();
  for (const c of cidrs) {
    const p = parseCidr(c);
    if (p !== undefined) list.addSubnet(p.address, p.prefix, p.family);
  }
  const memo = new Map<string, boolean>();
  return (v) => {
    if (typeof v !== 'string') return false;
    const known = memo.get(v);
    if (known !== undefined) return known;
    const hit = isIPv4(v) ? list.check(v, 'ipv4') : isIPv6(v) ? list.check(v, 'ipv6') : false;
    if (memo.size >= CIDR_MEMO_ENTRIES) memo.clear();
    memo.set(v, hit);
    return hit;
  };
}

/** Compiles a condition for the engine's top level (root: an EventContext). */
export function compileEventCondition(c: Condition): (ctx: EventContext) => boolean {
  return compileCondition(c, false) as (ctx: EventContext) => boolean;
}
