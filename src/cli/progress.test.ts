import { describe, expect, it } from 'vitest';
import { formatProgress } from './progress.js';

describe('formatProgress', () => {
  it('shows the share of bytes, events read and stored, rate and ETA', () => {
    const line = formatProgress(
      { bytesRead: 50 * 1048576, bytesTotal: 200 * 1048576, events: 40_000, stored: 30_000, elapsedMs: 2000 },
      8,
    );
    expect(line).toBe(
      '[##......] 25%  40000 events read  30000 stored  50.0 MB/200.0 MB  20000 ev/s  ETA 6s',
    );
  });

  it('has no ETA for standard input, whose size is unknown', () => {
    expect(formatProgress({ bytesRead: 1048576, bytesTotal: null, events: 10, elapsedMs: 1000 })).toBe(
      '10 events read  1.0 MB  10 ev/s',
    );
  });
});
