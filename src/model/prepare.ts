/**
 * From one line of audit-log bytes to events ready for a Store: normalised to v1, redacted,
 * truncated when too long. The common case (a compact v1 Event from kube-apiserver with nothing
 * to redact) passes through untouched without a JSON.parse: the store validates and extracts it in
 * bulk, which is what makes ingest fast. Everything else is parsed here.
 */

import { bytesAt, newApiserverHead, readApiserverHead, V1_PREFIX } from './apiserver-line.js';
import { hasDuplicateKey } from './duplicate-key.js';
import type { AuditEvent } from './event.js';
import { TRUNCATED_ANNOTATION } from './event.js';
import {
  bytesDepthExceeds,
  jsonDepthExceeds,
  MAX_JSON_DEPTH,
  parseJsonKeepingNumbers,
  stringifyKeepingNumbers,
} from './json.js';
import { normalizeBatch, problemText } from './normalize.js';
import { redactEvent } from './redact.js';

export const DEFAULT_MAX_EVENT_BYTES = 4 * 1024 * 1024;

export interface PrepareOptions {
  /** Longer events are kept with their bodies stripped, as kube-apiserver's truncating backend does. */
  maxEventBytes: number;
  /** Replace secret values (on by default; see redact.ts). */
  redact: boolean;
}

export interface PreparedLine {
  /** audit.k8s.io/v1 Event JSON, one per event. */
  events: Buffer[];
  /** How many of `events` had their bodies stripped for size. */
  truncated: number;
  /** Set when the line is not an audit event; `events` is then empty. */
  malformed?: string;
  /**
   * Records to keep aside although the value as a whole was read: the bad items of a list (each
   * costs only itself), and events nested deeper than MAX_JSON_DEPTH (stored without their bodies).
   */
  rejected?: RejectedItem[];
}

export interface RejectedItem {
  /** Names the item (`EventList item 3: ...`) and what is wrong with it. */
  reason: string;
  /** The item's JSON (its head: see recordBytes). */
  data: Buffer;
}

/** Kept of a rejected item's JSON; the dead letter keeps no more than this either. */
const REJECTED_MAX_BYTES = 64 * 1024;

export const DEFAULT_PREPARE_OPTIONS: PrepareOptions = {
  maxEventBytes: DEFAULT_MAX_EVENT_BYTES,
  redact: true,
};

// `"requestObject"` / `"responseObject"`, however the colon is spaced.
const BODY_MARK = Buffer.from('Object"');
const REQUEST_URI = Buffer.from('"requestURI":"');
// What makes redact.ts act (see bodyKind there): objectRef.resource secrets, tokenreviews or
// serviceaccounts/token, or a body whose kind is Secret, SecretList, TokenReview or TokenRequest.
// On this path the line is kube-apiserver's own output, whose objectRef comes before the bodies,
// so resource names are looked for in the head only. Kinds are looked for everywhere, by a stem
// with a rare first letter (searches with a common first letter are several times slower), then
// checked as whole JSON strings: Pod bodies, whose volumes say "secret" and "token", stay fast.
const RESOURCE_TOKENS = ['"secrets"', '"tokenreviews"', '"serviceaccounts"'].map((s) => Buffer.from(s));
const KIND_STEMS: { stem: Buffer; kinds: Buffer[] }[] = [
  { stem: Buffer.from('Secret'), kinds: ['"Secret"', '"SecretList"'].map((s) => Buffer.from(s)) },
  { stem: Buffer.from('Token'), kinds: ['"TokenReview"', '"TokenRequest"'].map((s) => Buffer.from(s)) },
];
const URI_SENSITIVE = /token|secret|passw|key|sig|code=/i;

const head = newApiserverHead();
const QUESTION = 0x3f;
const QUOTE = 0x22;

