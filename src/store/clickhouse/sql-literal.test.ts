import { describe, expect, it } from 'vitest';
import { sqlIdentifier, sqlNumber, sqlString, sqlStringList } from './sql-literal.js';

/** Reads a literal back as ClickHouse's lexer does, to check that it ends where it began. */
function readLiteral(sql: string): { value: string; rest: string } {
  expect(sql[0]).toBe("'");
  const escapes: Record<string, string> = { '0': '\0', n: '\n', r: '\r', t: '\t', b: '\b', f: '\f' };
  let value = '';
  for (let i = 1; i < sql.length; i++) {
    const c = sql[i] ?? '';
    if (c === '\\') {
      const next = sql[++i] ?? '';
      value += escapes[next] ?? next;
    } else if (c === "'") {
      return { value, rest: sql.slice(i + 1) };
    } else {
      value += c;
    }
  }
  throw new Error('literal not closed');
}

const HOSTILE = [
  "a' OR 1=1 --",
  "'; DROP TABLE events; --",
  'back\\slash',
  "\\' OR 1=1 --",
  'trailing\\',
  'nul\0byte',
  'line\nbreak\r\ttab',
  'ünïcödé ☃ 𝄞 日本',
  "''",
  '`backtick`',
];

describe('sqlString', () => {
  it.each(HOSTILE)('keeps %j inside one literal with the same value', (value) => {
    const { value: back, rest } = readLiteral(sqlString(value));
    expect(back).toBe(value);
    expect(rest).toBe('');
  });

  it('writes no raw NUL or unescaped quote', () => {
    const text = sqlString("x'\0y");
    expect(text).toBe("'x\\'\\0y'");
  });
});

describe('sqlStringList', () => {
  it('matches nothing when empty', () => {
    expect(sqlStringList([])).toBe('(NULL)');
  });
  it('escapes each value', () => {
    expect(sqlStringList(["a'", 'b'])).toBe("('a\\'', 'b')");
  });
});

describe('sqlNumber and sqlIdentifier', () => {
  it('refuses non-finite numbers', () => {
    expect(() => sqlNumber(Number.NaN)).toThrow();
    expect(sqlNumber(2.5)).toBe('2.5');
  });
  it('back-quotes names', () => {
    expect(sqlIdentifier('ev`ents')).toBe('`ev\\`ents`');
  });
});
