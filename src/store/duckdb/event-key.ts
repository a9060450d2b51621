/**
 * (auditID, stage) and requestReceivedTimestamp read from an event's JSON bytes without parsing it,
 * for de-duplicating in memory and bounding the anti-join. Runs once per event on the ingest path,
 * so it searches as little of the line as it can.
 *
 * kube-apiserver writes the fields in the Go struct's order (audit/v1 types.go): auditID and stage
 * near the start, before any body; requestReceivedTimestamp after the request and response bodies.
 * The first auditID and stage are therefore the event's own, and the timestamp is the last one.
 */
const AUDIT_ID = Buffer.from('"auditID":"');
const STAGE = Buffer.from('"stage":"');
const STAGE_NEXT = Buffer.from('","stage":"');
const RECEIVED = Buffer.from('"requestReceivedTimestamp":"');
const QUOTE = 0x22;
const ZONED = /(?:Z|[+-]\d\d:?\d\d)$/i;
const BACKSLASH = 0x5c;

export interface EventKey {
  /** auditID and stage, in one canonical string. */
  id: string;
  /** requestReceivedTimestamp in epoch milliseconds (fraction below 1 ms dropped). */
  tsMs: number;
  /**
   * False only when the event surely has no `apiserver.latency.k8s.io/` annotation, so the store
   * can skip looking for one; true when it has one or its layout was not the one checked.
   */
  mayHaveLatency: boolean;
}

/** End of the JSON string starting at `start` when it has no escapes; -1 otherwise. */
function plainStringEnd(ev: Buffer, start: number): number {
  const end = ev.indexOf(QUOTE, start);
  if (end < 0) return -1;
  for (let i = start; i < end; i++) if (ev[i] === BACKSLASH) return -1;
  return end;
}

function digits(ev: Buffer, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const d = (ev[i] ?? 0) - 0x30;
    if (d < 0 || d > 9) return Number.NaN;
    v = v * 10 + d;
  }
  return v;
}

/**
 * `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, the form kube-apiserver writes, read from the bytes; any other
 * form (an offset instead of Z) goes through Date.parse.
 */
export function parseTimestampMs(ev: Buffer, start: number, end: number): number {
  if (
    end - start >= 20 &&
    ev[start + 4] === 0x2d &&
    ev[start + 7] === 0x2d &&
    ev[start + 10] === 0x54 &&
    ev[start + 13] === 0x3a &&
    ev[start + 16] === 0x3a &&
    ev[end - 1] === 0x5a
  ) {
    let ms = 0;
    let ok = true;
    if (end - start > 20) {
      if (ev[start + 19] !== 0x2e) ok = false;
      // Milliseconds from the first three fraction digits (padded); the rest is below 1 ms.
      const fracDigits = end - 1 - (start + 20);
      if (fracDigits < 1) ok = false;
      for (let i = 0; ok && i < 3; i++) {
        const d = i < fracDigits ? digits(ev, start + 20 + i, 1) : 0;
        if (Number.isNaN(d)) ok = false;
        ms = ms * 10 + d;
      }
      if (ok && fracDigits > 3 && Number.isNaN(digits(ev, start + 23, fracDigits - 3))) ok = false;
    }
    if (ok) {
      const t = Date.UTC(
        digits(ev, start, 4),
        digits(ev, start + 5, 2) - 1,
        digits(ev, start + 8, 2),
        digits(ev, start + 11, 2),
        digits(ev, start + 14, 2),
        digits(ev, start + 17, 2),
        ms,
      );
      if (!Number.isNaN(t)) return t;
    }
  }
  // Without a zone, Date.parse would read local time where DuckDB reads UTC: leave those to SQL.
  const text = ev.toString('latin1', start, end);
  return ZONED.test(text) ? Date.parse(text) : Number.NaN;
}

const HEAD_BYTES = 160;
const TAIL_BYTES = 512;
const AUDIT_ID_TEXT = '"auditID":"';
const STAGE_TEXT = '","stage":"';
const RECEIVED_TEXT = '"requestReceivedTimestamp":"';
const STAGE_TS_TEXT = '","stageTimestamp":"';
const ANNOTATIONS_TEXT = ',"annotations":{';
const LATENCY_TEXT = 'apiserver.latency.k8s.io/';