/** A whole `"Kind"` string for one of the kinds redaction handles, anywhere in the line. */
function hasSensitiveKind(line: Buffer): boolean {
  for (const { stem, kinds } of KIND_STEMS) {
    for (let h = line.indexOf(stem); h >= 0; h = line.indexOf(stem, h + stem.length)) {
      // The stem starts one byte into each kind string, after its opening quote.
      for (const k of kinds) if (bytesAt(line, h - 1, k)) return true;
    }
  }
  return false;
}

function isSpace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a;
}

/** Trims ASCII white space (and a trailing CR) without copying. */
export function trimLine(line: Buffer): Buffer {
  let s = 0;
  let e = line.length;
  while (s < e && isSpace(line[s])) s++;
  while (e > s && isSpace(line[e - 1])) e--;
  return s === 0 && e === line.length ? line : line.subarray(s, e);
}

/** True when the requestURI's query string names a credential. */
function uriNeedsRedaction(line: Buffer, uriStart: number): boolean {
  let start = uriStart;
  if (start < 0) {
    const u = line.indexOf(REQUEST_URI);
    if (u < 0) return false;
    start = u + REQUEST_URI.length;
  }
  // Most URIs have no query string: look for `?` before the closing quote without a native call.
  let q = start;
  while (q < line.length && line[q] !== QUESTION && line[q] !== QUOTE) q++;
  if (line[q] !== QUESTION) return false;
  const end = line.indexOf(QUOTE, q);
  return end > q && URI_SENSITIVE.test(line.toString('latin1', q, end));
}

const TIMESTAMP_KEYS = ['"requestReceivedTimestamp":"', '"stageTimestamp":"'].map((k) => Buffer.from(k));

/** `YYYY-`: a four-digit year, as RFC 3339 and kube-apiserver write it. */
function fourDigitYearAt(line: Buffer, at: number): boolean {
  for (let i = at; i < at + 4; i++) {
    const b = line[i];
    if (b === undefined || b < 0x30 || b > 0x39) return false;
  }
  return line[at + 4] === 0x2d;
}

/**
 * What the fast path (the line handed on unparsed, the store decoding it in bulk) cannot vouch for
 * and the parsing path decides: nesting past MAX_JSON_DEPTH, and timestamps whose year is not four
 * digits (a year past 9999 is refused on every path, as Date and RFC 3339 refuse it). Sources
 * call it for the lines the scanner marked plain too.
 */
export function fastPathUnsafe(line: Buffer): boolean {
  if (bytesDepthExceeds(line)) return true;
  // From the end: kube-apiserver writes the timestamps after the bodies (user content), so the last
  // occurrence is the event's own, and is found without reading the bodies.
  for (const key of TIMESTAMP_KEYS) {
    const k = line.lastIndexOf(key);
    if (k >= 0 && !fourDigitYearAt(line, k + key.length)) return true;
  }
  return false;
}

/** True when the line must be parsed in JS: not plain compact v1, or something to redact. */
function needsParse(line: Buffer, opts: PrepareOptions): boolean {
  if (line.length > opts.maxEventBytes) return true;
  if (fastPathUnsafe(line)) return true;
  if (line[line.length - 1] !== 0x7d) return true;
  let uriStart = -1;
  if (readApiserverHead(line, head)) uriStart = head.uriStart;
  else if (!bytesAt(line, 0, V1_PREFIX)) return true;
  // Last, as it reads the whole line: a duplicate key the store would read the first of.
  if (!opts.redact) return hasDuplicateKey(line);
  const bodyAt = line.indexOf(BODY_MARK);
  if (bodyAt >= 0) {
    const headBytes = line.subarray(0, bodyAt);
    for (const t of RESOURCE_TOKENS) if (headBytes.indexOf(t) >= 0) return true;
    if (hasSensitiveKind(line)) return true;
  }
  return uriNeedsRedaction(line, uriStart) || hasDuplicateKey(line);
}

/** Drops the bodies, as kube-apiserver's truncate backend does, and marks the event. */
export function truncateEvent(event: AuditEvent): void {
  delete event.requestObject;
  delete event.responseObject;
  event.annotations = { ...(event.annotations ?? {}), [TRUNCATED_ANNOTATION]: 'true' };
}

