import { describe, expect, it } from 'vitest';
import { isLongRunning, parseGoDurationMs, parseTimestampMicros } from './derive.js';

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
