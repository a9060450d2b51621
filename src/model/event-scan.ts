/**
 * Per-event facts read in WebAssembly (wasm/event-scan.ts, built to dist/wasm/event-scan.wasm):
 * raw control characters, the (auditID, stage) key and stage time, whether latency annotations may
 * be present, and whether a line is plain kube-apiserver output with nothing to redact. On the
 * ingest path these cost ~4 us per event in JS (a native call per search, bounds-checked loops);
 * the module reads a whole slice of events per call. Whatever it cannot vouch for it leaves unset,
 * and callers fall back to the JS readers (store/duckdb/event-key.ts, model/prepare.ts), which
 * define the semantics.
 */
import { readFileSync } from 'node:fs';

export const FACT_CONTROL = 1;
export const FACT_KEY = 2;
export const FACT_LATENCY = 4;
export const FACT_PLAIN = 8;
const FACT_BYTES = 32;
/** Room for `<US>` + up to 10 digits + `<NL>` after each staged event. */
const ROW_SUFFIX_MAX = 12;
const PAGE = 65536;

// The WebAssembly API Node provides (its types are in TypeScript's DOM library, not used here).
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
type WasmModule = object;
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: object };
};

interface ScanExports {
  memory: WasmMemory;
  heapBase(): number;
  eventFacts(
    base: number,
    offsets: number,
    n: number,
    facts: number,
    plain: number,
    maxEventBytes: number,
    redact: number,
  ): void;
  lineFacts(
    base: number,
    len: number,
    starts: number,
    ends: number,
    flags: number,
    maxLines: number,
    maxEventBytes: number,
    redact: number,
  ): number;
  linesScanned(): number;
  stagingRows(
    base: number,
    offsets: number,
    n: number,
    keep: number,
    firstIndex: number,
    out: number,
    rowStarts: number,
  ): number;
}

let compiled: WasmModule | null = null;

