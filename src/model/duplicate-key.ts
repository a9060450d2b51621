/**
 * Duplicate keys where the store reads fields. JSON leaves them undefined; Go's encoding/json (which
 * kube-apiserver and kubectl decode with) and JSON.parse keep the last value, while DuckDB's
 * json_transform keeps the first. A line handed to the store unparsed (prepare.ts, the fast path)
 * would get columns from the first value and a parsed one from the last, so a line with such a
 * duplicate is parsed instead, and every path keeps the last.
 *
 * Checked: the event's own keys and those of the objects the store reads fields from (user,
 * impersonatedUser, objectRef, responseStatus, annotations). A key written with an escape there
 * counts too (`"ver\u0062"` is `verb` to every decoder), as does more than MAX_KEYS keys in one
 * object or a line whose brackets do not balance: those go to the parser, which decides. This is
 * the reference for wasm/event-scan.ts hasDuplicateKey, which must give the same answers.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;

/** kube-apiserver writes 18 event fields at most; an object with more keys is parsed. */
export const MAX_CHECKED_KEYS = 64;

const CHECKED_OBJECTS: ReadonlySet<string> = new Set([
  'user',
  'impersonatedUser',
  'objectRef',
  'responseStatus',
  'annotations',
]);

function isSpace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a;
}

/** The closing quote of the string whose opening quote is at `open`, or -1. */
function stringEnd(line: Buffer, open: number): number {
  let end = open;
  for (;;) {
    end = line.indexOf(QUOTE, end + 1);
    if (end < 0) return -1;
    let backslashes = 0;
    while (line[end - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return end;
  }
}

/** True when the line must be parsed for its keys (see above). */
export function hasDuplicateKey(line: Buffer): boolean {
  let depth = 0;
  const top: string[] = [];
  // Keys of the depth-2 object being checked; null inside any other.
  let inner: string[] | null = null;
  let lastTopKey = '';
  for (let i = 0; i < line.length; i++) {
    const b = line[i];
    if (b === QUOTE) {
      const end = stringEnd(line, i);
      if (end < 0) return true;
      const keys = depth === 1 ? top : depth === 2 ? inner : null;
      if (keys !== null) {
        let after = end + 1;
        while (isSpace(line[after])) after++;
        if (line[after] === COLON) {
          const key = line.toString('latin1', i + 1, end);
          if (key.includes('\\') || keys.includes(key) || keys.length >= MAX_CHECKED_KEYS) return true;
          keys.push(key);
          if (depth === 1) lastTopKey = key;
        }
      }
      i = end;
    } else if (b === 0x7b || b === 0x5b) {
      depth++;
      if (depth === 2) inner = b === 0x7b && CHECKED_OBJECTS.has(lastTopKey) ? [] : null;
    } else if (b === 0x7d || b === 0x5d) {
      if (--depth < 0) return true;
    }
  }
  return depth !== 0;
}
