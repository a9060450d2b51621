/**
 * The fields of an event that derive.ts reads, taken from its JSON bytes without building the
 * whole value: a store that must extract its columns in the client (ClickHouse 18.16 has no
 * JSONExtract) spends most of an event's CPU in JSON.parse otherwise, on request and response
 * bodies it never looks at.
 *
 * The contract: when eventFields() returns an object, that object holds exactly what JSON.parse of
 * the same bytes holds under the keys derive.ts and the stores' checks read (auditID, stage, verb,
 * level, requestURI, the timestamps, user, impersonatedUser, sourceIPs, userAgent, objectRef,
 * responseStatus, annotations), the nested objects trimmed to the keys read in them; so
 * deriveFields gives the same row for both. It returns null whenever it cannot vouch for that:
 * text that is not one JSON object (the whole text is checked against RFC 8259's grammar, bodies
 * included), nesting deeper than it follows, a key written with escapes, or a read field of an
 * unusual type. The caller then parses the text. Values with escapes are decoded by JSON.parse of
 * the value alone. Duplicate keys need no special case: the last one wins, as in JSON.parse.
 */

/** Nesting the scanner follows; deeper text is left to JSON.parse. */
const MAX_DEPTH = 256;

const QUOTE = 0x22;

/** What eventFields() returns: the read keys of the event, with JSON.parse's values. */
export type EventFields = Record<string, unknown>;

// RFC 8259: control characters must be escaped inside strings, and outside them only whitespace
// may appear; kube-apiserver writes none at all. Text with any is left to JSON.parse, so that the
// scan below needs to look only at quotes and backslashes.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL = /[\x00-\x1f]/;

/** The text being scanned (the scan works on JS strings: indexOf and slices are native there). */
let t = '';
let n = 0;
/** The first backslash at or after the last place looked (n: none left). */
let nextEscape = 0;
/** Whether the string just scanned had an escape. */
let escaped = false;

