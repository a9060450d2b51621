import { randomBytes } from 'node:crypto';

/** A JSON object (not null, not an array), for walking parsed JSON without `any`. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The one nesting limit for JSON everywhere kaudit walks it (framing, normalising, redaction,
 * derivation, the webhook). Go's encoding/json, which kube-apiserver decodes with, stops at 10000;
 * no Kubernetes object comes near 1000 (a CRD schema is a few dozen levels), while 1000 keeps every
 * recursive walk (JSON.stringify among them) far from the stack's end. An event nested deeper is
 * stored without its bodies and its record is kept in the dead letter (see prepare.ts).
 */
export const MAX_JSON_DEPTH = 1000;

/** True when a parsed value nests objects/arrays more than `max` deep. Iterative: safe at any depth. */
export function jsonDepthExceeds(value: unknown, max: number = MAX_JSON_DEPTH): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const stack: { v: object; d: number }[] = [{ v: value, d: 1 }];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    if (top.d > max) return true;
    const children = Array.isArray(top.v) ? top.v : Object.values(top.v);
    for (const c of children) if (typeof c === 'object' && c !== null) stack.push({ v: c, d: top.d + 1 });
  }
  return false;
}

/**
 * True when JSON text nests more than `max` deep; brackets inside strings do not count. A value
 * `max` deep needs `max` openers and as many closers, so shorter text is answered without a scan.
 */
export function bytesDepthExceeds(text: Buffer, max: number = MAX_JSON_DEPTH): boolean {
  if (text.length <= 2 * max) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const b = text[i];
    if (b === 0x22) {
      // Strings are most of an event's bytes: skip to the closing quote natively.
      let end = i;
      for (;;) {
        end = text.indexOf(0x22, end + 1);
        if (end < 0) return false;
        let backslashes = 0;
        while (text[end - 1 - backslashes] === 0x5c) backslashes++;
        if (backslashes % 2 === 0) break;
      }
      i = end;
    } else if (b === 0x7b || b === 0x5b) {
      if (++depth > max) return true;
    } else if (b === 0x7d || b === 0x5d) depth--;
  }
  return false;
}

/*
 * Numbers a double would change. JSON.parse reads every number as a double: `1e400` becomes
 * Infinity (written back as `null`), `99999999999999999999` and 2^53+1 are rounded, `1.0` loses its
 * fraction. kaudit stores events as they came, so where it parses an event to rewrite it (redaction,
 * normalising, bodies stripped for size) such a number is carried through as a marked string and
 * written back as its original text. Fields the model reads as numbers (responseStatus.code) find a
 * string there and treat it as absent. The marker holds a per-process random part, so event content
 * cannot forge one.
 */
const NUMBER_MARK = `\u0000kaudit-number-${randomBytes(8).toString('hex')}:`;
const NUMBER_MARK_JSON = JSON.stringify(NUMBER_MARK).slice(0, -1);
const MARKED_NUMBER = new RegExp(`${NUMBER_MARK_JSON.replaceAll('\\', '\\\\')}([-+.0-9eE]+)"`, 'g');
// A number token that may not survive a double: a fraction, an exponent, 16 or more digits, or -0.
// Text inside strings can match too; the scan below then finds nothing to keep.
const MAYBE_CHANGED_NUMBER = /[:,[]\s*(?:-0|-?\d+[.eE]|-?\d{16})/;

function isNumberByte(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45;
}

/** JSON.parse, keeping number tokens a double would change as marked strings (see above). */
export function parseJsonKeepingNumbers(text: string): unknown {
  if (!MAYBE_CHANGED_NUMBER.test(text)) return JSON.parse(text);
  let out = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let end = i;
      for (;;) {
        end = text.indexOf('"', end + 1);
        if (end < 0) return JSON.parse(text);
        let backslashes = 0;
        while (text.charCodeAt(end - 1 - backslashes) === 0x5c) backslashes++;
        if (backslashes % 2 === 0) break;
      }
      i = end;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let end = i + 1;
      while (end < text.length && isNumberByte(text.charCodeAt(end))) end++;
      const token = text.slice(i, end);
      // Not a JSON number (`1.2.3`, `--1`): left alone for JSON.parse to refuse.
      if (/^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/.test(token) && String(Number(token)) !== token) {
        out += `${text.slice(from, i)}${NUMBER_MARK_JSON}${token}"`;
        from = end;
      }
      i = end - 1;
    }
  }
  return JSON.parse(from === 0 ? text : out + text.slice(from));
}

/** JSON.stringify that writes numbers kept by parseJsonKeepingNumbers back as their original text. */
export function stringifyKeepingNumbers(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.includes(NUMBER_MARK_JSON) ? text.replace(MARKED_NUMBER, '$1') : text;
}
