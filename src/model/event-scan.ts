/**
 * Per-event facts read in WebAssembly (wasm/event-scan.ts, built to dist/wasm/event-scan.wasm):
 * raw control characters, the (auditID, stage) key and stage time, whether latency annotations may
 * be present, and whether a line is plain kube-apiserver output with nothing to redact. On the
 * ingest path these cost ~4 us per event in JS (a native call per search, bounds-checked loops);
 * the module reads a whole slice of events per call. Whatever it cannot vouch for it leaves unset,
 * and callers fall back to the JS readers (model/event-key.ts, model/prepare.ts), which define
 * the semantics.
 */
import { readFileSync } from 'node:fs';

export const FACT_CONTROL = 1;
export const FACT_KEY = 2;
export const FACT_LATENCY = 4;
export const FACT_PLAIN = 8;
const FACT_BYTES = 32;

/**
 * The store's staging rows, defined here and nowhere else: each kept event's JSON text, then
 * `separator`, then the decimal tag `indexStep * batchIndex + latencyBit` (latencyBit when the event
 * may carry apiserver.latency.k8s.io annotations, else 0), then `newline`. Written by the
 * WebAssembly scanner (wasm/event-scan.ts stagingRows, which is passed these numbers) or its JS
 * twin below, read by the store's SQL (store/<backend>/schema.ts stagingSource). An event holding
 * a raw separator or newline cannot be staged (FACT_CONTROL); a carriage return is refused too, as
 * a reader may take it for a line end.
 */
export const STAGING_ROW = {
  separator: 0x1f,
  newline: 0x0a,
  indexStep: 2,
  latencyBit: 1,
} as const;

/** A staged row's tag for the event at `index`. */
export function stagingTag(index: number, latency: boolean): number {
  return STAGING_ROW.indexStep * index + (latency ? STAGING_ROW.latencyBit : 0);
}

/** Room for the separator, up to 16 digits and the newline after each staged event. */
const ROW_SUFFIX_MAX = 18;
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
    from: number,
    to: number,
    bias: number,
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
    newline: number,
    indexStep: number,
  ): number;
  setStagingSeparator(separator: number): void;
}

let compiled: WasmModule | null = null;
let unavailable: string | null = null;

/**
 * The module's exports, or null when it cannot be used: KAUDIT_WASM=off, or it failed to load
 * (missing build, a CPU without WebAssembly SIMD). Callers then take the JS path, which is slower
 * but defines the same results.
 */
function tryInstantiate(): ScanExports | null {
  if (process.env.KAUDIT_WASM === 'off') return null;
  if (unavailable !== null) return null;
  try {
    return instantiate();
  } catch (err) {
    unavailable = err instanceof Error ? err.message : String(err);
    process.emitWarning(
      `the WebAssembly event scanner is unavailable (${unavailable}); using the slower JS path`,
      {
        code: 'KAUDIT_WASM_UNAVAILABLE',
      },
    );
    return null;
  }
}

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
  const x = instance.exports as unknown as ScanExports;
  x.setStagingSeparator(STAGING_ROW.separator);
  return x;
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
 * Load a slice of events, read their facts, then (for the store) write their staging rows.
 * Views are valid until the next load().
 */
export interface EventScanner {
  /** The memory as u32 words, for keys: see wordsAt(). */
  readonly u32: Uint32Array;
  readonly count: number;
  /** Memory it holds now (WebAssembly memory only grows: drop the scanner to give it back). */
  readonly memoryBytes: number;
  /** Copies events[from, to) in. */
  load(events: readonly Buffer[], from: number, to: number): void;
  readFacts(opts: FactOptions): void;
  flags(i: number): number;
  /** Index into `u32` of event i's key (FACT_KEY): four UUID words, then the stage number. */
  wordsAt(i: number): number;
  stageMs(i: number): number;
  /** Stage event i (latency: it may carry latency annotations). */
  keep(i: number, latency: boolean): void;
  /** The kept events as staging rows (STAGING_ROW); `firstIndex` is the batch index of the slice's first event. */
  stagingRows(firstIndex: number): Buffer;
}

