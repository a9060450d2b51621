import { describe, expect, it } from 'vitest';
import {
  decisionOf,
  isLongRunning,
  parseGoDurationMs,
  parseTimestampMicros,
  statusCodeOf,
} from './derive.js';
import { parseJsonKeepingNumbers } from './json.js';

describe('parseGoDurationMs', () => {
  it.each([
    ['1.5s', 1500],
    ['352.301µs', 0.352301],
    ['12us', 0.012],
    ['900ns', 0.0009],
    ['1m2.5s', 62500],
    ['2h0m0s', 7_200_000],
    ['0s', 0],
    ['-3ms', -3],
  ])('%s -> %d ms', (text, ms) => {
    expect(parseGoDurationMs(text)).toBeCloseTo(ms, 9);
  });

  it('rejects text that is not a duration', () => {
    expect(parseGoDurationMs('fast')).toBeNull();
    expect(parseGoDurationMs('12 ms')).toBeNull();
  });

  it('gives no value for a duration past the float range', () => {
    expect(parseGoDurationMs(`${'9'.repeat(400)}h`)).toBeNull();
    expect(parseGoDurationMs('1e400s')).toBeNull();
  });
});

describe('statusCodeOf', () => {
  it('keeps an int32 and drops anything else', () => {
    expect(statusCodeOf(403)).toBe(403);
    expect(statusCodeOf(2147483647)).toBe(2147483647);
    for (const token of ['1e400', '99999999999999999999', '2147483648', '200.5', '9007199254740993']) {
      const parsed = parseJsonKeepingNumbers(`{"code":${token}}`) as { code: unknown };
      expect(statusCodeOf(parsed.code)).toBeNull();
      expect(statusCodeOf(JSON.parse(`{"code":${token}}`).code)).toBeNull();
    }
    expect(statusCodeOf('403')).toBeNull();
  });
});

describe('parseTimestampMicros', () => {
  it('keeps microseconds that Date would drop', () => {
    const a = parseTimestampMicros('2026-03-01T10:00:00.000100Z') ?? 0;
    const b = parseTimestampMicros('2026-03-01T10:00:00.001350Z') ?? 0;
    expect(b - a).toBe(1250);
    expect(parseTimestampMicros('yesterday')).toBeNull();
  });
});

describe('isLongRunning', () => {
  it('follows kube-apiserver: watch/proxy verbs, attach/exec/proxy/log/portforward subresources', () => {
    expect(isLongRunning('watch', undefined)).toBe(true);
    expect(isLongRunning('create', 'exec')).toBe(true);
    expect(isLongRunning('get', 'log')).toBe(true);
    expect(isLongRunning('list', undefined)).toBe(false);
    expect(isLongRunning('get', 'status')).toBe(false);
  });
});

describe('decisionOf', () => {
  const base = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: 'a',
    stage: 'ResponseComplete',
    requestURI: '/api/v1/pods',
    verb: 'list',
    user: { username: 'bob' },
    requestReceivedTimestamp: '2026-01-15T09:00:00Z',
    stageTimestamp: '2026-01-15T09:00:00Z',
  } as const;
  it('takes the annotation when there is one', () => {
    expect(
      decisionOf({ ...base, annotations: { 'authorization.k8s.io/decision': 'allow' } } as never),
    ).toEqual({
      decision: 'allow',
      source: 'annotation',
    });
  });
  it("derives forbid from the authorizer's 403 message, old and new wording", () => {
    for (const message of [
      'pods is forbidden: User "bob" cannot list pods in the namespace "default"',
      'pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default"',
      'forbidden: User "system:anonymous" cannot get path "/metrics"',
    ])
      expect(decisionOf({ ...base, responseStatus: { code: 403, message } } as never)).toEqual({
        decision: 'forbid',
        source: 'response',
      });
  });
  it('does not take an admission 403 or another code for an RBAC decision', () => {
    for (const responseStatus of [
      { code: 403, message: 'pods "x" is forbidden: violates PodSecurity "baseline:latest": privileged' },
      { code: 403, message: 'admission webhook "v.example" denied the request' },
      { code: 401, message: 'Unauthorized' },
    ])
      expect(decisionOf({ ...base, responseStatus } as never)).toEqual({ decision: null, source: null });
  });
});
