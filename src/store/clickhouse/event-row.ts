/**
 * One event -> one JSONEachRow line of the physical table. ClickHouse 18.16 has no JSONExtract, so
 * every column is taken out here, in Node, by model/derive.ts: the reference definition of the
 * derived fields, which the embedded backend computes in SQL and is tested against.
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { deriveFields, parseTimestampMicros } from '../../model/derive.js';
import type { AuditEvent } from '../../model/event.js';
import { STAGES } from '../../model/event.js';
import { TABLE_COLUMNS } from './schema.js';
import { sqlString } from './sql-literal.js';

/** DateTime's range (unsigned 32-bit seconds); an event outside it cannot be stored. */
const MAX_DATETIME_S = 4_294_967_295;

export interface EncodedEvent {
  auditId: string;
  stage: string;
  /** Seconds since the epoch of `ts` (requestReceivedTimestamp), for the duplicate check's range. */
  tsSeconds: number;
  tsUs: number;
  /** The row, as one line of TabSeparated in TABLE_COLUMNS order (with its newline). */
  line: string;
}

function micros(text: string | undefined | null): number | null {
  if (typeof text !== 'string') return null;
  const us = parseTimestampMicros(text);
  if (us !== null) return us;
  // Forms Date.parse takes but RFC3339 does not (the event was accepted by the same rule).
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms * 1000;
}

let lastSecond = Number.NaN;
let lastSecondText = '';
/** `2026-01-15 09:00:10`: DateTime's text form, read in the column's time zone (UTC). */
function dateTimeText(seconds: number): string {
  // Events come in time order: most share the second of the one before.
  if (seconds !== lastSecond) {
    lastSecond = seconds;
    lastSecondText = new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ');
  }
  return lastSecondText;
}

/** One parse: memory-store.ts rejectReason's rules on the parsed value (it parses the text itself). */
function parseEvent(text: string): AuditEvent | { reject: string } {
  let e: unknown;
  try {
    e = JSON.parse(text);
  } catch {
    return { reject: 'not JSON' };
  }
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return { reject: 'not JSON' };
  const ev = e as Partial<AuditEvent> & { timestamp?: unknown };
  if (typeof ev.auditID !== 'string' || ev.auditID === '')
    return { reject: 'not an audit Event: missing field auditID' };
  if (typeof ev.stage !== 'string' || !(STAGES as readonly string[]).includes(ev.stage))
    return { reject: 'not an audit Event: missing or unknown stage' };
  if (typeof ev.verb !== 'string') return { reject: 'not an audit Event: missing field verb' };
  const received = ev.requestReceivedTimestamp ?? ev.timestamp;
  if (typeof received !== 'string' || Number.isNaN(Date.parse(received)))
    return { reject: 'not an audit Event: field requestReceivedTimestamp missing or not a timestamp' };
  return ev as AuditEvent;
}

// TabSeparated (ClickHouse docs, "Formats: TabSeparated"): a value's backslash, tab and line breaks
// are escaped with a backslash, NULL is \N, an array is written as in SQL ('quoted', escaped).
// Cheaper than JSONEachRow on both sides: the event's JSON text, most of a row, keeps its quotes.
const TSV_SPECIAL = /[\\\t\n\r\0]/;
const TSV_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
  '\0': '\\0',
};
function tsvText(v: string): string {
  if (!TSV_SPECIAL.test(v)) return v;
  // Mostly the backslashes of JSON escapes in the event's text: a plain replaceAll is the fast path.
  const out = v.replaceAll('\\', '\\\\');
  return /[\t\n\r\0]/.test(out) ? out.replace(/[\t\n\r\0]/g, (c) => TSV_ESCAPES[c] ?? c) : out;
}
const tsv = (v: unknown): string => (typeof v === 'string' ? tsvText(v) : '\\N');
const tsvArray = (v: readonly unknown[]): string =>
  `[${v
    .filter((x): x is string => typeof x === 'string')
    .map(sqlString)
    .join(',')}]`;

