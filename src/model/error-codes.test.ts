import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from './error-codes.js';

const SRC = fileURLToPath(new URL('..', import.meta.url));
const DOC = fileURLToPath(new URL('../../docs/errors.md', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.tsx?$/.test(name) && !name.endsWith('.test.ts') ? [p] : [];
  });
}

function table(): string {
  return [
    '| code | meaning |',
    '|---|---|',
    ...Object.entries(ERROR_CODES).map(([k, v]) => `| \`${k}\` | ${v.replaceAll('|', '\\|')} |`),
  ].join('\n');
}

describe('the error catalogue', () => {
  const used = new Set(
    sources(SRC).flatMap((f) =>
      [...readFileSync(f, 'utf8').matchAll(/'(KAUDIT_[A-Z0-9_]+)'/g)].map((m) => m[1] as string),
    ),
  );

  it('holds every code the source reports', () => {
    expect([...used].filter((c) => !(c in ERROR_CODES)).sort()).toEqual([]);
  });

  it('holds no code that nothing reports', () => {
    expect(Object.keys(ERROR_CODES).filter((c) => !used.has(c))).toEqual([]);
  });

  it('is the table of docs/errors.md (KAUDIT_UPDATE_DOCS=1 rewrites it)', () => {
    const doc = readFileSync(DOC, 'utf8');
    const begin = '<!-- codes:begin -->\n';
    const end = '\n<!-- codes:end -->';
    const from = doc.indexOf(begin) + begin.length;
    const to = doc.indexOf(end);
    if (process.env.KAUDIT_UPDATE_DOCS === '1') {
      writeFileSync(DOC, doc.slice(0, from) + table() + doc.slice(to));
      return;
    }
    expect(doc.slice(from, to)).toBe(table());
  });
});
