/**
 * From one line of audit-log bytes to events ready for a Store: normalised to v1, redacted,
 * truncated when too long. The common case (a compact v1 Event from kube-apiserver with nothing
 * to redact) passes through untouched without a JSON.parse: the store validates and extracts it in
 * bulk, which is what makes ingest fast. Everything else is parsed here.
 */
import type { AuditEvent } from './event.js';
import { TRUNCATED_ANNOTATION } from './event.js';
import { normalizeValue } from './normalize.js';
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
}

export const DEFAULT_PREPARE_OPTIONS: PrepareOptions = {
  maxEventBytes: DEFAULT_MAX_EVENT_BYTES,
  redact: true,
};

// kube-apiserver's JSON serializer writes TypeMeta first, so a v1 event line starts with this.
const V1_PREFIX = Buffer.from('{"kind":"Event","apiVersion":"audit.k8s.io/v1",');
// `"requestObject"` / `"responseObject"`, however the colon is spaced.
const BODY_MARK = Buffer.from('Object"');
const REQUEST_URI = Buffer.from('"requestURI":"');
// Whole JSON string tokens that mean a body redact.ts must see: the resources and kinds it
// handles. Whole tokens (quotes included) keep Pod bodies, whose volumes say "secret" and
// "token", on the fast path; spacing around colons does not matter.
const SENSITIVE_TOKENS = [
  '"secrets"',
  '"Secret"',
  '"SecretList"',
  '"tokenreviews"',
  '"TokenReview"',
  '"TokenRequest"',
].map((s) => Buffer.from(s));
const SERVICEACCOUNTS = Buffer.from('"serviceaccounts"');
const TOKEN = Buffer.from('"token"');
const URI_SENSITIVE = /token|secret|passw|key|sig|code=/i;

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

/** True when the line must be parsed in JS: not plain compact v1, or something to redact. */
function needsParse(line: Buffer, opts: PrepareOptions): boolean {
  if (line.length > opts.maxEventBytes) return true;
  if (
    line.length < V1_PREFIX.length ||
    line.compare(V1_PREFIX, 0, V1_PREFIX.length, 0, V1_PREFIX.length) !== 0
  ) {
    return true;
  }
  if (line[line.length - 1] !== 0x7d) return true;
  if (!opts.redact) return false;
  if (line.indexOf(BODY_MARK) >= 0) {
    for (const mark of SENSITIVE_TOKENS) if (line.indexOf(mark) >= 0) return true;
    if (line.indexOf(SERVICEACCOUNTS) >= 0 && line.indexOf(TOKEN) >= 0) return true;
  }
  const u = line.indexOf(REQUEST_URI);
  if (u >= 0) {
    const start = u + REQUEST_URI.length;
    const end = line.indexOf(0x22, start);
    const q = line.indexOf(0x3f, start);
    if (q >= 0 && q < end && URI_SENSITIVE.test(line.toString('latin1', q, end))) return true;
  }
  return false;
}

/** Drops the bodies, as kube-apiserver's truncate backend does, and marks the event. */
export function truncateEvent(event: AuditEvent): void {
  delete event.requestObject;
  delete event.responseObject;
  event.annotations = { ...(event.annotations ?? {}), [TRUNCATED_ANNOTATION]: 'true' };
}

/** Parsed JSON (a webhook body, a whole document) -> prepared events. */
export function prepareValue(value: unknown, opts: PrepareOptions = DEFAULT_PREPARE_OPTIONS): PreparedLine {
  const n = normalizeValue(value);
  if (!n.ok) return { events: [], truncated: 0, malformed: n.reason };
  const events: Buffer[] = [];
  let truncated = 0;
  for (const event of n.events) {
    if (opts.redact) redactEvent(event);
    let buf = Buffer.from(JSON.stringify(event));
    if (buf.length > opts.maxEventBytes) {
      truncateEvent(event);
      buf = Buffer.from(JSON.stringify(event));
      truncated++;
    }
    events.push(buf);
  }
  return { events, truncated };
}

/** One line of a JSON-lines audit log. Blank lines give no events and are not malformed. */
export function prepareLine(raw: Buffer, opts: PrepareOptions = DEFAULT_PREPARE_OPTIONS): PreparedLine {
  const line = trimLine(raw);
  if (line.length === 0) return { events: [], truncated: 0 };
  if (!needsParse(line, opts)) return { events: [line], truncated: 0 };
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch (err) {
    const what = line.length > opts.maxEventBytes ? ` (line of ${line.length} bytes)` : '';
    return { events: [], truncated: 0, malformed: `not JSON${what}: ${(err as Error).message}` };
  }
  return prepareValue(value, opts);
}