/** The table's columns in the order encodeEvent() writes them. */
export const ROW_COLUMNS = TABLE_COLUMNS.map(([c]) => c);

/** The row of an event, or why it is not stored (the same reasons as the other backends). */
export function encodeEvent(
  buf: Buffer,
  cluster: string,
  ingestedUs: number,
): EncodedEvent | { reject: string } {
  if (!isUtf8(buf)) return { reject: 'not UTF-8 text' };
  const text = buf.toString('utf8');
  const e = parseEvent(text);
  if ('reject' in e) return e;
  const d = deriveFields(e, cluster);
  const tsUs = micros(d.ts);
  if (tsUs === null)
    return { reject: 'not an audit Event: field requestReceivedTimestamp missing or not a timestamp' };
  const tsSeconds = Math.floor(tsUs / 1e6);
  if (tsSeconds < 0 || tsSeconds > MAX_DATETIME_S)
    return { reject: 'requestReceivedTimestamp outside the range ClickHouse DateTime holds (1970-2106)' };
  const stageUs = micros(d.stage_ts) ?? tsUs;
  const breakdown = Object.keys(d.latency_breakdown).length === 0 ? '' : JSON.stringify(d.latency_breakdown);
  const code = Number.isInteger(d.code) && Math.abs(d.code as number) < 2 ** 31 ? String(d.code) : '\\N';
  // In TABLE_COLUMNS order.
  const fields = [
    dateTimeText(tsSeconds),
    String(tsUs),
    String(stageUs),
    tsvText(d.audit_id),
    tsvText(d.stage),
    tsv(d.level),
    tsv(d.verb),
    tsv(d.username),
    tsv(d.user_uid),
    tsvArray(d.groups),
    tsv(d.impersonated_user),
    tsv(d.subject),
    tsv(d.source_ip),
    tsvArray(d.source_ips),
    tsv(d.user_agent),
    tsv(d.api_group),
    tsv(d.api_version),
    tsv(d.resource),
    tsv(d.subresource),
    tsv(d.namespace),
    tsv(d.name),
    tsv(d.request_uri),
    code,
    tsv(d.decision),
    tsv(d.decision_source),
    tsv(d.reason),
    // As the embedded store's view: no latency when the event has no stage time of its own, or the same one.
    stageUs === tsUs ? '\\N' : String(stageUs - tsUs),
    d.long_running ? '1' : '0',
    tsvText(breakdown),
    d.truncated ? '1' : '0',
    tsvText(cluster),
    String(ingestedUs),
    tsvText(text),
  ];
  return { auditId: d.audit_id, stage: d.stage, tsSeconds, tsUs, line: `${fields.join('\t')}\n` };
}

/** A batch encoded: what a commit sends, and what it reports without sending. */
export interface EncodedBatch {
  /** The first copy of each (auditID, stage), by batch index. */
  rows: { index: number; event: EncodedEvent }[];
  rejected: { index: number; reason: string; data: Buffer }[];
  /** Repeats within the batch of an event it holds. */
  repeats: number[];
  /** Derived from the batch's keys: the same on every attempt to insert it. */
  queryId: string;
}

export function encodeBatch(events: readonly Buffer[], cluster: string, ingestedUs: number): EncodedBatch {
  const seen = new Set<string>();
  const out: EncodedBatch = { rows: [], rejected: [], repeats: [], queryId: '' };
  const id = createHash('sha256').update(cluster).update('\0');
  events.forEach((buf, index) => {
    const e = encodeEvent(buf, cluster, ingestedUs);
    if ('reject' in e) {
      out.rejected.push({ index, reason: e.reject, data: Buffer.from(buf) });
      return;
    }
    const key = `${e.auditId}\0${e.stage}`;
    if (seen.has(key)) {
      out.repeats.push(index);
      return;
    }
    seen.add(key);
    id.update(key).update('\0');
    out.rows.push({ index, event: e });
  });
  out.queryId = `kaudit-insert-${id.digest('hex').slice(0, 40)}`;
  return out;
}