/** A value's JSON for the dead letter, cut to its head; a value too deep to serialise is named only. */
function recordBytes(value: unknown): Buffer {
  if (jsonDepthExceeds(value)) return Buffer.from(`(not kept: nested deeper than ${MAX_JSON_DEPTH} levels)`);
  const text = stringifyKeepingNumbers(value);
  return Buffer.from(text.length > REJECTED_MAX_BYTES ? text.slice(0, REJECTED_MAX_BYTES) : text);
}

/**
 * Parsed JSON (a webhook body, a whole document) -> prepared events. Parse it with
 * parseJsonKeepingNumbers so that numbers a double would change are stored as written.
 */
export function prepareValue(value: unknown, opts: PrepareOptions = DEFAULT_PREPARE_OPTIONS): PreparedLine {
  return prepareParsed(value, opts, undefined);
}

/**
 * `raw`: the text the value was parsed from, when it is the whole record (a line): kept as the
 * dead-letter data of a too-deep event, and scanned so shallow text skips the per-event depth walk.
 */
function prepareParsed(value: unknown, opts: PrepareOptions, raw: Buffer | undefined): PreparedLine {
  const batch = normalizeBatch(value);
  const first = batch.problems[0];
  if (!batch.list && first !== undefined) return { events: [], truncated: 0, malformed: problemText(first) };
  const rejected: RejectedItem[] = batch.problems.map((p) => ({
    reason: problemText(p),
    data: recordBytes(p.value),
  }));
  const mayBeDeep = raw === undefined || bytesDepthExceeds(raw);
  const events: Buffer[] = [];
  let truncated = 0;
  for (const [i, event] of batch.events.entries()) {
    let bodiesDropped = false;
    if (mayBeDeep && jsonDepthExceeds(event)) {
      // Deeper than any Kubernetes object: the walks after this one (redaction, serialising,
      // derivation in the store) are not given it. Who did what is kept; the record goes aside.
      const at = batch.wheres[i] ?? '';
      const where = at === '' ? '' : `${at}: `;
      const data =
        !batch.list && raw !== undefined ? raw.subarray(0, REJECTED_MAX_BYTES) : recordBytes(event);
      truncateEvent(event);
      if (jsonDepthExceeds(event)) {
        rejected.push({ reason: `${where}nested deeper than ${MAX_JSON_DEPTH} levels`, data });
        continue;
      }
      rejected.push({
        reason: `${where}bodies nested deeper than ${MAX_JSON_DEPTH} levels; the event is stored without them`,
        data,
      });
      bodiesDropped = true;
    }
    if (opts.redact) redactEvent(event);
    let buf = Buffer.from(stringifyKeepingNumbers(event));
    if (buf.length > opts.maxEventBytes) {
      truncateEvent(event);
      buf = Buffer.from(stringifyKeepingNumbers(event));
      bodiesDropped = true;
    }
    if (bodiesDropped) truncated++;
    events.push(buf);
  }
  return rejected.length > 0 ? { events, truncated, rejected } : { events, truncated };
}

/** One line of a JSON-lines audit log. Blank lines give no events and are not malformed. */
export function prepareLine(raw: Buffer, opts: PrepareOptions = DEFAULT_PREPARE_OPTIONS): PreparedLine {
  const line = trimLine(raw);
  if (line.length === 0) return { events: [], truncated: 0 };
  if (!needsParse(line, opts)) return { events: [line], truncated: 0 };
  let value: unknown;
  try {
    value = parseJsonKeepingNumbers(line.toString('utf8'));
  } catch (err) {
    const what = line.length > opts.maxEventBytes ? ` (line of ${line.length} bytes)` : '';
    return { events: [], truncated: 0, malformed: `not JSON${what}: ${(err as Error).message}` };
  }
  return prepareParsed(value, opts, line);
}
