/**
 * (auditID, stage) and the stage's time read from an event's JSON bytes without parsing it, for
 * de-duplicating in memory and bounding the anti-join. Runs once per event on the ingest path, so
 * it searches as little of the line as it can.
 *
 * kube-apiserver writes the fields in the Go struct's order (audit/v1 types.go): auditID and stage
 * near the start, before any body; requestReceivedTimestamp and stageTimestamp after the request and
 * response bodies. The first auditID and stage are therefore the event's own, and the timestamps
 * the last ones.
 *
 * The time is stageTimestamp (the table's stage_ts), not requestReceivedTimestamp: a repeat of an
 * event carries the same one, and events arrive in nearly stage-time order, while the
 * ResponseComplete of an hour-long watch carries a receive time an hour old.
 */
import { bytesAt, newApiserverHead, plainStringEnd, readApiserverHead } from './apiserver-line.js';
import { parseTimestampMicros } from './derive.js';

const AUDIT_ID = Buffer.from('"auditID":"');
const STAGE = Buffer.from('"stage":"');
const RECEIVED = Buffer.from('"requestReceivedTimestamp":"');
const STAGE_TS_KEY = Buffer.from('"stageTimestamp":"');

export interface EventKey {
  /** auditID and stage, in one canonical string. */
  id: string;
  /**
   * The table's stage_ts in epoch milliseconds (fraction below 1 ms dropped): stageTimestamp, or
   * requestReceivedTimestamp when the event has none.
   */
  stageMs: number;
  /**
   * False only when the event surely has no `apiserver.latency.k8s.io/` annotation, so the store
   * can skip looking for one; true when it has one or its layout was not the one checked.
   */
  mayHaveLatency: boolean;
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
 * form (an offset instead of Z) goes through model/derive.ts parseTimestampMicros.
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
  // The model's parser requires a zone (Date.parse would read local time where the store's SQL reads UTC).
  const us = parseTimestampMicros(ev.toString('latin1', start, end));
  return us === null ? Number.NaN : Math.floor(us / 1000);
}

const STAGE_TS = Buffer.from('","stageTimestamp":"');
const ANNOTATIONS = Buffer.from(',"annotations":{');
const LATENCY = Buffer.from('apiserver.latency.k8s.io/');
const head = newApiserverHead();

/**
 * After requestReceivedTimestamp kube-apiserver writes stageTimestamp and then, last, the
 * annotations: when the line ends in exactly that shape, the annotations are all after it.
 * `stageTsEnd` is the closing quote of a stageTimestamp right after requestReceivedTimestamp, or -1.
 */
function mayHaveLatency(ev: Buffer, stageTsEnd: number): boolean {
  if (stageTsEnd < 0) return true;
  if (stageTsEnd === ev.length - 2 && ev[ev.length - 1] === 0x7d) return false;
  if (!bytesAt(ev, stageTsEnd + 1, ANNOTATIONS)) return true;
  return ev.indexOf(LATENCY, stageTsEnd) >= 0;
}

/** Null when a field is missing, escaped or unreadable: the event is then left to SQL. */
export function eventKey(ev: Buffer): EventKey | null {
  let id: string;
  let inOrder = false;
  if (readApiserverHead(ev, head)) {
    // One string covers `<auditID>","stage":"<stage>`, cut from the bytes: a slice of a longer
    // string would keep that string alive, and the key window holds a million keys.
    id = ev.toString('latin1', head.idStart, head.stageEnd);
    inOrder = true;
  } else {
    const a = ev.indexOf(AUDIT_ID);
    if (a < 0) return null;
    const idStart = a + AUDIT_ID.length;
    const idEnd = plainStringEnd(ev, idStart, ev.length);
    if (idEnd < 0) return null;
    const s = ev.indexOf(STAGE);
    if (s < 0) return null;
    const stageStart = s + STAGE.length;
    const stageEnd = plainStringEnd(ev, stageStart, ev.length);
    if (stageEnd < 0) return null;
    id = `${ev.toString('latin1', idStart, idEnd)}","stage":"${ev.toString('latin1', stageStart, stageEnd)}`;
  }
  const r = ev.lastIndexOf(RECEIVED);
  if (r < 0) return null;
  const tsStart = r + RECEIVED.length;
  const tsEnd = plainStringEnd(ev, tsStart, 64);
  if (tsEnd < 0) return null;
  let stageMs = parseTimestampMs(ev, tsStart, tsEnd);
  if (Number.isNaN(stageMs)) return null;
  // kube-apiserver writes stageTimestamp right after requestReceivedTimestamp.
  const adjacent = bytesAt(ev, tsEnd, STAGE_TS);
  let stageStart = -1;
  if (adjacent) stageStart = tsEnd + STAGE_TS.length;
  else {
    const at = ev.lastIndexOf(STAGE_TS_KEY);
    if (at >= 0) stageStart = at + STAGE_TS_KEY.length;
  }
  let stageEnd = -1;
  if (stageStart >= 0) {
    stageEnd = plainStringEnd(ev, stageStart, 64);
    if (stageEnd < 0) return null;
    stageMs = parseTimestampMs(ev, stageStart, stageEnd);
    if (Number.isNaN(stageMs)) return null;
  }
  return { id, stageMs, mayHaveLatency: inOrder ? mayHaveLatency(ev, adjacent ? stageEnd : -1) : true };
}
