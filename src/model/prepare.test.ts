import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { prepareLine } from './prepare.js';

const lines = (name: string) =>
  readFileSync(new URL(`../../test/fixtures/${name}`, import.meta.url))
    .toString()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => Buffer.from(l));

const opts = { maxEventBytes: 4 * 1024 * 1024, redact: true };

describe('prepareLine', () => {
  it('passes a plain v1 line through untouched (the fast path)', () => {
    const [line] = lines('watch-long-running.jsonl');
    if (!line) throw new Error('fixture empty');
    const p = prepareLine(line, opts);
    expect(p.events).toHaveLength(1);
    expect(p.events[0]).toBe(line);
  });

  it('parses and redacts lines that carry secrets', () => {
    for (const line of lines('secret-request-response.jsonl')) {
      const p = prepareLine(line, opts);
      expect(p.events[0]).not.toBe(line);
      const text = p.events[0]?.toString() ?? '';
      expect(text).not.toMatch(/aHVudGVyMg==|bmV3LXBhc3N3b3Jk|eyJhbGciOiJSUzI1NiJ9|sk-live/);
    }
  });

  it('keeps Pod bodies with secret volumes and token paths on the fast path', () => {
    const [line] = lines('watch-long-running.jsonl');
    const pod = {
      ...JSON.parse(line?.toString() ?? '{}'),
      level: 'RequestResponse',
      objectRef: { resource: 'pods', namespace: 'prod', name: 'web', apiVersion: 'v1' },
      requestObject: {
        kind: 'Pod',
        spec: {
          volumes: [
            { name: 'tls', secret: { secretName: 'web-tls' } },
            { projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } },
          ],
        },
      },
    };
    const buf = Buffer.from(JSON.stringify(pod));
    expect(prepareLine(buf, opts).events[0]).toBe(buf);
  });

  it('leaves the fast path for each token redaction needs, and for credentials in the URI', () => {
    const [line] = lines('watch-long-running.jsonl');
    const base = JSON.parse(line?.toString() ?? '{}');
    const withBody = (requestObject: object, more: object = {}) =>
      Buffer.from(JSON.stringify({ ...base, level: 'RequestResponse', ...more, requestObject }));
    const sensitive = [
      withBody({ kind: 'List', items: [{ kind: 'Secret' }] }),
      withBody({ kind: 'SecretList' }),
      withBody({ kind: 'Thing' }, { objectRef: { resource: 'secrets', namespace: 'a', name: 'b' } }),
      withBody({ kind: 'TokenReview' }),
      withBody({ kind: 'TokenRequest' }),
      withBody({ kind: 'Thing' }, { objectRef: { resource: 'tokenreviews' } }),
      withBody({ kind: 'Thing' }, { objectRef: { resource: 'serviceaccounts', subresource: 'token' } }),
      Buffer.from(JSON.stringify({ ...base, requestURI: '/api/v1/pods?watch=1&token=abc' })),
    ];
    for (const buf of sensitive) expect(prepareLine(buf, opts).events[0], buf.toString()).not.toBe(buf);
    // redact.ts acts on objectRef and on a body's kind, so a rule naming secrets in a Role body is
    // no reason to parse.
    const plain = [
      withBody({ kind: 'Thing', note: 'secret token', key: '"secret"', more: 'Secrets' }),
      withBody({
        kind: 'Role',
        rules: [{ resources: ['secrets', 'serviceaccounts/token'], kinds: ['TokenReviews'] }],
      }),
      Buffer.from(JSON.stringify({ ...base, requestURI: '/api/v1/pods?watch=1' })),
    ];
    for (const buf of plain) expect(prepareLine(buf, opts).events[0], buf.toString()).toBe(buf);
  });

  it('finds a Secret body however the JSON after the prefix is spaced', () => {
    const [line] = lines('secret-request-response.jsonl');
    const text = line?.toString() ?? '';
    const prefix = '{"kind":"Event","apiVersion":"audit.k8s.io/v1",';
    expect(text.startsWith(prefix)).toBe(true);
    const spaced = Buffer.from(prefix + text.slice(prefix.length).replaceAll('":', '" : '));
    const out = prepareLine(spaced, opts).events[0]?.toString() ?? '';
    expect(out).toContain('db-credentials');
    expect(out).not.toContain('aHVudGVyMg==');
  });

  it('redacts nothing with redaction off', () => {
    const [line] = lines('secret-request-response.jsonl');
    if (!line) throw new Error('fixture empty');
    expect(prepareLine(line, { ...opts, redact: false }).events[0]?.toString()).toContain('aHVudGVyMg==');
  });

  it('keeps an oversized event with its bodies stripped and marked truncated', () => {
    const big = {
      ...JSON.parse(lines('watch-long-running.jsonl')[0]?.toString() ?? '{}'),
      level: 'RequestResponse',
      requestObject: { blob: 'x'.repeat(2048) },
    };
    const p = prepareLine(Buffer.from(JSON.stringify(big)), { ...opts, maxEventBytes: 1024 });
    expect(p.truncated).toBe(1);
    const out = JSON.parse(p.events[0]?.toString() ?? '{}');
    expect(out.requestObject).toBeUndefined();
    expect(out.annotations['audit.k8s.io/truncated']).toBe('true');
    expect(out.auditID).toBe(big.auditID);
  });

  it('reports malformed lines with a reason and ignores blank ones', () => {
    expect(prepareLine(Buffer.from('{"kind":"Event", oops'), opts).malformed).toMatch(/^not JSON/);
    expect(prepareLine(Buffer.from('{"hello":"world"}'), opts).malformed).toBe(
      'not an audit Event: missing field auditID',
    );
    expect(prepareLine(Buffer.from('   \r'), opts)).toEqual({ events: [], truncated: 0 });
  });
});
