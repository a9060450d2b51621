/**
 * Framing: audit-log bytes -> records. JSON lines are split from Buffers (readline is slower and
 * copies); whole documents (an EventList, a JSON array, pretty-printed events one after another)
 * are cut at the end of each top-level JSON value.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { FACT_PLAIN, type LineScanner, newLineScanner } from './event-scan.js';
import type { PrepareOptions } from './prepare.js';

/**
 * The most of one record (a line, a document, an element of a top-level array) framing holds; the
 * agent's max_line_bytes default. Longer records keep this head and report their full size
 * (`oversize`), so memory is bounded by the cap, not by the input.
 */
export const DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024;

export interface LineRecord {
  readonly kind: 'line';
  readonly data: Buffer;
  /** Byte offset of the line in the (decompressed) input. */
  readonly offset: number;
  /**
   * The line is kube-apiserver's compact v1 with nothing to redact: prepareLine would pass it
   * through untouched (only set when framing was given the prepare options).
   */
  readonly plain: boolean;
  /** Set when the line was longer than the cap: its whole length; `data` is its head. */
  readonly oversize?: number;
}

export interface DocumentRecord {
  readonly kind: 'document';
  readonly data: Buffer;
  readonly offset: number;
  /** Set when the document was longer than the cap: its whole length; `data` is its head. */
  readonly oversize?: number;
  /** Set for an element of a top-level array: its index there. */
  readonly index?: number;
}

export type FrameRecord = LineRecord | DocumentRecord;

type OnLine = (line: Buffer, offset: number, plain: boolean, oversize?: number) => void;

/**
 * Splits a byte stream into lines. Keeps the unterminated tail until more bytes or `end()`, at
 * most `maxBytes` of it: the rest of a longer line is counted and dropped up to its newline.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes of the current line beyond `pending` (dropped: the line is over the cap). */
  private dropped = 0;
  private offset = 0;
  /** Dropping bytes up to the next newline without a record (skipLine). */
  private skipping = false;

  /** The scanner splits whole lines (the module's also tells the plain ones). */
  constructor(
    startOffset = 0,
    private readonly scanner: LineScanner = newLineScanner(),
    private readonly maxBytes: number = DEFAULT_MAX_RECORD_BYTES,
  ) {
    this.offset = startOffset;
  }

  /**
   * Drops the bytes up to and including the next newline without a record: input that starts in the
   * middle of a line (a file followed from its end).
   */
  skipLine(): void {
    if (this.pending.length === 0 && this.dropped === 0) this.skipping = true;
  }

  /** Bytes are held (or being skipped) that end() would settle: a line without its newline yet. */
  get holding(): boolean {
    return this.pending.length > 0 || this.dropped > 0 || this.skipping;
  }

  /** Calls `onLine` for each complete line in `chunk` (without its newline). */
  push(chunk: Buffer, onLine: OnLine): void {
    if (this.skipping) {
      const nl = chunk.indexOf(0x0a);
      if (nl < 0) {
        this.offset += chunk.length;
        return;
      }
      this.skipping = false;
      this.offset += nl + 1;
      if (nl + 1 < chunk.length) this.push(chunk.subarray(nl + 1), onLine);
      return;
    }
    let start = 0;
    const held = this.pending.length > 0 || this.dropped > 0;
    const nl = held ? chunk.indexOf(0x0a) : -1;
    if (held && nl < 0) {
      this.hold(chunk, 0);
      return;
    }
    if (nl >= 0) {
      this.hold(chunk.subarray(0, nl), 0);
      this.flush(onLine, 1);
      start = nl + 1;
    }
    const last = chunk.lastIndexOf(0x0a);
    if (last >= start) {
      const lines = this.scanner.scan(chunk, start, last + 1);
      const base = this.offset - start;
      for (let i = 0; i < lines.count; i++) {
        const s = lines.starts[i] as number;
        const e = lines.ends[i] as number;
        if (e - s > this.maxBytes) onLine(chunk.subarray(s, s + this.maxBytes), base + s, false, e - s);
        else onLine(chunk.subarray(s, e), base + s, (lines.flags[i] as number) === FACT_PLAIN);
      }
      this.offset += last + 1 - start;
      start = last + 1;
    }
    if (start < chunk.length) this.hold(chunk, start);
  }

  /** Keeps bytes of the unterminated line, up to the cap. */
  private hold(chunk: Buffer, from: number): void {
    const room = this.maxBytes - this.pendingBytes;
    const n = chunk.length - from;
    if (n <= room) {
      if (n > 0) this.pending.push(chunk.subarray(from));
      this.pendingBytes += n;
      return;
    }
    if (room > 0) this.pending.push(chunk.subarray(from, from + room));
    this.pendingBytes += Math.max(room, 0);
    this.dropped += n - Math.max(room, 0);
  }

  /** Emits the held line; `terminator` is the newline's length (0 at the end of input). */
  private flush(onLine: OnLine, terminator: number): void {
    const line = Buffer.concat(this.pending, this.pendingBytes);
    const total = this.pendingBytes + this.dropped;
    const at = this.offset;
    this.offset += total + terminator;
    this.pending = [];
    this.pendingBytes = 0;
    this.dropped = 0;
    if (total > line.length) onLine(line, at, false, total);
    else onLine(line, at, false);
  }

  /** Bytes held back waiting for a newline. */
  get pendingLength(): number {
    return this.pendingBytes;
  }

  /** The unterminated last line, if any. */
  end(onLine: OnLine): void {
    this.skipping = false;
    if (this.pending.length === 0 && this.dropped === 0) return;
    this.flush(onLine, 0);
  }
}

