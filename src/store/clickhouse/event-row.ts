/**
 * One event -> one RowBinary row of the physical table. ClickHouse 18.16 has no JSONExtract, so
 * every column is taken out here, in Node, by model/derive.ts: the reference definition of the
 * derived fields, which the embedded store computes in SQL and is tested against.
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { deriveFields, parseTimestampMicros } from '../../model/derive.js';
import type { AuditEvent } from '../../model/event.js';
import { STAGES } from '../../model/event.js';
import { RowBinaryWriter } from './row-binary.js';
import { TABLE_COLUMNS } from './schema.js';

/** DateTime's range (unsigned 32-bit seconds); an event outside it cannot be stored. */
const MAX_DATETIME_S = 4_294_967_295;

/** What the store needs of a row besides its bytes: its key, and its time for the duplicate check. */
export interface EncodedKey {
  auditId: string;
  stage: string;
  tsUs: number;
}

let lastSecondText = '';
let lastSecondMs = 0;

/**
 * parseTimestampMicros for kube-apiserver's own form (`2026-01-15T09:00:00.012514Z`) without a
 * regular expression: events come in time order, so most share their second with the one before,
 * whose text was checked by the full parse. Anything else returns undefined (not handled here).
 */
function fastMicros(text: string): number | undefined {
  const n = text.length;
  if (n < 22 || n > 40 || text.charCodeAt(19) !== 0x2e || text.charCodeAt(n - 1) !== 0x5a) return undefined;
  if (!text.startsWith(lastSecondText) || lastSecondText === '') return undefined;
  let frac = 0;
  let digits = 0;
  for (let i = 20; i < n - 1; i++) {
    const d = text.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return undefined;
    if (digits < 6) {
      frac = frac * 10 + d;
      digits++;
    }
  }
  for (; digits < 6; digits++) frac *= 10;
  return lastSecondMs * 1000 + frac;
}

