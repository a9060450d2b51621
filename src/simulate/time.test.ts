import { describe, expect, it } from 'vitest';
import { formatGoDuration, formatMicroTime, parseDurationMs, parseRfc3339 } from './time.js';

describe('formatGoDuration', () => {
  it('matches Go time.Duration.String for the magnitudes kube-apiserver annotates', () => {
    expect(formatGoDuration(780)).toBe('780ns');
    expect(formatGoDuration(12_500)).toBe('12.5µs');
    expect(formatGoDuration(1_234_567)).toBe('1.234567ms');
    expect(formatGoDuration(4_730_661_757)).toBe('4.730661757s');
    expect(formatGoDuration(62_500_000_000)).toBe('1m2.5s');
    expect(formatGoDuration(3_600_000_000_000)).toBe('1h0m0s');
    expect(formatGoDuration(0)).toBe('0s');
  });
});

describe('timestamps', () => {
  it('formats MicroTime and parses RFC 3339 back to the same microsecond', () => {
    const us = parseRfc3339('2026-01-15T09:00:01.000042Z');
    expect(us).toBe(Date.UTC(2026, 0, 15, 9, 0, 1) * 1000 + 42);
    expect(formatMicroTime(us ?? 0)).toBe('2026-01-15T09:00:01.000042Z');
    expect(parseRfc3339('2026-01-15T10:00:00+01:00')).toBe(Date.UTC(2026, 0, 15, 9) * 1000);
    expect(parseRfc3339('yesterday')).toBeUndefined();
  });

  it('parses flag durations and rejects junk', () => {
    expect(parseDurationMs('10m')).toBe(600_000);
    expect(parseDurationMs('1h30m')).toBe(5_400_000);
    expect(parseDurationMs('500ms')).toBe(500);
    expect(parseDurationMs('10 minutes')).toBeUndefined();
    expect(parseDurationMs('')).toBeUndefined();
  });
});
