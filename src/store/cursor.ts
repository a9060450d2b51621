/**
 * The search cursor of the SQL backends: the sort key of the last row of a page, opaque to
 * callers (base64url JSON). Each backend turns it into its own "rows after this one" predicate.
 */
import type { Row } from './contract.js';

export interface Cursor {
  /** The row's time in µs. */
  t: number;
  /** Its latency (the latency sort only). */
  l?: number | null;
  a: string;
  s: string;
  c: string;
}

export function decodeCursor(text: string): Cursor {
  try {
    return JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Cursor;
  } catch {
    throw new Error('bad cursor');
  }
}

/** The cursor after `last`, a row that carries the sort keys as __t, __l, __a, __s, __c. */
export function cursorAfter(last: Row): string {
  const cur: Cursor = {
    t: Number(last.__t),
    l: last.__l === null || last.__l === undefined ? null : Number(last.__l),
    a: String(last.__a),
    s: String(last.__s),
    c: String(last.__c),
  };
  return Buffer.from(JSON.stringify(cur)).toString('base64url');
}