type OnDoc = (doc: Buffer, offset: number, oversize?: number, index?: number) => void;

const isSpace = (b: number | undefined): boolean => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/**
 * Cuts concatenated JSON values (pretty-printed events, an EventList, an array) at their ends. The
 * elements of a top-level array are records of their own, so a large array is held one element at
 * a time; any record keeps at most `maxBytes` (its head) and reports its full size.
 */
export class DocumentSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  /** Bytes of the current record, held or not. */
  private total = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private started = false;
  /** Inside a top-level array: its elements are the records. */
  private inArray = false;
  /** Index of the current element in the top-level array. */
  private element = 0;
  private startOffset = 0;
  private offset = 0;

  constructor(private readonly maxBytes: number = DEFAULT_MAX_RECORD_BYTES) {}

  push(chunk: Buffer, onDoc: OnDoc): void {
    let from = this.started ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (!this.started) {
        if (isSpace(b)) continue;
        if (this.inArray && b === 0x2c) continue;
        if (this.inArray && b === 0x5d) {
          this.inArray = false;
          this.depth = 0;
          continue;
        }
        if (!this.inArray && b === 0x5b) {
          this.inArray = true;
          this.element = 0;
          this.depth = 1;
          continue;
        }
        this.started = true;
        this.startOffset = this.offset + i;
        from = i;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (b === 0x5c) this.escaped = true;
        else if (b === 0x22) this.inString = false;
        continue;
      }
      const base = this.inArray ? 1 : 0;
      if (b === 0x22) this.inString = true;
      else if (b === 0x7b || b === 0x5b) this.depth++;
      else if (b === 0x7d || b === 0x5d) {
        if (this.inArray && this.depth === 1) {
          // A scalar element, then the array's end.
          this.emit(chunk, from, i, onDoc);
          this.inArray = false;
          this.depth = 0;
          continue;
        }
        this.depth--;
        if (this.depth <= base) {
          this.emit(chunk, from, i + 1, onDoc);
          this.depth = base;
        }
      } else if (b === 0x2c && this.inArray && this.depth === 1) {
        this.emit(chunk, from, i, onDoc);
      }
    }
    if (this.started && from >= 0 && from < chunk.length) this.keep(chunk, from, chunk.length);
    this.offset += chunk.length;
  }

  /** Holds bytes of the current record, up to the cap; counts all of them. */
  private keep(chunk: Buffer, from: number, to: number): void {
    const n = to - from;
    this.total += n;
    const room = this.maxBytes - this.size;
    if (room <= 0) return;
    const take = Math.min(room, n);
    this.parts.push(chunk.subarray(from, from + take));
    this.size += take;
  }

  private emit(chunk: Buffer, from: number, to: number, onDoc: OnDoc): void {
    this.keep(chunk, from, to);
    this.deliver(onDoc);
  }

  private deliver(onDoc: OnDoc): void {
    const doc = trimEnd(Buffer.concat(this.parts, this.size));
    onDoc(
      doc,
      this.startOffset,
      this.total > this.size ? this.total : undefined,
      this.inArray ? this.element++ : undefined,
    );
    this.parts = [];
    this.size = 0;
    this.total = 0;
    this.started = false;
  }

  /** What is left: an unfinished value, returned so it can be dead-lettered. */
  end(onDoc: OnDoc): void {
    if (this.started && this.total > 0) this.deliver(onDoc);
    this.parts = [];
    this.size = 0;
    this.total = 0;
    this.started = false;
  }
}

function trimEnd(b: Buffer): Buffer {
  let e = b.length;
  while (e > 0 && isSpace(b[e - 1])) e--;
  return e === b.length ? b : b.subarray(0, e);
}

/** A newline in the chunk: looksLikeDocument can decide (a lone first chunk of blanks is read past). */
function hasFirstLine(chunk: Buffer, first: boolean): boolean {
  const nl = chunk.indexOf(0x0a);
  if (nl < 0) return false;
  if (!first) return true;
  for (let i = 0; i < nl; i++) if (!isSpace(chunk[i])) return true;
  return chunk.subarray(nl + 1).some((b) => b === 0x0a);
}

function isGzip(head: Buffer): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/**
 * JSON lines unless the input starts like a document: `[`, or a first line that is not a whole
 * JSON object (`{` alone, as pretty-printers write it).
 */