function instantiate(): ScanExports {
  // Two levels up from both src/model (tests) and dist/model (the build).
  compiled ??= new WebAssembly.Module(
    readFileSync(new URL('../../dist/wasm/event-scan.wasm', import.meta.url)),
  );
  const instance = new WebAssembly.Instance(compiled, {
    env: {
      abort: () => {
        throw new Error('event-scan: WebAssembly abort');
      },
    },
  });
  return instance.exports as unknown as ScanExports;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

export interface FactOptions {
  /** Also decide FACT_PLAIN (prepare.ts needsParse): costs a search of each event for bodies. */
  plain: boolean;
  maxEventBytes: number;
  redact: boolean;
}

/**
 * One module instance with its own memory: load a slice of events, read their facts, then
 * (for the store) write their staging rows. Views are valid until the next load().
 */
export class EventScanner {
  private readonly x = instantiate();
  private readonly heap = align8(this.x.heapBase());
  private u8 = new Uint8Array(this.x.memory.buffer);
  /** The memory as u32 words, for facts: see wordsAt(). */
  u32 = new Uint32Array(this.x.memory.buffer);
  private f64 = new Float64Array(this.x.memory.buffer);
  count = 0;
  private offsets = 0;
  private facts = 0;
  private keepAt = 0;
  private rowStarts = 0;
  private input = 0;
  private output = 0;

  /** Copies events[from, to) into the module's memory. */
  load(events: readonly Buffer[], from: number, to: number): void {
    const n = to - from;
    let bytes = 0;
    for (let i = from; i < to; i++) bytes += (events[i] as Buffer).length;
    this.offsets = this.heap;
    this.facts = align8(this.offsets + (n + 1) * 4);
    this.keepAt = this.facts + n * FACT_BYTES;
    this.rowStarts = align8(this.keepAt + n);
    this.input = this.rowStarts + n * 4;
    this.output = align8(this.input + bytes);
    this.reserve(this.output + bytes + n * ROW_SUFFIX_MAX);
    const u8 = this.u8;
    const u32 = this.u32;
    let pos = this.input;
    let o = this.offsets >>> 2;
    for (let i = from; i < to; i++) {
      const ev = events[i] as Buffer;
      u32[o++] = pos - this.input;
      u8.set(ev, pos);
      pos += ev.length;
    }
    u32[o] = pos - this.input;
    u8.fill(0, this.keepAt, this.keepAt + n);
    this.count = n;
  }

  readFacts(opts: FactOptions): void {
    this.x.eventFacts(
      this.input,
      this.offsets,
      this.count,
      this.facts,
      opts.plain ? 1 : 0,
      Math.min(opts.maxEventBytes, 0xffffffff),
      opts.redact ? 1 : 0,
    );
  }

  flags(i: number): number {
    return this.u32[(this.facts >>> 2) + i * (FACT_BYTES >>> 2)] as number;
  }

  /** Index into `u32` of event i's key: four UUID words, then the stage number. */
  wordsAt(i: number): number {
    return (this.facts >>> 2) + i * (FACT_BYTES >>> 2) + 1;
  }

  stageMs(i: number): number {
    return this.f64[(this.facts >>> 3) + i * (FACT_BYTES >>> 3) + 3] as number;
  }

  /** Stage event i (2: it may carry latency annotations, 1: it surely has none). */
  keep(i: number, latency: boolean): void {
    this.u8[this.keepAt + i] = latency ? 2 : 1;
  }

  /**
   * The kept events as staging rows (store/duckdb/schema.ts stagingSource); `firstIndex` is the
   * batch index of the slice's first event. The Buffer views the module's memory.
   */
  stagingRows(firstIndex: number): Buffer {
    const n = this.x.stagingRows(
      this.input,
      this.offsets,
      this.count,
      this.keepAt,
      firstIndex,
      this.output,
      this.rowStarts,
    );
    return Buffer.from(this.u8.buffer, this.output, n);
  }

  /** Where kept event i's row starts in the last stagingRows() output. */
  rowStart(i: number): number {
    return this.u32[(this.rowStarts >>> 2) + i] as number;
  }

  private reserve(bytes: number): void {
    const have = this.x.memory.buffer.byteLength;
    if (bytes <= have) return;
    this.x.memory.grow(Math.ceil((bytes - have) / PAGE));
    const buf = this.x.memory.buffer;
    this.u8 = new Uint8Array(buf);
    this.u32 = new Uint32Array(buf);
    this.f64 = new Float64Array(buf);
  }
}

/** Lines found in a chunk: starts and ends are offsets into the chunk (the NL excluded). */
export interface ChunkLines {
  count: number;
  starts: Uint32Array;
  ends: Uint32Array;
  /** FACT_PLAIN where the line is kube-apiserver's compact v1 with nothing to redact. */
  flags: Uint32Array;
}

const LINES_PER_CALL = 16384;

/**
 * Splits whole lines out of chunks and tells which are plain kube-apiserver output (prepare.ts
 * would pass them through untouched), so callers skip prepareLine for those. Results are copies:
 * the caller may await between lines while the scanner serves another chunk.
 */
export class LineScanner {
  private readonly x = instantiate();
  private readonly heap = align8(this.x.heapBase());

  constructor(private readonly opts: Pick<FactOptions, 'maxEventBytes' | 'redact'>) {}

  /** Lines of chunk[from, to); bytes after the last NL are not read (the caller keeps them). */
  scan(chunk: Buffer, from: number, to: number): ChunkLines {
    const len = to - from;
    const slots = Math.min(LINES_PER_CALL, len);
    const starts = this.heap;
    const ends = starts + slots * 4;
    const flags = ends + slots * 4;
    const input = align8(flags + slots * 4);
    const need = input + len;
    const have = this.x.memory.buffer.byteLength;
    if (need > have) this.x.memory.grow(Math.ceil((need - have) / PAGE));
    const buf = this.x.memory.buffer;
    new Uint8Array(buf).set(chunk.subarray(from, to), input);
    const parts: ChunkLines[] = [];
    let total = 0;
    for (let done = 0; done < len; ) {
      const n = this.x.lineFacts(
        input + done,
        len - done,
        starts,
        ends,
        flags,
        slots,
        Math.min(this.opts.maxEventBytes, 0xffffffff),
        this.opts.redact ? 1 : 0,
      );
      if (n === 0) break;
      const base = from + done;
      const view = (at: number) => new Uint32Array(buf, at, n);
      const part = {
        count: n,
        starts: view(starts).slice(),
        ends: view(ends).slice(),
        flags: view(flags).slice(),
      };
      for (let i = 0; i < n; i++) {
        part.starts[i] = (part.starts[i] as number) + base;
        part.ends[i] = (part.ends[i] as number) + base;
      }
      parts.push(part);
      total += n;
      done += this.x.linesScanned();
    }
    if (parts.length === 1) return parts[0] as ChunkLines;
    const all: ChunkLines = {
      count: total,
      starts: new Uint32Array(total),
      ends: new Uint32Array(total),
      flags: new Uint32Array(total),
    };
    let at = 0;
    for (const p of parts) {
      all.starts.set(p.starts, at);
      all.ends.set(p.ends, at);
      all.flags.set(p.flags, at);
      at += p.count;
    }
    return all;
  }
}
