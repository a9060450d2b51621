import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lineDiff } from './line-diff.js';

/** Applies a unified diff the way patch(1) does, trusting the hunk headers: the oracle of the tests below. */
function applyDiff(before: string, diff: string): string {
  const a = before === '' ? [] : before.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  let at = 0;
  for (const line of diff.split('\n').slice(2)) {
    const h = /^@@ -(\d+),(\d+) \+\d+,\d+ @@$/.exec(line);
    if (h) {
      const start = Number(h[2]) === 0 ? Number(h[1]) : Number(h[1]) - 1;
      while (at < start) out.push(a[at++] ?? '');
    } else if (line.startsWith(' ')) {
      expect(a[at]).toBe(line.slice(1));
      out.push(a[at++] ?? '');
    } else if (line.startsWith('-')) {
      expect(a[at]).toBe(line.slice(1));
      at++;
    } else if (line.startsWith('+')) out.push(line.slice(1));
  }
  while (at < a.length) out.push(a[at++] ?? '');
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

describe('lineDiff', () => {
  it('is empty for equal texts', () => {
    expect(lineDiff('a\nb\n', 'a\nb\n', { from: 'x', to: 'y' })).toBe('');
  });

  it('turns the old text into the new one when applied (random line edits)', () => {
    const text = fc
      .array(fc.constantFrom('a', 'b', 'c', 'd', 'e', ''), { maxLength: 40 })
      .map((l) => (l.length === 0 ? '' : `${l.join('\n')}\n`));
    fc.assert(
      fc.property(text, text, (before, after) => {
        expect(applyDiff(before, lineDiff(before, after, { from: 'a', to: 'b' }))).toBe(after);
      }),
      { seed: 22, numRuns: 300 },
    );
  });

  it('writes the hunks diff -u writes for a one-line insertion', () => {
    const before = 'one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\n';
    const after = 'one\ntwo\nthree\nfour\nFOUR-AND-A-HALF\nfive\nsix\nseven\neight\n';
    const ours = lineDiff(before, after, { from: 'old', to: 'new' });
    const dir = mkdtempSync(join(tmpdir(), 'kaudit-diff-'));
    try {
      writeFileSync(join(dir, 'old'), before);
      writeFileSync(join(dir, 'new'), after);
      let theirs = '';
      try {
        execFileSync('diff', ['-u', 'old', 'new'], { cwd: dir, encoding: 'utf8' });
      } catch (err) {
        theirs = (err as { stdout: string }).stdout;
      }
      // Same hunks; the header lines differ only by the timestamps diff adds.
      expect(ours.split('\n').slice(2)).toEqual(theirs.split('\n').slice(2));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
