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
}

export interface DocumentRecord {
  readonly kind: 'document';
  readonly data: Buffer;
  readonly offset: number;
}

export type FrameRecord = LineRecord | DocumentRecord;

/** Splits a byte stream into lines. Keeps the unterminated tail until more bytes or `end()`. */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private offset = 0;

  /** The scanner splits whole lines (the module's also tells the plain ones). */
  constructor(
    startOffset = 0,
    private readonly scanner: LineScanner = newLineScanner(),
  ) {
    this.offset = startOffset;
  }

  /** Calls `onLine` for each complete line in `chunk` (without its newline). */
  push(chunk: Buffer, onLine: (line: Buffer, offset: number, plain: boolean) => void): void {
    let start = 0;
    const nl = this.pending.length > 0 ? chunk.indexOf(0x0a) : -1;
    if (nl >= 0) {
      this.pending.push(chunk.subarray(0, nl));
      const line = Buffer.concat(this.pending, this.pendingBytes + nl);
      const at = this.offset;
      this.offset += line.length + 1;
      this.pending = [];
      this.pendingBytes = 0;
      onLine(line, at, false);
      start = nl + 1;
    }
    const last = chunk.lastIndexOf(0x0a);
    if (last >= start) {
      const lines = this.scanner.scan(chunk, start, last + 1);
      const base = this.offset - start;
      for (let i = 0; i < lines.count; i++) {
        const s = lines.starts[i] as number;
        onLine(
          chunk.subarray(s, lines.ends[i] as number),
          base + s,
          (lines.flags[i] as number) === FACT_PLAIN,
        );
      }
      this.offset += last + 1 - start;
      start = last + 1;
    }
    if (start < chunk.length) {
      this.pending.push(chunk.subarray(start));
      this.pendingBytes += chunk.length - start;
    }
  }

  /** Bytes held back waiting for a newline. */
  get pendingLength(): number {
    return this.pendingBytes;
  }

  /** The unterminated last line, if any. */
  end(onLine: (line: Buffer, offset: number, plain: boolean) => void): void {
    if (this.pending.length === 0) return;
    const line = Buffer.concat(this.pending, this.pendingBytes);
    const at = this.offset;
    this.offset += line.length;
    this.pending = [];
    this.pendingBytes = 0;
    onLine(line, at, false);
  }
}

/** Cuts concatenated JSON values (pretty-printed events, an EventList, an array) at their ends. */
export class DocumentSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private started = false;
  private startOffset = 0;
  private offset = 0;

  push(chunk: Buffer, onDoc: (doc: Buffer, offset: number) => void): void {
    let from = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (!this.started) {
        if (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) {
          from = i + 1;
          continue;
        }
        this.started = true;
        this.startOffset = this.offset + i;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (b === 0x5c) this.escaped = true;
        else if (b === 0x22) this.inString = false;
        continue;
      }
      if (b === 0x22) this.inString = true;
      else if (b === 0x7b || b === 0x5b) this.depth++;
      else if (b === 0x7d || b === 0x5d) {
        this.depth--;
        if (this.depth <= 0) {
          this.parts.push(chunk.subarray(from, i + 1));
          this.size += i + 1 - from;
          onDoc(Buffer.concat(this.parts, this.size), this.startOffset);
          this.parts = [];
          this.size = 0;
          this.depth = 0;
          this.started = false;
          from = i + 1;
        }
      }
    }
    if (this.started && from < chunk.length) {
      this.parts.push(chunk.subarray(from));
      this.size += chunk.length - from;
    }
    this.offset += chunk.length;
  }

  /** What is left: an unfinished value, returned so it can be dead-lettered. */
  end(onDoc: (doc: Buffer, offset: number) => void): void {
    if (this.started && this.size > 0) onDoc(Buffer.concat(this.parts, this.size), this.startOffset);
    this.parts = [];
    this.size = 0;
    this.started = false;
  }
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
  const first = await counted.next();
  if (first.done) return;
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
  const head = await iter.next();
  if (head.done) return;
  const document = looksLikeDocument(head.value);
  let batch: FrameRecord[] = [];
  const lineSplitter = new LineSplitter(0, newLineScanner(document ? undefined : options.prepare));
  const docSplitter = new DocumentSplitter();
  const onLine = (data: Buffer, offset: number, plain: boolean) =>
    batch.push({ kind: 'line', data, offset, plain });
  const onDoc = (data: Buffer, offset: number) => batch.push({ kind: 'document', data, offset });
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
