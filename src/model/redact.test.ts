import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from './event.js';
import { REDACTED, redactEvent, redactRequestUri } from './redact.js';

const events = readFileSync(
  new URL('../../test/fixtures/secret-request-response.jsonl', import.meta.url),
  'utf8',
)
  .split('\n')
  .filter((l) => l !== '')
  .map((l) => JSON.parse(l) as AuditEvent);

function at(i: number): AuditEvent {
  const e = events[i];
  if (!e) throw new Error(`fixture has no event ${i}`);
  return structuredClone(e);
}

describe('redactEvent', () => {
  it('removes Secret data, stringData and the last-applied copy, keeping the keys', () => {
    const e = at(0);
    expect(redactEvent(e)).toBe(true);
    const text = JSON.stringify(e);
    for (const secret of [
      'aHVudGVyMg==',
      'YWRtaW4=',
      'sk-live-9f8e7d6c5b4a',
      'c2stbGl2ZS05ZjhlN2Q2YzViNGE=',
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(e.requestObject).toMatchObject({
      data: { password: REDACTED, username: REDACTED },
      stringData: { 'api-key': REDACTED },
    });
    expect(e.annotations?.['kaudit.io/redacted']).toBe('true');
  });

  it('redacts JSON-patch values written under /data', () => {
    const e = at(1);
    redactEvent(e);
    expect(e.requestObject).toEqual([{ op: 'replace', path: '/data/password', value: REDACTED }]);
  });

  it('redacts TokenReview spec.token and TokenRequest status.token', () => {
    const review = at(2);
    redactEvent(review);
    expect(JSON.stringify(review)).not.toContain('eyJhbGciOiJSUzI1NiIsImtpZCI6InNlY3JldC10b2tlbiJ9');
    const request = at(3);
    redactEvent(request);
    expect(request.responseObject).toMatchObject({
      status: { token: REDACTED, expirationTimestamp: '2026-03-01T12:03:00Z' },
    });
  });

  it('redacts token-like query parameters and leaves others', () => {
    const e = at(4);
    redactEvent(e);
    expect(e.requestURI).toBe(
      `/api/v1/namespaces/prod/pods/web-7d9c/exec?command=sh&access_token=${encodeURIComponent(REDACTED)}&stdin=true`,
    );
    expect(redactRequestUri('/api/v1/pods?limit=500&watch=true')).toBe('/api/v1/pods?limit=500&watch=true');
  });

  it('leaves other resources untouched', () => {
    const e: AuditEvent = {
      ...at(0),
      objectRef: { resource: 'configmaps', namespace: 'prod', name: 'x', apiVersion: 'v1' },
      requestObject: { kind: 'ConfigMap', data: { a: 'b' } },
      requestURI: '/api/v1/namespaces/prod/configmaps',
    };
    delete e.responseObject;
    expect(redactEvent(e)).toBe(false);
    expect(e.requestObject).toEqual({ kind: 'ConfigMap', data: { a: 'b' } });
  });
});
