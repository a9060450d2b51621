/**
 * The head of an audit line exactly as kube-apiserver writes it, read byte by byte in JS: on the
 * ingest path each native Buffer call costs more than the few dozen bytes it would look at.
 *
 * kube-apiserver serialises audit/v1 Event fields in the Go struct's order (types.go): TypeMeta,
 * level, auditID, stage, requestURI, verb, ... So a compact line starts
 * `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"…","auditID":"…","stage":"…","requestURI":"…",`
 * Anything else (another order, spacing, escapes in these values) is reported as not matching, and
 * callers fall back to searching or parsing.
 */
export const V1_PREFIX = Buffer.from('{"kind":"Event","apiVersion":"audit.k8s.io/v1",');
const LEVEL = Buffer.from('"level":"');
const AUDIT_ID = Buffer.from('","auditID":"');
const STAGE = Buffer.from('","stage":"');
const REQUEST_URI = Buffer.from('","requestURI":"');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Byte offsets of the head's string values; the requestURI's end is left to the caller. */
export interface ApiserverHead {
  idStart: number;
  idEnd: number;
  stageStart: number;
  stageEnd: number;
  uriStart: number;
}

export function bytesAt(line: Buffer, at: number, token: Buffer): boolean {
  if (at < 0 || at + token.length > line.length) return false;
  for (let i = 0; i < token.length; i++) if (line[at + i] !== token[i]) return false;
  return true;
}

/** The closing quote of a JSON string starting at `start`; -1 past `max` bytes or at an escape. */
export function plainStringEnd(line: Buffer, start: number, max: number): number {
  const end = Math.min(line.length, start + max);
  for (let i = start; i < end; i++) {
    const b = line[i];
    if (b === QUOTE) return i;
    if (b === BACKSLASH) return -1;
  }
  return -1;
}

/** Fills `out` and returns true when the line starts the way kube-apiserver writes it. */
export function readApiserverHead(line: Buffer, out: ApiserverHead): boolean {
  if (!bytesAt(line, 0, V1_PREFIX) || !bytesAt(line, V1_PREFIX.length, LEVEL)) return false;
  const levelEnd = plainStringEnd(line, V1_PREFIX.length + LEVEL.length, 20);
  if (levelEnd < 0 || !bytesAt(line, levelEnd, AUDIT_ID)) return false;
  out.idStart = levelEnd + AUDIT_ID.length;
  out.idEnd = plainStringEnd(line, out.idStart, 128);
  if (out.idEnd < 0 || !bytesAt(line, out.idEnd, STAGE)) return false;
  out.stageStart = out.idEnd + STAGE.length;
  out.stageEnd = plainStringEnd(line, out.stageStart, 32);
  if (out.stageEnd < 0 || !bytesAt(line, out.stageEnd, REQUEST_URI)) return false;
  out.uriStart = out.stageEnd + REQUEST_URI.length;
  return true;
}

export function newApiserverHead(): ApiserverHead {
  return { idStart: 0, idEnd: 0, stageStart: 0, stageEnd: 0, uriStart: 0 };
}
