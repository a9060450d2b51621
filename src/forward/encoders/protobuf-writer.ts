/**
 * The few protobuf wire types OTLP's log messages use (protobuf.dev/programming-guides/encoding):
 * varints, fixed64, and length-delimited strings and messages. A message is a list of byte runs,
 * so nesting one in another prefixes its length without copying it; bytes are copied once, when
 * the outermost message is turned into a Buffer.
 */

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;

export class ProtoMessage {
  readonly parts: Buffer[] = [];
  length = 0;
  private scratch: number[] = [];

  private push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }

  private flushScratch(): void {
    if (this.scratch.length === 0) return;
    this.push(Buffer.from(this.scratch));
    this.scratch = [];
  }

  /** A non-negative integer below 2^53 as a varint. */
  private varintBytes(n: number): void {
    let v = n;
    while (v >= 0x80) {
      this.scratch.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.scratch.push(v);
  }

  private tag(field: number, wire: number): void {
    this.varintBytes(field * 8 + wire);
  }

  /** An unsigned or non-negative integer field (uint32, int64 >= 0, enum, bool as 0/1). */
  varint(field: number, n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`varint out of range: ${n}`);
    this.tag(field, VARINT);
    this.varintBytes(n);
    return this;
  }

  /** A fixed64 field from a decimal string (OTLP's times in nanoseconds exceed 2^53). */
  fixed64(field: number, decimal: string): this {
    this.tag(field, FIXED64);
    this.flushScratch();
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64LE(BigInt(decimal));
    this.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, Buffer.from(s, 'utf8'));
  }

  bytes(field: number, b: Buffer): this {
    this.tag(field, LENGTH_DELIMITED);
    this.varintBytes(b.length);
    this.flushScratch();
    this.push(b);
    return this;
  }

  message(field: number, m: ProtoMessage): this {
    m.flushScratch();
    this.tag(field, LENGTH_DELIMITED);
    this.varintBytes(m.length);
    this.flushScratch();
    for (const p of m.parts) this.push(p);
    return this;
  }

  toBuffer(): Buffer {
    this.flushScratch();
    return Buffer.concat(this.parts, this.length);
  }
}