/** The scanner the module provides, or the JS one when it is unavailable. */
export function newEventScanner(): EventScanner {
  const x = tryInstantiate();
  return x === null ? new JsEventScanner() : new WasmEventScanner(x);
}

/**
 * How a kept event is marked for wasm/event-scan.ts stagingRows: 0 not staged, else 1 + the
 * latency bit it adds to the tag.
 */
function keepCode(latency: boolean): number {
  return 1 + (latency ? STAGING_ROW.latencyBit : 0);
}

/** No key and never plain: only control characters are looked for; the store reads keys in JS. */
class JsEventScanner implements EventScanner {
  readonly u32 = new Uint32Array(0);
  readonly memoryBytes = 0;
  count = 0;
  private events: readonly Buffer[] = [];
  private from = 0;
  private flagsOf = new Uint32Array(0);
  private kept = new Uint8Array(0);

  load(events: readonly Buffer[], from: number, to: number): void {
    this.events = events;
    this.from = from;
    this.count = to - from;
    this.flagsOf = new Uint32Array(this.count);
    this.kept = new Uint8Array(this.count);
  }

  readFacts(_opts: FactOptions): void {
    for (let i = 0; i < this.count; i++) {
      const ev = this.events[this.from + i] as Buffer;
      if (
        ev.indexOf(STAGING_ROW.separator) >= 0 ||
        ev.indexOf(STAGING_ROW.newline) >= 0 ||
        ev.indexOf(0x0d) >= 0
      )
        this.flagsOf[i] = FACT_CONTROL;
    }
  }

  flags(i: number): number {
    return this.flagsOf[i] as number;
  }

  wordsAt(_i: number): number {
    throw new Error('JsEventScanner reads no keys');
  }

  stageMs(_i: number): number {
    throw new Error('JsEventScanner reads no keys');
  }

  keep(i: number, latency: boolean): void {
    this.kept[i] = keepCode(latency);
  }

  stagingRows(firstIndex: number): Buffer {
    const parts: Buffer[] = [];
    let at = 0;
    const separator = String.fromCharCode(STAGING_ROW.separator);
    const newline = String.fromCharCode(STAGING_ROW.newline);
    for (let i = 0; i < this.count; i++) {
      const k = this.kept[i] as number;
      if (k === 0) continue;
      const ev = this.events[this.from + i] as Buffer;
      const suffix = Buffer.from(`${separator}${stagingTag(firstIndex + i, k === 2)}${newline}`);
      parts.push(ev, suffix);
      at += ev.length + suffix.length;
    }
    return Buffer.concat(parts, at);
  }
}

/** One module instance with its own memory. */
class WasmEventScanner implements EventScanner {
  private readonly heap: number;
  private u8: Uint8Array;
  u32: Uint32Array;
  private f64: Float64Array;
  count = 0;
  private offsets = 0;
  private facts = 0;
  private keepAt = 0;
  private input = 0;
  private output = 0;

  get memoryBytes(): number {
    return this.x.memory.buffer.byteLength;
  }

  constructor(private readonly x: ScanExports) {
    this.heap = align8(x.heapBase());
    this.u8 = new Uint8Array(x.memory.buffer);
    this.u32 = new Uint32Array(x.memory.buffer);
    this.f64 = new Float64Array(x.memory.buffer);
  }

