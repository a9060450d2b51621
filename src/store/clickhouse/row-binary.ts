/**
 * ClickHouse's RowBinary input format (ClickHouse docs, "Formats: RowBinary"; the same in 18.16):
 * each row is its columns' values one after another, little-endian, with no separators or escaping.
 * String is a LEB128 length and the bytes; Nullable(T) is a byte (1 = NULL) and, when 0, the T;
 * Array(T) is a LEB128 count and the elements; DateTime is UInt32 seconds. An event's JSON text,
 * most of a row's bytes, is copied in as it is.
 */

const TWO_32 = 2 ** 32;

/** A growing byte buffer that rows are written into. */
export class RowBinaryWriter {
  private buf: Buffer;
  pos = 0;

  /** A new buffer of `initial` bytes, or the given one (written from its start). */
  constructor(initial: number | Buffer = 1 << 20) {
    this.buf = typeof initial === 'number' ? Buffer.allocUnsafe(initial) : initial;
  }

  /** Room for `bytes` more. */
  private room(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + bytes) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private varUInt(n: number): void {
    const b = this.buf;
    let p = this.pos;
    while (n >= 0x80) {
      b[p++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    b[p++] = n;
    this.pos = p;
  }

  uint8(n: number): void {
    this.room(1);
    this.buf[this.pos++] = n;
  }

  /** DateTime (seconds) and other UInt32. */
  uint32(n: number): void {
    this.room(4);
    this.buf.writeUInt32LE(n, this.pos);
    this.pos += 4;
  }

  int32(n: number): void {
    this.room(4);
    this.buf.writeInt32LE(n, this.pos);
    this.pos += 4;
  }

  /** Int64 from a safe integer (microseconds): two's complement in two 32-bit halves. */
  int64(n: number): void {
    this.room(8);
    const hi = Math.floor(n / TWO_32);
    this.buf.writeUInt32LE(n - hi * TWO_32, this.pos);
    this.buf.writeInt32LE(hi, this.pos + 4);
    this.pos += 8;
  }

  string(s: string): void {
    const n = s.length;
    // UTF-8 takes at most 3 bytes per UTF-16 unit; the length prefix at most 5.
    this.room(3 * n + 5);
    const b = this.buf;
    const start = this.pos;
    // Most values are ASCII: written here, one byte per unit, after a one-byte length when it fits.
    if (n < 0x80) {
      let p = start + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[p++] = c;
      }
      if (i === n) {
        b[start] = n;
        this.pos = p;
        return;
      }
    }
    // Lone surrogates become U+FFFD, as Buffer.from(text) did for the text formats.
    this.varUInt(Buffer.byteLength(s, 'utf8'));
    this.pos += b.write(s, this.pos, 'utf8');
  }

  /** Bytes as a String value (the event's JSON text). */
  bytes(data: Uint8Array): void {
    this.room(data.length + 5);
    this.varUInt(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  nullableString(v: unknown): void {
    if (typeof v === 'string') {
      this.uint8(0);
      this.string(v);
    } else this.uint8(1);
  }

  nullableInt64(v: number | null): void {
    if (v === null) this.uint8(1);
    else {
      this.uint8(0);
      this.int64(v);
    }
  }

  nullableInt32(v: number | null): void {
    if (v === null) this.uint8(1);
    else {
      this.uint8(0);
      this.int32(v);
    }
  }

  /** Array(String) of the strings among `v` (a JSON array may hold anything). */
  stringArray(v: readonly unknown[]): void {
    let n = 0;
    for (const x of v) if (typeof x === 'string') n++;
    this.room(5);
    this.varUInt(n);
    for (const x of v) if (typeof x === 'string') this.string(x);
  }

  /** What was written: a view of the writer's memory (valid until the next write). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}
