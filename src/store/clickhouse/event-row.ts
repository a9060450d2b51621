/**
 * One event -> one JSONEachRow line of the physical table. ClickHouse 18.16 has no JSONExtract, so
 * every column is taken out here, in Node, by model/derive.ts: the reference definition of the
 * derived fields, which the DuckDB backend computes in SQL and is tested against.
 */
import { isUtf8 } from 'node:buffer';
import { deriveFields, parseTimestampMicros } from '../../model/derive.js';
import type { AuditEvent } from '../../model/event.js';
import { rejectReason } from '../memory/memory-store.js';

/** DateTime's range (unsigned 32-bit seconds); an event outside it cannot be stored. */
const MAX_DATETIME_S = 4_294_967_295;

export interface EncodedEvent {
  auditId: string;
  stage: string;
  /** Seconds since the epoch of `ts` (requestReceivedTimestamp), for the duplicate check's range. */
  tsSeconds: number;
  /** The row, as one line of JSONEachRow (with its newline). */
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

// A field of the wrong type in a hand-made event must not fail the whole batch's insert.
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** `2026-01-15 09:00:10`: DateTime's text form, read in the column's time zone (UTC). */
function dateTimeText(seconds: number): string {
  return new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

/** The row of an event, or why it is not stored (the same reasons as the other backends). */
export function encodeEvent(
  buf: Buffer,
  cluster: string,
  ingestedUs: number,
): EncodedEvent | { reject: string } {
  if (!isUtf8(buf)) return { reject: 'not UTF-8 text' };
  const text = buf.toString('utf8');
  const reason = rejectReason(text);
  if (reason !== undefined) return { reject: reason };
  const e = JSON.parse(text) as AuditEvent;
  const d = deriveFields(e, cluster);
  const tsUs = micros(d.ts);
  if (tsUs === null)
    return { reject: 'not an audit Event: field requestReceivedTimestamp missing or not a timestamp' };
  const tsSeconds = Math.floor(tsUs / 1e6);
  if (tsSeconds < 0 || tsSeconds > MAX_DATETIME_S)
    return { reject: 'requestReceivedTimestamp outside the range ClickHouse DateTime holds (1970-2106)' };
  const stageUs = micros(d.stage_ts) ?? tsUs;
  const breakdown = Object.keys(d.latency_breakdown).length === 0 ? '' : JSON.stringify(d.latency_breakdown);
  const row = {
    ts: dateTimeText(tsSeconds),
    ts_us: tsUs,
    stage_ts_us: stageUs,
    audit_id: d.audit_id,
    stage: d.stage,
    level: str(d.level),
    verb: str(d.verb),
    username: str(d.username),
    user_uid: str(d.user_uid),
    groups: d.groups.filter((g) => typeof g === 'string'),
    impersonated_user: str(d.impersonated_user),
    subject: str(d.subject),
    source_ip: str(d.source_ip),
    source_ips: d.source_ips.filter((g) => typeof g === 'string'),
    user_agent: str(d.user_agent),
    api_group: str(d.api_group),
    api_version: str(d.api_version),
    resource: str(d.resource),
    subresource: str(d.subresource),
    namespace: str(d.namespace),
    name: str(d.name),
    request_uri: str(d.request_uri),
    code: Number.isInteger(d.code) && Math.abs(d.code as number) < 2 ** 31 ? d.code : null,
    decision: str(d.decision),
    decision_source: str(d.decision_source),
    reason: str(d.reason),
    // As DuckDB's view: no latency when the event has no stage time of its own, or the same one.
    latency_us: stageUs === tsUs ? null : stageUs - tsUs,
    long_running: d.long_running ? 1 : 0,
    latency_breakdown: breakdown,
    truncated: d.truncated ? 1 : 0,
    cluster,
    ingested_us: ingestedUs,
    raw: text,
  };
  return { auditId: d.audit_id, stage: d.stage, tsSeconds, line: `${JSON.stringify(row)}\n` };
}
