import { describe, expect, it } from 'vitest';
import { parseJsonKeepingNumbers, stringifyKeepingNumbers } from './json.js';

describe('parseJsonKeepingNumbers', () => {
  it.each([
    '1e400',
    '-1e400',
    '99999999999999999999',
    '9007199254740993',
    '1.0',
    '2e2',
    '-0',
    '0.1000000000000000055511151231257827',
  ])('writes %s back as it was written', (token) => {
    const text = `{"responseStatus":{"code":${token}},"requestObject":{"spec":{"n":[${token},1]}}}`;
    expect(stringifyKeepingNumbers(parseJsonKeepingNumbers(text))).toBe(text);
  });

  it('leaves numbers a double keeps as numbers', () => {
    const v = parseJsonKeepingNumbers('{"code":403,"ratio":0.5,"big":9007199254740991}') as Record<
      string,
      unknown
    >;
    expect(v).toEqual({ code: 403, ratio: 0.5, big: 9007199254740991 });
  });

  it('does not touch digits inside strings, escaped quotes included', () => {
    const text = '{"a":"x\\": 1e400, 99999999999999999999","b":1e400}';
    const v = parseJsonKeepingNumbers(text) as Record<string, unknown>;
    expect(v.a).toBe('x": 1e400, 99999999999999999999');
    expect(typeof v.b).toBe('string');
    expect(stringifyKeepingNumbers(v)).toBe(text);
  });

  it('refuses what JSON.parse refuses', () => {
    expect(() => parseJsonKeepingNumbers('{"a":1.2.3}')).toThrow(SyntaxError);
    expect(() => parseJsonKeepingNumbers('{"a":01}')).toThrow(SyntaxError);
    expect(() => parseJsonKeepingNumbers('{"a":"1e400}')).toThrow(SyntaxError);
  });

  it('a string that looks like a kept number is written as the string it is', () => {
    const text = '{"a":"\\u0000kaudit-number-0000000000000000:1e400"}';
    expect(stringifyKeepingNumbers(parseJsonKeepingNumbers(text))).toBe(text);
  });
});