/**
 * After requestReceivedTimestamp kube-apiserver writes stageTimestamp and then, last, the
 * annotations: when the tail has exactly that shape, the annotations are all in it.
 */
function tailMayHaveLatency(tail: string, tsEnd: number): boolean {
  if (!tail.startsWith(STAGE_TS_TEXT, tsEnd)) return true;
  const stageTsEnd = tail.indexOf('"', tsEnd + STAGE_TS_TEXT.length);
  if (stageTsEnd < 0) return true;
  if (stageTsEnd === tail.length - 2 && tail.endsWith('}')) return false;
  if (!tail.startsWith(ANNOTATIONS_TEXT, stageTsEnd + 1)) return true;
  return tail.includes(LATENCY_TEXT, stageTsEnd);
}

/** Null when a field is missing, escaped or unreadable: the event is then left to SQL. */
export function eventKey(ev: Buffer): EventKey | null {
  // Native Buffer calls cost more than the bytes they look at, so the common layout is read from
  // two short strings: the head (auditID, stage) and the tail (requestReceivedTimestamp).
  if (ev.length <= HEAD_BYTES + TAIL_BYTES) return eventKeyBytes(ev);
  const head = ev.toString('latin1', 0, HEAD_BYTES);
  const a = head.indexOf(AUDIT_ID_TEXT);
  if (a < 0) return eventKeyBytes(ev);
  const idStart = a + AUDIT_ID_TEXT.length;
  const idEnd = head.indexOf('"', idStart);
  if (idEnd < 0 || !head.startsWith(STAGE_TEXT, idEnd)) return eventKeyBytes(ev);
  const stageEnd = head.indexOf('"', idEnd + STAGE_TEXT.length);
  if (stageEnd < 0) return eventKeyBytes(ev);
  if (head.lastIndexOf('\\', stageEnd) >= idStart) return eventKeyBytes(ev);
  // From the bytes, not head.slice(): a slice of a string keeps the whole head alive, and the key
  // window holds a million of these.
  const id = ev.toString('latin1', idStart, stageEnd);
  const tail = ev.toString('latin1', ev.length - TAIL_BYTES, ev.length);
  const r = tail.lastIndexOf(RECEIVED_TEXT);
  if (r < 0) return eventKeyBytes(ev);
  const tsStart = r + RECEIVED_TEXT.length;
  const tsEnd = tail.indexOf('"', tsStart);
  if (tsEnd < 0) return eventKeyBytes(ev);
  const base = ev.length - TAIL_BYTES;
  const tsMs = parseTimestampMs(ev, base + tsStart, base + tsEnd);
  return Number.isNaN(tsMs) ? null : { id, tsMs, mayHaveLatency: tailMayHaveLatency(tail, tsEnd) };
}

function eventKeyBytes(ev: Buffer): EventKey | null {
  const a = ev.indexOf(AUDIT_ID);
  if (a < 0) return null;
  const idStart = a + AUDIT_ID.length;
  const idEnd = plainStringEnd(ev, idStart);
  if (idEnd < 0) return null;
  let id: string;
  if (
    idEnd + STAGE_NEXT.length <= ev.length &&
    ev.compare(STAGE_NEXT, 0, STAGE_NEXT.length, idEnd, idEnd + STAGE_NEXT.length) === 0
  ) {
    // kube-apiserver's order: one slice covers `<auditID>","stage":"<stage>`.
    const stageEnd = plainStringEnd(ev, idEnd + STAGE_NEXT.length);
    if (stageEnd < 0) return null;
    id = ev.toString('latin1', idStart, stageEnd);
  } else {
    const s = ev.indexOf(STAGE);
    if (s < 0) return null;
    const stageStart = s + STAGE.length;
    const stageEnd = plainStringEnd(ev, stageStart);
    if (stageEnd < 0) return null;
    id = `${ev.toString('latin1', idStart, idEnd)}","stage":"${ev.toString('latin1', stageStart, stageEnd)}`;
  }
  const r = ev.lastIndexOf(RECEIVED);
  if (r < 0) return null;
  const tsStart = r + RECEIVED.length;
  const tsEnd = plainStringEnd(ev, tsStart);
  if (tsEnd < 0) return null;
  const tsMs = parseTimestampMs(ev, tsStart, tsEnd);
  return Number.isNaN(tsMs) ? null : { id, tsMs, mayHaveLatency: true };
}
