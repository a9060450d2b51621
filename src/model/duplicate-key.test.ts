import { describe, expect, it } from 'vitest';
import { hasDuplicateKey, MAX_CHECKED_KEYS } from './duplicate-key.js';

const has = (s: string) => hasDuplicateKey(Buffer.from(s));

describe('hasDuplicateKey', () => {
  it('finds a key repeated among the event’s own or in an object the store reads fields from', () => {
    expect(has('{"verb":"get","user":{"username":"a"},"verb":"delete"}')).toBe(true);
    expect(has('{"user":{"username":"a","username":"b"}}')).toBe(true);
    expect(has('{"user" : {"username": "a", "username" :"b"}}')).toBe(true);
    expect(
      has('{"annotations":{"apiserver.latency.k8s.io/etcd":"1ms","apiserver.latency.k8s.io/etcd":"2ms"}}'),
    ).toBe(true);
    expect(has('{"responseStatus":{"code":200,"metadata":{},"code":403}}')).toBe(true);
    expect(has('{"objectRef":{"name":"a"},"objectRef":{"name":"b"}}')).toBe(true);
  });

  it('lets repeats pass where the store reads nothing: bodies, other objects, arrays, values', () => {
    expect(
      has(
        '{"verb":"get","user":{"username":"a","extra":{"k":["v"]}},"impersonatedUser":{"username":"b"},' +
          '"requestObject":{"metadata":{"name":"x"},"spec":{"name":"y","name":"z"}},' +
          '"responseObject":{"kind":"Status","code":403,"code":404},"sourceIPs":["verb","verb"],"userAgent":"verb"}',
      ),
    ).toBe(false);
    // Brackets, quotes and key-like text inside strings are text.
    expect(has('{"userAgent":"{\\"verb\\":1,","verb":"get","requestURI":"/x?a=}]"}')).toBe(false);
  });

  it('leaves to the parser what it cannot compare byte for byte: escaped keys, too many keys, broken text', () => {
    expect(has('{"verb":"get","ver\\u0062":"delete"}')).toBe(true);
    const many = Array.from({ length: MAX_CHECKED_KEYS + 1 }, (_v, i) => `"k${i}":1`).join(',');
    expect(has(`{"annotations":{${many}}}`)).toBe(true);
    expect(has(`{"requestObject":{${many}}}`)).toBe(false);
    expect(has('{"verb":"get"')).toBe(true);
    expect(has('{"verb":"get}')).toBe(true);
  });
});
