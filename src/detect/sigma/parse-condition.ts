/**
 * The `condition` of a Sigma rule's detection, parsed into a small AST. Grammar and precedence as
 * the Sigma rules specification (v2, "Condition") gives them, least to most binding: or, and, not,
 * `x of`, parentheses. Only `1 of` and `all of` are quantifiers there; the pipe aggregations and
 * `near` of Sigma 1 were replaced by correlation rules and are reported as unsupported.
 */

export type SigmaExpr =
  | { kind: 'and' | 'or'; of: SigmaExpr[] }
  | { kind: 'not'; of: SigmaExpr }
  | { kind: 'ref'; name: string }
  /** `1 of sel*`, `all of them`: `pattern` undefined means `them`. */
  | { kind: 'of'; all: boolean; pattern?: string };

export interface ConditionError {
  message: string;
  /** True for valid Sigma that kaudit does not support, false for a malformed condition. */
  unsupported: boolean;
}

type Token = { t: '(' | ')' | '|'; at: number } | { t: 'word'; text: string; at: number };

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  const re = /\s*(?:([()|])|([^\s()|]+))/y;
  let i = 0;
  while (i < text.length) {
    re.lastIndex = i;
    const m = re.exec(text);
    if (m === null) break; // only trailing whitespace is left
    const at = m.index + m[0].length - (m[1] ?? m[2] ?? '').length;
    if (m[1] !== undefined) out.push({ t: m[1] as '(' | ')' | '|', at });
    else if (m[2] !== undefined) out.push({ t: 'word', text: m[2], at });
    i = re.lastIndex;
  }
  return out;
}

const KEYWORDS = new Set(['and', 'or', 'not', 'of']);
const NEAR = '"near" is Sigma 1 syntax; write a temporal correlation rule instead';
const PIPE = 'pipe aggregations (`| count() ...`) are Sigma 1 syntax; write a correlation rule instead';

/** Parses one condition expression. */
export function parseCondition(text: string): SigmaExpr | ConditionError {
  const tokens = tokenize(text);
  let pos = 0;
  const word = (tok: Token | undefined): string | undefined =>
    tok?.t === 'word' ? tok.text.toLowerCase() : undefined;
  const fail = (message: string, unsupported = false): ConditionError => ({ message, unsupported });
  const where = (tok: Token | undefined) =>
    tok === undefined ? 'at the end' : `at column ${tok.at + 1} ("${tok.t === 'word' ? tok.text : tok.t}")`;

  const parseOr = (): SigmaExpr | ConditionError => {
    const parts: SigmaExpr[] = [];
    for (;;) {
      const p = parseAnd();
      if ('message' in p) return p;
      parts.push(p);
      if (word(tokens[pos]) !== 'or') break;
      pos++;
    }
    return parts.length === 1 ? (parts[0] as SigmaExpr) : { kind: 'or', of: parts };
  };
  const parseAnd = (): SigmaExpr | ConditionError => {
    const parts: SigmaExpr[] = [];
    for (;;) {
      const p = parseNot();
      if ('message' in p) return p;
      parts.push(p);
      if (word(tokens[pos]) !== 'and') break;
      pos++;
    }
    return parts.length === 1 ? (parts[0] as SigmaExpr) : { kind: 'and', of: parts };
  };
  const parseNot = (): SigmaExpr | ConditionError => {
    if (word(tokens[pos]) === 'not') {
      pos++;
      const inner = parseNot();
      return 'message' in inner ? inner : { kind: 'not', of: inner };
    }
    return parseAtom();
  };
  const parseAtom = (): SigmaExpr | ConditionError => {
    const tok = tokens[pos];
    if (tok === undefined) return fail('the condition ends where a search identifier is expected');
    if (tok.t === '(') {
      pos++;
      const inner = parseOr();
      if ('message' in inner) return inner;
      if (tokens[pos]?.t !== ')') return fail(`")" expected ${where(tokens[pos])}`);
      pos++;
      return inner;
    }
    if (tok.t !== 'word') {
      if (tok.t === '|') return fail(PIPE, true);
      return fail(`unexpected ")" ${where(tok)}`);
    }
    const w = tok.text.toLowerCase();
    if (word(tokens[pos + 1]) === 'of') {
      if (w !== '1' && w !== 'all')
        return fail(`"${tok.text} of" is not supported: only "1 of" and "all of" are`, true);
      const target = tokens[pos + 2];
      if (target?.t !== 'word' || KEYWORDS.has(target.text.toLowerCase()))
        return fail(`a search identifier pattern or "them" expected after "${tok.text} of" ${where(target)}`);
      pos += 3;
      const all = w === 'all';
      return target.text.toLowerCase() === 'them'
        ? { kind: 'of', all }
        : { kind: 'of', all, pattern: target.text };
    }
    if (w === 'near') return fail(NEAR, true);
    if (KEYWORDS.has(w)) return fail(`"${tok.text}" ${where(tok)} where a search identifier is expected`);
    if (tok.text.includes('*'))
      return fail(`the wildcard in "${tok.text}" needs "1 of" or "all of" before it`);
    pos++;
    return { kind: 'ref', name: tok.text };
  };

  const expr = parseOr();
  if ('message' in expr) return expr;
  const rest = tokens[pos];
  if (rest !== undefined) {
    if (rest.t === '|') return fail(PIPE, true);
    if (word(rest) === 'near') return fail(NEAR, true);
    return fail(`"and" or "or" expected ${where(rest)}`);
  }
  return expr;
}

/** Search identifiers a `1 of` / `all of` names, in the order the detection declares them. */
export function matchIdentifiers(pattern: string | undefined, names: readonly string[]): string[] {
  // Sigma rules specification: `them` leaves out identifiers starting with an underscore.
  if (pattern === undefined) return names.filter((n) => !n.startsWith('_'));
  const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`);
  return names.filter((n) => re.test(n));
}

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
