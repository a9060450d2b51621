import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { matchIdentifiers, parseCondition, type SigmaExpr } from './parse-condition.js';

const ref = (name: string): SigmaExpr => ({ kind: 'ref', name });

describe('parseCondition', () => {
  it('a single search identifier', () => {
    expect(parseCondition('selection')).toEqual(ref('selection'));
  });

  it('binds not tighter than and, and tighter than or', () => {
    expect(parseCondition('a or b and not c')).toEqual({
      kind: 'or',
      of: [ref('a'), { kind: 'and', of: [ref('b'), { kind: 'not', of: ref('c') }] }],
    });
    expect(parseCondition('not a and b')).toEqual({
      kind: 'and',
      of: [{ kind: 'not', of: ref('a') }, ref('b')],
    });
    expect(parseCondition('a and b or c and d')).toEqual({
      kind: 'or',
      of: [
        { kind: 'and', of: [ref('a'), ref('b')] },
        { kind: 'and', of: [ref('c'), ref('d')] },
      ],
    });
  });

  it('parentheses override precedence; not applies to a whole group', () => {
    expect(parseCondition('a and (b or c)')).toEqual({
      kind: 'and',
      of: [ref('a'), { kind: 'or', of: [ref('b'), ref('c')] }],
    });
    expect(parseCondition('not (a or b)')).toEqual({
      kind: 'not',
      of: { kind: 'or', of: [ref('a'), ref('b')] },
    });
    expect(parseCondition('((a))')).toEqual(ref('a'));
  });

  it('chains of one operator flatten', () => {
    expect(parseCondition('a and b and c')).toEqual({ kind: 'and', of: [ref('a'), ref('b'), ref('c')] });
    expect(parseCondition('not not a')).toEqual({ kind: 'not', of: { kind: 'not', of: ref('a') } });
  });

  it('1 of / all of with wildcard patterns and them', () => {
    expect(parseCondition('1 of selection_*')).toEqual({ kind: 'of', all: false, pattern: 'selection_*' });
    expect(parseCondition('all of them')).toEqual({ kind: 'of', all: true });
    expect(parseCondition('1 of them')).toEqual({ kind: 'of', all: false });
    expect(parseCondition('selection and not 1 of filter*')).toEqual({
      kind: 'and',
      of: [ref('selection'), { kind: 'not', of: { kind: 'of', all: false, pattern: 'filter*' } }],
    });
  });

  it('keywords are case-insensitive, identifiers keep their case', () => {
    expect(parseCondition('Sel AND NOT Filter')).toEqual({
      kind: 'and',
      of: [ref('Sel'), { kind: 'not', of: ref('Filter') }],
    });
    expect(parseCondition('ALL OF Them')).toEqual({ kind: 'of', all: true });
  });

  it.each([
    ['a and', 'ends where a search identifier is expected'],
    ['a b', '"and" or "or" expected at column 3 ("b")'],
    ['(a or b', '")" expected at the end'],
    ['a )', '"and" or "or" expected at column 3 (")")'],
    ['sel*', 'needs "1 of" or "all of"'],
    ['1 of', 'a search identifier pattern or "them" expected'],
    ['and a', '"and" at column 1'],
  ])('refuses %j as malformed', (text, message) => {
    const r = parseCondition(text);
    expect(r).toMatchObject({ unsupported: false });
    expect((r as { message: string }).message).toContain(message);
  });

  it.each([
    ['selection | count() > 5', 'pipe aggregations'],
    ['2 of selection*', '"2 of" is not supported'],
    ['a near b', '"near"'],
  ])('reports %j as unsupported', (text, message) => {
    const r = parseCondition(text);
    expect(r).toMatchObject({ unsupported: true });
    expect((r as { message: string }).message).toContain(message);
  });
});

type Tree = { k: 'id'; n: string } | { k: 'not'; e: Tree } | { k: 'and' | 'or'; l: Tree; r: Tree };

const RANK = { or: 1, and: 2, not: 3, id: 4 } as const;

/** The tree as condition text with only the parentheses precedence requires (or more, if asked). */
function print(t: Tree, min: number, extra: boolean[]): string {
  const wrap = extra.shift() === true;
  let text: string;
  if (t.k === 'id') text = t.n;
  else if (t.k === 'not') text = `not ${print(t.e, RANK.not, extra)}`;
  else text = `${print(t.l, RANK[t.k], extra)} ${t.k} ${print(t.r, RANK[t.k] + 1, extra)}`;
  return RANK[t.k] < min || wrap ? `(${text})` : text;
}

function evalTree(t: Tree, v: Record<string, boolean>): boolean {
  if (t.k === 'id') return v[t.n] === true;
  if (t.k === 'not') return !evalTree(t.e, v);
  return t.k === 'and' ? evalTree(t.l, v) && evalTree(t.r, v) : evalTree(t.l, v) || evalTree(t.r, v);
}

function evalExpr(e: SigmaExpr, v: Record<string, boolean>): boolean {
  switch (e.kind) {
    case 'ref':
      return v[e.name] === true;
    case 'not':
      return !evalExpr(e.of, v);
    case 'and':
      return e.of.every((x) => evalExpr(x, v));
    case 'or':
      return e.of.some((x) => evalExpr(x, v));
    case 'of':
      throw new Error('no quantifiers here');
  }
}

describe('parseCondition against the expression it was printed from', () => {
  it('gives the same truth table for random expressions (precedence and parentheses)', () => {
    const { tree } = fc.letrec<{ tree: Tree }>((tie) => ({
      tree: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.constantFrom('a', 'b', 'c').map((n): Tree => ({ k: 'id', n })),
        tie('tree').map((e): Tree => ({ k: 'not', e })),
        fc.record({ k: fc.constantFrom('and' as const, 'or' as const), l: tie('tree'), r: tie('tree') }),
      ),
    }));
    fc.assert(
      fc.property(tree, fc.array(fc.boolean(), { maxLength: 40 }), (t, extra) => {
        const text = print(t, 0, [...extra]);
        const parsed = parseCondition(text);
        if ('message' in parsed) throw new Error(`${text}: ${parsed.message}`);
        for (let bits = 0; bits < 8; bits++) {
          const v = { a: (bits & 1) !== 0, b: (bits & 2) !== 0, c: (bits & 4) !== 0 };
          expect(evalExpr(parsed, v), text).toBe(evalTree(t, v));
        }
      }),
      { seed: 11, numRuns: 300 },
    );
  });
});

describe('matchIdentifiers', () => {
  const names = ['selection', 'selection_2', 'sel_b', 'filter_main', '_internal'];

  it('wildcards match anywhere in the pattern, in declaration order', () => {
    expect(matchIdentifiers('selection*', names)).toEqual(['selection', 'selection_2']);
    expect(matchIdentifiers('sel*', names)).toEqual(['selection', 'selection_2', 'sel_b']);
    expect(matchIdentifiers('*_*', names)).toEqual(['selection_2', 'sel_b', 'filter_main', '_internal']);
    expect(matchIdentifiers('filter', names)).toEqual([]);
  });

  it('them leaves out identifiers starting with an underscore', () => {
    expect(matchIdentifiers(undefined, names)).toEqual(['selection', 'selection_2', 'sel_b', 'filter_main']);
  });
});
