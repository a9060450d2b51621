import { describe, expect, it } from 'vitest';
import { parseTimestampMicros } from '../../model/derive.js';
import { encodeBatch } from './event-row.js';

function event(id: string, received: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      level: 'Metadata',
      auditID: id,
      stage: 'ResponseComplete',
      requestURI: '/api/v1/pods',
      verb: 'list',
      user: { username: 'alice' },
      requestReceivedTimestamp: received,
      stageTimestamp: received,
    }),
  );
}

describe('encodeBatch', () => {
  it('reads every form of time as parseTimestampMicros does, in and out of the same second', () => {
    const times = [
      '2026-01-15T09:00:00.012514Z',
      '2026-01-15T09:00:00.5Z',
      '2026-01-15T09:00:00.123456789Z',
      '2026-01-15T09:00:00Z',
      '2026-01-15T09:00:00.000001Z',
      '2026-01-15T09:00:00.1x3Z',
      '2026-01-15T09:00:00.250+02:00',
      '2026-01-15T09:00:01.000000Z',
      '2026-01-15T09:00:00.999999Z',
    ];
    const batch = encodeBatch(
      times.map((t, i) => event(`id-${i}`, t)),
      'c',
      1,
    );
    const accepted = times.filter((t) => parseTimestampMicros(t) !== null || !Number.isNaN(Date.parse(t)));
    expect([...batch.tsUs]).toEqual(accepted.map((t) => parseTimestampMicros(t) ?? Date.parse(t) * 1000));
    expect(batch.rejected.map((r) => r.index)).toEqual(
      times.flatMap((t, i) => (accepted.includes(t) ? [] : [i])),
    );
  });

  it('keeps the first copy of a key, and its rows are contiguous runs of bytes', () => {
    const e = [event('a', '2026-01-15T09:00:00.1Z'), event('b', '2026-01-15T09:00:00.2Z')];
    const batch = encodeBatch([e[0] as Buffer, e[1] as Buffer, e[0] as Buffer], 'c', 1);
    expect(batch.repeats).toEqual([2]);
    expect([...batch.indexes]).toEqual([0, 1]);
    expect(batch.starts[0]).toBe(0);
    expect(batch.starts[2]).toBe(batch.data.length);
    // Each row ends with its event's text, length-prefixed.
    const row0 = Buffer.from(batch.data.subarray(batch.starts[0], batch.starts[1]));
    expect(row0.subarray(row0.length - (e[0] as Buffer).length).equals(e[0] as Buffer)).toBe(true);
  });
});