export function looksLikeDocument(head: Buffer): boolean {
  let i = 0;
  while (i < head.length && (head[i] === 0x20 || head[i] === 0x0a || head[i] === 0x0d || head[i] === 0x09))
    i++;
  if (head[i] === 0x5b) return true;
  if (head[i] !== 0x7b) return false;
  const nl = head.indexOf(0x0a, i);
  const first = head
    .subarray(i, nl < 0 ? head.length : nl)
    .toString('latin1')
    .trimEnd();
  if (nl < 0 && head.length < 65536) return false;
  return !first.endsWith('}');
}

export interface FrameOptions {
  /** Called with compressed/raw bytes consumed so far, for progress. */
  onBytes?: (bytes: number) => void;
  /** Mark the lines prepareLine would pass through untouched with these options (LineRecord.plain). */
  prepare?: PrepareOptions;
  /** The most of one record held (default DEFAULT_MAX_RECORD_BYTES); longer ones keep their head. */
  maxRecordBytes?: number;
}

/** Frames a whole input (file path, or a readable such as stdin); gzip is detected by magic bytes. */
export async function* frameInput(
  input: string | Readable,
  options: FrameOptions = {},
): AsyncGenerator<FrameRecord[], void, undefined> {
  const raw: Readable =
    typeof input === 'string' ? createReadStream(input, { highWaterMark: 1 << 20 }) : input;
  let consumed = 0;
  const counted = (async function* () {
    for await (const chunk of raw as AsyncIterable<Buffer>) {
      consumed += chunk.length;
      options.onBytes?.(consumed);
      yield chunk;
    }
  })();
  // The two magic bytes may come in two chunks (a pipe can deliver a byte at a time).
  const firstParts: Buffer[] = [];
  let firstBytes = 0;
  while (firstBytes < 2) {
    const next = await counted.next();
    if (next.done) break;
    firstParts.push(next.value);
    firstBytes += next.value.length;
  }
  if (firstBytes === 0) return;
  const first = { value: Buffer.concat(firstParts, firstBytes) };
  let source: AsyncIterable<Buffer>;
  if (isGzip(first.value)) {
    const gunzip = createGunzip();
    (async () => {
      try {
        gunzip.write(first.value);
        for await (const c of counted)
          if (!gunzip.write(c)) await new Promise((r) => gunzip.once('drain', r));
        gunzip.end();
      } catch (err) {
        gunzip.destroy(err as Error);
      }
    })();
    source = gunzip as AsyncIterable<Buffer>;
  } else {
    source = (async function* () {
      yield first.value;
      yield* counted;
    })();
  }
  const iter = source[Symbol.asyncIterator]();
  // Enough of the start to tell lines from documents: a first line, 64 KiB, or all there is (a
  // pipe may deliver a byte at a time).
  const headParts: Buffer[] = [];
  let headBytes = 0;
  for (;;) {
    const next = await iter.next();
    if (next.done) break;
    headParts.push(next.value);
    headBytes += next.value.length;
    if (headBytes >= 65536 || hasFirstLine(next.value, headParts.length === 1)) break;
  }
  if (headBytes === 0) return;
  const head = { value: Buffer.concat(headParts, headBytes) };
  const document = looksLikeDocument(head.value);
  let batch: FrameRecord[] = [];
  const maxBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  const lineSplitter = new LineSplitter(0, newLineScanner(document ? undefined : options.prepare), maxBytes);
  const docSplitter = new DocumentSplitter(maxBytes);
  const onLine = (data: Buffer, offset: number, plain: boolean, oversize?: number) =>
    batch.push(
      oversize === undefined
        ? { kind: 'line', data, offset, plain }
        : { kind: 'line', data, offset, plain, oversize },
    );
  const onDoc = (data: Buffer, offset: number, oversize?: number, index?: number) =>
    batch.push({
      kind: 'document',
      data,
      offset,
      ...(oversize === undefined ? {} : { oversize }),
      ...(index === undefined ? {} : { index }),
    });
  let chunk: Buffer | undefined = head.value;
  while (chunk !== undefined) {
    if (document) docSplitter.push(chunk, onDoc);
    else lineSplitter.push(chunk, onLine);
    if (batch.length > 0) {
      yield batch;
      batch = [];
    }
    const next = await iter.next();
    chunk = next.done ? undefined : next.value;
  }
  if (document) docSplitter.end(onDoc);
  else lineSplitter.end(onLine);
  if (batch.length > 0) yield batch;
}

/** Why an over-long record is not read: named with its size and the cap. */
export function oversizeReason(rec: FrameRecord): string | undefined {
  if (rec.oversize === undefined) return undefined;
  const what = rec.kind === 'line' ? 'line' : 'JSON value';
  return `${what} of ${rec.oversize} bytes is over the limit of ${rec.data.length} bytes (max line bytes); not read, its head is kept`;
}

/** `item 3: ` for an element of a top-level array, else nothing: prefixed to the reasons of its problems. */
export function recordPlace(rec: FrameRecord): string {
  return rec.kind === 'document' && rec.index !== undefined ? `item ${rec.index}: ` : '';
}