  load(events: readonly Buffer[], from: number, to: number): void {
    const n = to - from;
    let bytes = 0;
    for (let i = from; i < to; i++) bytes += (events[i] as Buffer).length;
    this.offsets = this.heap;
    this.facts = align8(this.offsets + (n + 1) * 4);
    this.keepAt = this.facts + n * FACT_BYTES;
    this.input = align8(this.keepAt + n);
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

  wordsAt(i: number): number {
    return (this.facts >>> 2) + i * (FACT_BYTES >>> 2) + 1;
  }

  stageMs(i: number): number {
    return this.f64[(this.facts >>> 3) + i * (FACT_BYTES >>> 3) + 3] as number;
  }

  keep(i: number, latency: boolean): void {
    this.u8[this.keepAt + i] = keepCode(latency);
  }

  /** The Buffer views the module's memory. */
  stagingRows(firstIndex: number): Buffer {
    const n = this.x.stagingRows(
      this.input,
      this.offsets,
      this.count,
      this.keepAt,
      firstIndex,
      this.output,
      STAGING_ROW.newline,
      STAGING_ROW.indexStep,
    );
    return Buffer.from(this.u8.buffer, this.output, n);
  }

  private reserve(bytes: number): void {
    if (!ensureMemory(this.x, bytes)) return;
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
export interface LineScanner {
  /** Lines of chunk[from, to); bytes after the last NL are not read (the caller keeps them). */
  scan(chunk: Buffer, from: number, to: number): ChunkLines;
}

/**
 * With prepare options, the module's scanner (plain lines marked) when it is available; without,
 * or without the module, lines split in JS and none marked.
 */
export function newLineScanner(opts?: Pick<FactOptions, 'maxEventBytes' | 'redact'>): LineScanner {
  const x = opts === undefined ? null : tryInstantiate();
  return x === null || opts === undefined ? new JsLineScanner() : new WasmLineScanner(x, opts);
}

/** Splits with indexOf and marks no line plain: every line goes through prepareLine. */
class JsLineScanner implements LineScanner {
  scan(chunk: Buffer, from: number, to: number): ChunkLines {
    const starts: number[] = [];
    const ends: number[] = [];
    for (
      let nl = chunk.indexOf(0x0a, from), s = from;
      nl >= 0 && nl < to;
      s = nl + 1, nl = chunk.indexOf(0x0a, s)
    ) {
      starts.push(s);
      ends.push(nl);
    }
    return {
      count: starts.length,
      starts: Uint32Array.from(starts),
      ends: Uint32Array.from(ends),
      flags: new Uint32Array(starts.length),
    };
  }
}

class WasmLineScanner implements LineScanner {
  private readonly heap: number;

  constructor(
    private readonly x: ScanExports,
    private readonly opts: Pick<FactOptions, 'maxEventBytes' | 'redact'>,
  ) {
    this.heap = align8(x.heapBase());
  }

  scan(chunk: Buffer, from: number, to: number): ChunkLines {
    const len = to - from;
    const slots = Math.min(LINES_PER_CALL, len);
    const starts = this.heap;
    const ends = starts + slots * 4;
    const flags = ends + slots * 4;
    const input = align8(flags + slots * 4);
    ensureMemory(this.x, input + len);
    const buf = this.x.memory.buffer;
    new Uint8Array(buf).set(chunk.subarray(from, to), input);
    const out: ChunkLines = {
      count: 0,
      starts: new Uint32Array(0),
      ends: new Uint32Array(0),
      flags: new Uint32Array(0),
    };
    // Offsets come back relative to the chunk (bias `from`); a chunk of more than LINES_PER_CALL
    // lines takes several calls.
    for (let done = 0; done < len; done = this.x.linesScanned()) {
      const n = this.x.lineFacts(
        input,
        done,
        len,
        from,
        starts,
        ends,
        flags,
        slots,
        Math.min(this.opts.maxEventBytes, 0xffffffff),
        this.opts.redact ? 1 : 0,
      );
      if (n === 0) break;
      const at = out.count;
      out.count += n;
      out.starts = appendU32(out.starts, at, new Uint32Array(buf, starts, n));
      out.ends = appendU32(out.ends, at, new Uint32Array(buf, ends, n));
      out.flags = appendU32(out.flags, at, new Uint32Array(buf, flags, n));
    }
    return out;
  }
}

/** Grows the module's memory to at least `bytes`; true when it grew (views of it must be made again). */
function ensureMemory(x: ScanExports, bytes: number): boolean {
  const have = x.memory.buffer.byteLength;
  if (bytes <= have) return false;
  x.memory.grow(Math.ceil((bytes - have) / PAGE));
  return true;
}

/** `head[0, at)` followed by a copy of `tail`, in `head` when it has room. */
function appendU32(head: Uint32Array, at: number, tail: Uint32Array): Uint32Array {
  const out = at + tail.length <= head.length ? head : new Uint32Array(at + tail.length);
  if (out !== head) out.set(head.subarray(0, at));
  out.set(tail, at);
  return out;
}
