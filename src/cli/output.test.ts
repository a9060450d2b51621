import { describe, expect, it } from 'vitest';
import { formatTable } from './output.js';

const rows = [
  {
    ts: '2026-01-15T09:00:00.000Z',
    subject: 'system:serviceaccount:kube-system:replicaset-controller',
    uri: `/apis/apps/v1/namespaces/payments/replicasets/${'x'.repeat(80)}`,
  },
  { ts: '2026-01-15T09:00:01.000Z', subject: 'alice', uri: '/api/v1/pods' },
];

describe('formatTable', () => {
  it('fits the given width, trimming the widest columns with an ellipsis', () => {
    const out = formatTable(['ts', 'subject', 'uri'], rows, 200, 80);
    const lines = out.trimEnd().split('\n');
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);
    expect(out).toContain('…');
    // the narrow column is left whole
    expect(lines[1]).toContain('2026-01-15T09:00:00.000Z');
  });

  it('without a width keeps whole cells up to maxCell', () => {
    const out = formatTable(['ts', 'subject', 'uri'], rows, 1000, undefined);
    expect(out).toContain('x'.repeat(80));
    expect(out).not.toContain('…');
  });

  it('shows event text escaped, never raw control characters', () => {
    const out = formatTable(['ua'], [{ ua: 'evil\u001b[2Jagent' }], 60, undefined);
    expect(out).not.toContain('\u001b');
  });
});

describe('parseTimeFlag', () => {
  it('refuses a duration too long to count back from now, as a user error', async () => {
    const { parseTimeFlag } = await import('./common.js');
    expect(() => parseTimeFlag('--since', '99999999999999999999h')).toThrow(/too long/);
    expect(parseTimeFlag('--since', '1h', Date.parse('2026-01-15T10:00:00Z'))).toBe(
      '2026-01-15T09:00:00.000Z',
    );
  });
});
