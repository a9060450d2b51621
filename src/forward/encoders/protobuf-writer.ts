/**
 * The few protobuf wire types OTLP's log messages use (protobuf.dev/programming-guides/encoding):
 * varints, fixed64, and length-delimited strings, bytes and messages. Fields are collected first;
 * toBuffer() measures the whole message (each nested length once) and writes it into one buffer,
 * strings straight from their JS text: no intermediate buffer per field.
 */

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;

type Field =
  | { tag: number; kind: 'varint'; n: number }
  | { tag: number; kind: 'fixed64'; n: bigint }
  | { tag: number; kind: 'string'; s: string; bytes: number }
  | { tag: number; kind: 'bytes'; b: Buffer }
  | { tag: number; kind: 'message'; m: ProtoMessage };

function varintSize(n: number): number {
  let size = 1;
  for (let v = n; v >= 0x80; v = Math.floor(v / 0x80)) size++;
  return size;
}

function writeVarint(buf: Buffer, at: number, n: number): number {
  let v = n;
  let i = at;
  while (v >= 0x80) {
    buf[i++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  buf[i++] = v;
  return i;
}

export class ProtoMessage {
  private readonly fields: Field[] = [];
  private size = -1;

  /** An unsigned or non-negative integer field (uint32, int64 >= 0, enum, bool as 0/1). */
  varint(field: number, n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`varint out of range: ${n}`);
    this.fields.push({ tag: field * 8 + VARINT, kind: 'varint', n });
    return this;
  }

  /** A fixed64 field from a decimal string (OTLP's times in nanoseconds exceed 2^53). */
  fixed64(field: number, decimal: string): this {
    this.fields.push({ tag: field * 8 + FIXED64, kind: 'fixed64', n: BigInt(decimal) });
    return this;
  }

  string(field: number, s: string): this {
    this.fields.push({ tag: field * 8 + LENGTH_DELIMITED, kind: 'string', s, bytes: -1 });
    return this;
  }

  bytes(field: number, b: Buffer): this {
    this.fields.push({ tag: field * 8 + LENGTH_DELIMITED, kind: 'bytes', b });
    return this;
  }

  message(field: number, m: ProtoMessage): this {
    this.fields.push({ tag: field * 8 + LENGTH_DELIMITED, kind: 'message', m });
    return this;
  }

  /** The encoded size in bytes; measured once. */
  byteLength(): number {
    if (this.size >= 0) return this.size;
    let size = 0;
    for (const f of this.fields) {
      size += varintSize(f.tag);
      switch (f.kind) {
        case 'varint':
          size += varintSize(f.n);
          break;
        case 'fixed64':
          size += 8;
          break;
        case 'string':
          f.bytes = Buffer.byteLength(f.s, 'utf8');
          size += varintSize(f.bytes) + f.bytes;
          break;
        case 'bytes':
          size += varintSize(f.b.length) + f.b.length;
          break;
        case 'message': {
          const n = f.m.byteLength();
          size += varintSize(n) + n;
          break;
        }
      }
    }
    this.size = size;
    return size;
  }

  private writeTo(buf: Buffer, at: number): number {
    let i = at;
    for (const f of this.fields) {
      i = writeVarint(buf, i, f.tag);
      switch (f.kind) {
        case 'varint':
          i = writeVarint(buf, i, f.n);
          break;
        case 'fixed64':
          i = buf.writeBigUInt64LE(f.n, i);
          break;
        case 'string':
          i = writeVarint(buf, i, f.bytes);
          i += buf.write(f.s, i, f.bytes, 'utf8');
          break;
        case 'bytes':
          i = writeVarint(buf, i, f.b.length);
          i += f.b.copy(buf, i);
          break;
        case 'message':
          i = writeVarint(buf, i, f.m.byteLength());
          i = f.m.writeTo(buf, i);
          break;
      }
    }
    return i;
  }

  toBuffer(): Buffer {
    const buf = Buffer.allocUnsafe(this.byteLength());
    const end = this.writeTo(buf, 0);
    if (end !== buf.length) throw new Error(`protobuf: wrote ${end} bytes of ${buf.length}`);
    return buf;
  }
}