function ws(p: number): number {
  while (p < n) {
    const c = t.charCodeAt(p);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    p++;
  }
  return p;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** A string starting at the quote at p: the index past its closing quote, or -1 if not valid. */
function str(p: number): number {
  escaped = false;
  p++;
  for (;;) {
    const q = t.indexOf('"', p);
    if (q < 0) return -1;
    if (nextEscape < p) {
      nextEscape = t.indexOf('\\', p);
      if (nextEscape < 0) nextEscape = n;
    }
    if (nextEscape > q) return q + 1;
    escaped = true;
    const at = nextEscape;
    const e = t.charCodeAt(at + 1);
    if (
      e === QUOTE ||
      e === 0x5c ||
      e === 0x2f ||
      e === 0x62 ||
      e === 0x66 ||
      e === 0x6e ||
      e === 0x72 ||
      e === 0x74
    )
      p = at + 2;
    else if (
      e === 0x75 &&
      isHex(t.charCodeAt(at + 2)) &&
      isHex(t.charCodeAt(at + 3)) &&
      isHex(t.charCodeAt(at + 4)) &&
      isHex(t.charCodeAt(at + 5))
    )
      p = at + 6;
    else return -1;
  }
}

function digits(p: number): number {
  const from = p;
  while (p < n) {
    const c = t.charCodeAt(p);
    if (c < 0x30 || c > 0x39) break;
    p++;
  }
  return p === from ? -1 : p;
}

/** RFC 8259 number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
function num(p: number): number {
  if (t.charCodeAt(p) === 0x2d) p++;
  const c = t.charCodeAt(p);
  if (c === 0x30) p++;
  else if (c >= 0x31 && c <= 0x39) p = digits(p);
  else return -1;
  if (t.charCodeAt(p) === 0x2e) {
    p = digits(p + 1);
    if (p < 0) return -1;
  }
  const e = t.charCodeAt(p);
  if (e === 0x65 || e === 0x45) {
    p++;
    const sign = t.charCodeAt(p);
    if (sign === 0x2b || sign === 0x2d) p++;
    p = digits(p);
  }
  return p;
}

function word(p: number, w: string): number {
  return t.startsWith(w, p) ? p + w.length : -1;
}

/** Any value at p (after whitespace): the index past it, or -1. */
function skip(p: number, depth: number): number {
  const c = t.charCodeAt(p);
  if (c === QUOTE) return str(p);
  if (c === 0x7b) {
    if (depth >= MAX_DEPTH) return -1;
    p = ws(p + 1);
    if (t.charCodeAt(p) === 0x7d) return p + 1;
    for (;;) {
      if (t.charCodeAt(p) !== QUOTE) return -1;
      p = str(p);
      if (p < 0) return -1;
      p = ws(p);
      if (t.charCodeAt(p) !== 0x3a) return -1;
      p = skip(ws(p + 1), depth + 1);
      if (p < 0) return -1;
      p = ws(p);
      if (t.charCodeAt(p) === 0x7d) return p + 1;
      if (t.charCodeAt(p) !== 0x2c) return -1;
      p = ws(p + 1);
    }
  }
  if (c === 0x5b) {
    if (depth >= MAX_DEPTH) return -1;
    p = ws(p + 1);
    if (t.charCodeAt(p) === 0x5d) return p + 1;
    for (;;) {
      p = skip(p, depth + 1);
      if (p < 0) return -1;
      p = ws(p);
      if (t.charCodeAt(p) === 0x5d) return p + 1;
      if (t.charCodeAt(p) !== 0x2c) return -1;
      p = ws(p + 1);
    }
  }
  if (c === 0x74) return word(p, 'true');
  if (c === 0x66) return word(p, 'false');
  if (c === 0x6e) return word(p, 'null');
  return num(p);
}

/** The value of the string [from, to) (quotes excluded) that str() just scanned. */
function text(from: number, to: number): string {
  // An escape: JSON.parse of the value alone decodes it as JSON.parse of the event would.
  if (escaped) return JSON.parse(t.slice(from - 1, to + 1)) as string;
  return t.slice(from, to);
}

/** Set by the readers below: the value read, and where scanning goes on (-1: cannot vouch). */
let value: unknown;

/** A string or null at p. */
function readString(p: number): number {
  const c = t.charCodeAt(p);
  if (c === QUOTE) {
    const end = str(p);
    if (end < 0) return -1;
    value = text(p + 1, end - 1);
    return end;
  }
  if (c === 0x6e) {
    value = null;
    return word(p, 'null');
  }
  return -1;
}

/** An array of strings, or null, at p. */
function readStrings(p: number): number {
  const c = t.charCodeAt(p);
  if (c === 0x6e) {
    value = null;
    return word(p, 'null');
  }
  if (c !== 0x5b) return -1;
  const out: string[] = [];
  p = ws(p + 1);
  if (t.charCodeAt(p) === 0x5d) {
    value = out;
    return p + 1;
  }
  for (;;) {
    if (t.charCodeAt(p) !== QUOTE) return -1;
    const end = str(p);
    if (end < 0) return -1;
    out.push(text(p + 1, end - 1));
    p = ws(end);
    if (t.charCodeAt(p) === 0x5d) {
      value = out;
      return p + 1;
    }
    if (t.charCodeAt(p) !== 0x2c) return -1;
    p = ws(p + 1);
  }
}

/** A number or null at p. */
function readNumber(p: number): number {
  if (t.charCodeAt(p) === 0x6e) {
    value = null;
    return word(p, 'null');
  }
  const end = num(p);
  if (end < 0) return -1;
  value = Number(t.slice(p, end));
  return end;
}

type Reader = (p: number) => number;

/** The keys read in one kind of object, how their values are read, and the object they make. */
interface Shape {
  names: readonly string[];
  readers: readonly Reader[];
  /** Key ids by the key's length: a key is matched in place, without making a string of it. */
  byLength: readonly (readonly number[] | undefined)[];
  /** The values read, by key id (undefined: absent); reused, as objects of a shape do not nest. */
  slots: unknown[];
  /** The object of the values read: one literal, so that every one has the same layout. */
  build: (v: readonly unknown[]) => EventFields;
}

function shape(fields: readonly (readonly [string, Reader])[], build: Shape['build']): Shape {
  const byLength: number[][] = [];
  fields.forEach(([name], id) => {
    const ids = byLength[name.length] ?? [];
    ids.push(id);
    byLength[name.length] = ids;
  });
  return {
    names: fields.map(([name]) => name),
    readers: fields.map(([, r]) => r),
    byLength,
    slots: fields.map(() => undefined),
    build,
  };
}

/** The id of the key at [from, to) in `s`, or -1 when it is not read. */
function keyId(s: Shape, from: number, to: number): number {
  const ids = s.byLength[to - from];
  if (ids === undefined) return -1;
  for (const id of ids) if (t.startsWith(s.names[id] as string, from)) return id;
  return -1;
}

/** Annotations: every key kept, every value a string. */
function readAnnotations(p: number): number {
  if (t.charCodeAt(p) === 0x6e) {
    value = null;
    return word(p, 'null');
  }
  if (t.charCodeAt(p) !== 0x7b) return -1;
  const out: Record<string, string> = {};
  p = ws(p + 1);
  if (t.charCodeAt(p) === 0x7d) {
    value = out;
    return p + 1;
  }
  for (;;) {
    if (t.charCodeAt(p) !== QUOTE) return -1;
    const keyEnd = str(p);
    // An escaped key is left to JSON.parse, and so is `__proto__`, which an assignment would not
    // make an own property.
    if (keyEnd < 0 || escaped) return -1;
    const key = t.slice(p + 1, keyEnd - 1);
    if (key === '__proto__') return -1;
    p = ws(keyEnd);
    if (t.charCodeAt(p) !== 0x3a) return -1;
    p = readString(ws(p + 1));
    // Values of another type (null included) are left to the reference.
    if (p < 0 || typeof value !== 'string') return -1;
    // A repeated key keeps its first place and its last value, as in JSON.parse.
    out[key] = value;
    p = ws(p);
    if (t.charCodeAt(p) === 0x7d) {
      value = out;
      return p + 1;
    }
    if (t.charCodeAt(p) !== 0x2c) return -1;
    p = ws(p + 1);
  }
}

/** An object of the given shape, or null, at p: value is the object of the keys read. */
function readObject(p: number, s: Shape, depth: number): number {
  if (t.charCodeAt(p) === 0x6e) {
    value = null;
    return word(p, 'null');
  }
  if (t.charCodeAt(p) !== 0x7b) return -1;
  const slots = s.slots;
  slots.fill(undefined);
  p = ws(p + 1);
  if (t.charCodeAt(p) !== 0x7d)
    for (;;) {
      if (t.charCodeAt(p) !== QUOTE) return -1;
      const keyEnd = str(p);
      // An escaped key may spell a read key (`\u0075ser`): left to JSON.parse.
      if (keyEnd < 0 || escaped) return -1;
      const id = keyId(s, p + 1, keyEnd - 1);
      p = ws(keyEnd);
      if (t.charCodeAt(p) !== 0x3a) return -1;
      p = ws(p + 1);
      if (id < 0) p = skip(p, depth + 1);
      else {
        p = (s.readers[id] as Reader)(p);
        // A repeated key: the last value, as in JSON.parse.
        slots[id] = value;
      }
      if (p < 0) return -1;
      p = ws(p);
      if (t.charCodeAt(p) === 0x7d) break;
      if (t.charCodeAt(p) !== 0x2c) return -1;
      p = ws(p + 1);
    }
  value = s.build(slots);
  return p + 1;
}

const USER = shape(
  [
    ['username', readString],
    ['uid', readString],
    ['groups', readStrings],
  ],
  (v) => ({ username: v[0], uid: v[1], groups: v[2] }),
);
const OBJECT_REF = shape(
  [
    ['apiGroup', readString],
    ['apiVersion', readString],
    ['resource', readString],
    ['subresource', readString],
    ['namespace', readString],
    ['name', readString],
  ],
  (v) => ({
    apiGroup: v[0],
    apiVersion: v[1],
    resource: v[2],
    subresource: v[3],
    namespace: v[4],
    name: v[5],
  }),
);
const STATUS = shape(
  [
    ['code', readNumber],
    ['message', readString],
  ],
  (v) => ({ code: v[0], message: v[1] }),
);
const EVENT = shape(
  [
    ['level', readString],
    ['auditID', readString],
    ['stage', readString],
    ['requestURI', readString],
    ['verb', readString],
    ['user', (p) => readObject(p, USER, 1)],
    ['impersonatedUser', (p) => readObject(p, USER, 1)],
    ['sourceIPs', readStrings],
    ['userAgent', readString],
    ['objectRef', (p) => readObject(p, OBJECT_REF, 1)],
    ['responseStatus', (p) => readObject(p, STATUS, 1)],
    ['requestReceivedTimestamp', readString],
    ['stageTimestamp', readString],
    // v1beta1's name for the receive time (derive.ts reads it when requestReceivedTimestamp is absent).
    ['timestamp', readString],
    ['annotations', readAnnotations],
  ],
  (v) => ({
    level: v[0],
    auditID: v[1],
    stage: v[2],
    requestURI: v[3],
    verb: v[4],
    user: v[5],
    impersonatedUser: v[6],
    sourceIPs: v[7],
    userAgent: v[8],
    objectRef: v[9],
    responseStatus: v[10],
    requestReceivedTimestamp: v[11],
    stageTimestamp: v[12],
    timestamp: v[13],
    annotations: v[14],
  }),
);

/** The read fields of the event whose JSON text is `json`, or null: see above. */
export function eventFields(json: string): EventFields | null {
  if (CONTROL.test(json)) return null;
  t = json;
  n = json.length;
  nextEscape = -1;
  try {
    let p = readObject(ws(0), EVENT, 0);
    if (p < 0 || value === null) return null;
    const out = value as EventFields;
    p = ws(p);
    return p === n ? out : null;
  } finally {
    t = '';
    value = undefined;
  }
}