function micros(text: string | undefined | null): number | null {
  if (typeof text !== 'string') return null;
  const fast = fastMicros(text);
  if (fast !== undefined) return fast;
  const us = parseTimestampMicros(text);
  // A UTC time with a fraction: its second is the prefix the next times are compared with.
  if (us !== null && text.length >= 22 && text.charCodeAt(19) === 0x2e && text.endsWith('Z')) {
    lastSecondText = text.slice(0, 19);
    lastSecondMs = Date.parse(`${lastSecondText}Z`);
  }
  if (us !== null) return us;
  // Forms Date.parse takes but RFC3339 does not (the event was accepted by the same rule).
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms * 1000;
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

/** The table's columns in the order encodeEvent() writes them. */
export const ROW_COLUMNS = TABLE_COLUMNS.map(([c]) => c);

/**
 * Writes the row of an event (TABLE_COLUMNS order) and returns its key, or why it is not stored
 * (the same reasons as the other backends) with nothing written.
 */
export function encodeEvent(
  out: RowBinaryWriter,
  buf: Uint8Array,
  cluster: string,
  ingestedUs: number,
): EncodedKey | { reject: string } {
  if (!isUtf8(buf)) return { reject: 'not UTF-8 text' };
  const e = parseEvent(Buffer.from(buf.buffer, buf.byteOffset, buf.length).toString('utf8'));
  if ('reject' in e) return e;
  const d = deriveFields(e, cluster);
  const tsUs = micros(d.ts);
  if (tsUs === null)
    return { reject: 'not an audit Event: field requestReceivedTimestamp missing or not a timestamp' };
  const tsSeconds = Math.floor(tsUs / 1e6);
  if (tsSeconds < 0 || tsSeconds > MAX_DATETIME_S)
    return { reject: 'requestReceivedTimestamp outside the range ClickHouse DateTime holds (1970-2106)' };
  const stageUs = micros(d.stage_ts) ?? tsUs;
  const code = Number.isInteger(d.code) && Math.abs(d.code as number) < 2 ** 31 ? (d.code as number) : null;
  out.uint32(tsSeconds);
  out.int64(tsUs);
  out.nullableInt64(stageUs);
  out.string(d.audit_id);
  out.string(d.stage);
  out.nullableString(d.level);
  out.nullableString(d.verb);
  out.nullableString(d.username);
  out.nullableString(d.user_uid);
  out.stringArray(d.groups);
  out.nullableString(d.impersonated_user);
  out.nullableString(d.subject);
  out.nullableString(d.source_ip);
  out.stringArray(d.source_ips);
  out.nullableString(d.user_agent);
  out.nullableString(d.api_group);
  out.nullableString(d.api_version);
  out.nullableString(d.resource);
  out.nullableString(d.subresource);
  out.nullableString(d.namespace);
  out.nullableString(d.name);
  out.nullableString(d.request_uri);
  out.nullableInt32(code);
  out.nullableString(d.decision);
  out.nullableString(d.decision_source);
  out.nullableString(d.reason);
  // As the embedded store's view: no latency when the event has no stage time of its own, or the same one.
  out.nullableInt64(stageUs === tsUs ? null : stageUs - tsUs);
  out.uint8(d.long_running ? 1 : 0);
  out.string(Object.keys(d.latency_breakdown).length === 0 ? '' : JSON.stringify(d.latency_breakdown));
  out.uint8(d.truncated ? 1 : 0);
  out.string(cluster);
  out.int64(ingestedUs);
  out.bytes(buf);
  return { auditId: d.audit_id, stage: d.stage, tsUs };
}

/** A batch encoded: what a commit sends, and what it reports without sending. */
export interface EncodedBatch {
  /** RowBinary rows of the first copy of each (auditID, stage), in batch order. */
  data: Uint8Array;
  /** Row i is data[starts[i], starts[i + 1]) and holds the event at batch index indexes[i]. */
  starts: Float64Array;
  indexes: Int32Array;
  auditIds: string[];
  stages: string[];
  tsUs: Float64Array;
  rejected: { index: number; reason: string; data: Buffer }[];
  /** Repeats within the batch of an event it holds. */
  repeats: number[];
  /** Derived from the batch's keys: the same on every attempt to insert it. */
  queryId: string;
}

/**
 * `rows`, when given, is a buffer of an earlier batch to write the rows into (the store recycles
 * them: writing into fresh memory cost ~1.5 us per event in page faults); it is used when it holds
 * the events' text and 512 bytes a row, else a new one is allocated.
 */
export function encodeBatch(
  events: readonly Uint8Array[],
  cluster: string,
  ingestedUs: number,
  rows?: ArrayBuffer,
): EncodedBatch {
  let bytes = 0;
  for (const e of events) bytes += e.length;
  // The rows' own allocation (not a pooled slab): a worker hands its buffer over without a copy.
  // A row is its event's text and the columns taken from it (well under the text again): room for
  // both, so that it seldom grows; pages never written are never resident.
  const out = new RowBinaryWriter(
    rows !== undefined && rows.byteLength >= bytes + events.length * 512
      ? Buffer.from(rows)
      : Math.max(1 << 16, 2 * bytes + events.length * 512),
  );
  const seen = new Set<string>();
  const starts: number[] = [];
  const indexes: number[] = [];
  const tsUs: number[] = [];
  const batch: EncodedBatch = {
    data: new Uint8Array(0),
    starts: new Float64Array(0),
    indexes: new Int32Array(0),
    auditIds: [],
    stages: [],
    tsUs: new Float64Array(0),
    rejected: [],
    repeats: [],
    queryId: '',
  };
  // The query id hashes the cluster and the keys, each followed by NUL: hashed once, at the end.
  const hashed: string[] = [cluster, '\0'];
  events.forEach((buf, index) => {
    const at = out.pos;
    const e = encodeEvent(out, buf, cluster, ingestedUs);
    if ('reject' in e) {
      batch.rejected.push({ index, reason: e.reject, data: Buffer.from(buf) });
      return;
    }
    const key = `${e.auditId}\0${e.stage}`;
    if (seen.has(key)) {
      out.pos = at;
      batch.repeats.push(index);
      return;
    }
    seen.add(key);
    hashed.push(key, '\0');
    starts.push(at);
    indexes.push(index);
    batch.auditIds.push(e.auditId);
    batch.stages.push(e.stage);
    tsUs.push(e.tsUs);
  });
  starts.push(out.pos);
  batch.data = out.view();
  batch.starts = Float64Array.from(starts);
  batch.indexes = Int32Array.from(indexes);
  batch.tsUs = Float64Array.from(tsUs);
  batch.queryId = `kaudit-insert-${createHash('sha256').update(hashed.join('')).digest('hex').slice(0, 40)}`;
  return batch;
}
