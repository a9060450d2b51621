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
