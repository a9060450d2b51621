import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from './json.js';
import { prepareLine, prepareValue } from './prepare.js';

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

const event = (id: string, extra: Record<string, unknown> = {}) => ({
  kind: 'Event',
  apiVersion: 'audit.k8s.io/v1',
  level: 'RequestResponse',
  auditID: id,
  stage: 'ResponseComplete',
  requestURI: '/api/v1/namespaces/default/configmaps',
  verb: 'create',
  user: { username: 'alice' },
  requestReceivedTimestamp: '2026-11-26T10:00:00Z',
  stageTimestamp: '2026-11-26T10:00:00Z',
  ...extra,
});

function nested(depth: number): unknown {
  let v: unknown = {};
  for (let i = 1; i < depth; i++) v = { a: v };
  return v;
}

describe('prepareValue: one bad item costs only itself', () => {
  it('keeps the good events of an EventList and names each bad item by its index', () => {
    const items: unknown[] = Array.from({ length: 100 }, (_, i) => event(`e-${i}`));
    items[42] = { kind: 'Event', apiVersion: 'audit.k8s.io/v1', auditID: 'bad' };
    items[77] = 'not an object';
    const p = prepareValue({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items });
    expect(p.malformed).toBeUndefined();
    expect(p.events).toHaveLength(98);
    expect(p.rejected?.map((r) => r.reason)).toEqual([
      'EventList item 42: not an audit Event: field stage: missing',
      'EventList item 77: not an audit Event: a JSON string',
    ]);
    expect(JSON.parse(p.rejected?.[0]?.data.toString() ?? '')).toEqual(items[42]);
  });

  it('does the same for a JSON array and for an array line', () => {
    const arr = [event('a'), { auditID: 7 }, event('b')];
    for (const p of [prepareValue(arr), prepareLine(Buffer.from(JSON.stringify(arr)), opts)]) {
      expect(p.events.map((e) => JSON.parse(e.toString()).auditID)).toEqual(['a', 'b']);
      expect(p.rejected?.map((r) => r.reason)).toEqual(['item 1: not an audit Event: missing field auditID']);
    }
  });

  it('still refuses as a whole a value that is not a list', () => {
    const p = prepareValue({ kind: 'Pod' });
    expect(p.events).toHaveLength(0);
    expect(p.malformed).toBe('not an audit Event: kind "Pod"');
    expect(p.rejected).toBeUndefined();
  });
});

describe('nesting deeper than MAX_JSON_DEPTH', () => {
  it('stores the event without its bodies and keeps the record aside, on the line and value paths', () => {
    const deep = event('deep', { requestObject: nested(5000) });
    const line = Buffer.from(
      JSON.stringify({ ...deep, requestObject: '@' }).replace('"@"', () => {
        let s = '';
        for (let i = 1; i < 5000; i++) s += '{"a":';
        return `${s}{}${'}'.repeat(4999)}`;
      }),
    );
    for (const p of [prepareValue(deep), prepareLine(line, opts)]) {
      expect(p.events).toHaveLength(1);
      const out = JSON.parse(p.events[0]?.toString() ?? '{}');
      expect(out.auditID).toBe('deep');
      expect(out.requestObject).toBeUndefined();
      expect(out.annotations['audit.k8s.io/truncated']).toBe('true');
      expect(p.truncated).toBe(1);
      expect(p.rejected?.[0]?.reason).toBe(
        `bodies nested deeper than ${MAX_JSON_DEPTH} levels; the event is stored without them`,
      );
    }
    expect(prepareLine(line, opts).rejected?.[0]?.data.subarray(0, 20).toString()).toBe(
      line.subarray(0, 20).toString(),
    );
  });

  it('keeps an event aside whole when what is deep is not a body, and a list nested 100000 deep', () => {
    const p = prepareValue([event('ok'), event('deep-user', { user: nested(3000) })]);
    expect(p.events).toHaveLength(1);
    expect(p.rejected?.map((r) => r.reason)).toEqual([`item 1: nested deeper than ${MAX_JSON_DEPTH} levels`]);
    const lists = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const q = prepareLine(Buffer.from(lists), opts);
    expect(q.events).toHaveLength(0);
    expect(q.rejected?.[0]?.reason).toMatch(/lists nested more than 4 deep/);
  });

  it('leaves an event exactly MAX_JSON_DEPTH deep alone', () => {
    // The event is level 1, its requestObject level 2.
    const p = prepareValue(event('edge', { requestObject: nested(MAX_JSON_DEPTH - 1) }));
    expect(p.rejected).toBeUndefined();
    expect(JSON.parse(p.events[0]?.toString() ?? '{}').requestObject).toEqual(nested(MAX_JSON_DEPTH - 1));
  });
});

describe('years past 9999', () => {
  it('are refused on the fast path as on the parsing path', () => {
    const line = readFileSync(new URL('../../test/fixtures/watch-long-running.jsonl', import.meta.url))
      .toString()
      .split('\n')[0] as string;
    expect(prepareLine(Buffer.from(line), opts).events).toHaveLength(1);
    const at = line.indexOf('"requestReceivedTimestamp":"') + '"requestReceivedTimestamp":"'.length;
    const future = Buffer.from(`${line.slice(0, at)}1${line.slice(at)}`);
    const p = prepareLine(future, opts);
    expect(p.events).toHaveLength(0);
    expect(p.malformed).toBe(
      'not an audit Event: field requestReceivedTimestamp: missing or not a timestamp',
    );
    expect(prepareValue(JSON.parse(future.toString())).malformed).toBe(p.malformed);
  });
});
