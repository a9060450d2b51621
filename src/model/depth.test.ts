import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deriveFields } from './derive.js';
import type { AuditEvent } from './event.js';
import { bytesDepthExceeds, jsonDepthExceeds, MAX_JSON_DEPTH } from './json.js';
import { normalizeValue } from './normalize.js';
import { readAuditEvents } from './read-events.js';
import { redactEvent } from './redact.js';

const DEEP = 100_000;

function nestedObjects(depth: number): unknown {
  let v: unknown = {};
  for (let i = 1; i < depth; i++) v = { a: v };
  return v;
}

const deepText = (depth: number) => `${'{"a":'.repeat(depth - 1)}{}${'}'.repeat(depth - 1)}`;

const event = (extra: Record<string, unknown> = {}): AuditEvent =>
  ({
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'RequestResponse',
    auditID: 'a-1',
    stage: 'ResponseComplete',
    requestURI: '/api/v1/namespaces/default/secrets',
    verb: 'create',
    user: { username: 'alice' },
    objectRef: { resource: 'secrets', namespace: 'default', apiVersion: 'v1' },
    requestReceivedTimestamp: '2026-11-26T10:00:00Z',
    stageTimestamp: '2026-11-26T10:00:00Z',
    ...extra,
  }) as AuditEvent;

describe('the depth limit', () => {
  it('is measured the same on text and on parsed values, strings not counted', () => {
    for (const d of [MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1]) {
      const text = deepText(d);
      expect(bytesDepthExceeds(Buffer.from(text))).toBe(d > MAX_JSON_DEPTH);
      expect(jsonDepthExceeds(JSON.parse(text))).toBe(d > MAX_JSON_DEPTH);
    }
    const inString = JSON.stringify({ s: '{['.repeat(5000), t: 'x\\"{{{{{{' });
    expect(bytesDepthExceeds(Buffer.from(inString))).toBe(false);
    expect(bytesDepthExceeds(Buffer.from(`[${'['.repeat(DEEP)}`))).toBe(true);
    expect(jsonDepthExceeds(nestedObjects(DEEP))).toBe(true);
  });

  it('no walk of an event overflows the stack however deep it nests', () => {
    const deep = nestedObjects(DEEP);
    const e = event({ requestObject: deep, responseObject: [deep], user: { username: 'u', extra: deep } });
    expect(() => deriveFields(e, 'c')).not.toThrow();
    expect(() => redactEvent(e)).not.toThrow();
    let list: Record<string, unknown> = { kind: 'SecretList', items: [] };
    for (let i = 0; i < DEEP; i++) list = { kind: 'SecretList', items: [list] };
    expect(() => redactEvent(event({ requestObject: list }))).not.toThrow();
    expect(normalizeValue(e).ok).toBe(true);
    let lists: unknown = [];
    for (let i = 0; i < DEEP; i++) lists = [lists];
    expect(normalizeValue(lists)).toEqual({ ok: false, reason: expect.stringMatching(/nested more than 4/) });
  });
});

describe('readAuditEvents', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kaudit-depth-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the good items of an array with a bad one, and a deep event without its bodies', async () => {
    const file = join(dir, 'events.json');
    const deepLine = JSON.stringify(event({ auditID: 'deep', requestObject: '@' })).replace(
      '"@"',
      deepText(5000),
    );
    writeFileSync(file, `${JSON.stringify([event({ auditID: 'good' }), { auditID: 'bad' }])}\n${deepLine}\n`);
    const bad: string[] = [];
    const ids: string[] = [];
    for await (const r of readAuditEvents(file, { onMalformed: (m) => bad.push(m.reason) })) {
      ids.push(r.event.auditID);
      if (r.event.auditID === 'deep') expect(r.event.requestObject).toBeUndefined();
    }
    expect(ids).toEqual(['good', 'deep']);
    expect(bad).toEqual(['item 1: not an audit Event: field stage: missing']);
  });
});
