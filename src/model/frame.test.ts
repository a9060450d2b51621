import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DocumentSplitter, frameInput, LineSplitter, looksLikeDocument } from './frame.js';

function collect(splitter: LineSplitter, chunks: string[]): [string, number][] {
  const out: [string, number][] = [];
  for (const c of chunks) splitter.push(Buffer.from(c), (l, o) => out.push([l.toString(), o]));
  return out;
}

describe('LineSplitter', () => {
  it('gives byte offsets and joins lines split across chunks', () => {
    const s = new LineSplitter();
    const lines = collect(s, ['{"a":1}\n{"b"', ':2}\n', '{"c":3}\n']);
    expect(lines).toEqual([
      ['{"a":1}', 0],
      ['{"b":2}', 8],
      ['{"c":3}', 16],
    ]);
  });

  it('skips the rest of a line it starts inside (a file followed from its end), across chunks', () => {
    const s = new LineSplitter(100);
    s.skipLine();
    expect(s.holding).toBe(true);
    expect(collect(s, ['tail of a ', 'line\n{"a":1}\n{"b"'])).toEqual([['{"a":1}', 115]]);
    expect(s.holding).toBe(true);
    const tail: [string, number][] = [];
    s.end((l, o) => tail.push([l.toString(), o]));
    expect(tail).toEqual([['{"b"', 123]]);
    expect(s.holding).toBe(false);
    const skipped = new LineSplitter(0);
    skipped.skipLine();
    expect(collect(skipped, ['no newline yet'])).toEqual([]);
    skipped.end(() => {
      throw new Error('a skipped line is never a record');
    });
  });

  it('holds back an unterminated last line until end()', () => {
    const s = new LineSplitter();
    expect(collect(s, ['{"a":1}\n{"part'])).toHaveLength(1);
    expect(s.pendingLength).toBe(6);
    const tail: string[] = [];
    s.end((l) => tail.push(l.toString()));
    expect(tail).toEqual(['{"part']);
  });
});

describe('DocumentSplitter', () => {
  it('cuts pretty-printed values, ignoring braces inside strings', () => {
    const text = '{\n  "a": "}{",\n  "b": [1, {"c": "\\"}"}]\n}\n\n[\n 1\n]\n';
    const docs: [string, number][] = [];
    const d = new DocumentSplitter();
    for (const ch of text) d.push(Buffer.from(ch), (doc, off) => docs.push([doc.toString(), off]));
    d.end((doc, off) => docs.push([doc.toString(), off]));
    expect(docs.map(([t]) => JSON.parse(t))).toEqual([{ a: '}{', b: [1, { c: '"}' }] }, 1]);
    expect(docs[1]?.[1]).toBe(text.indexOf('\n 1') + 2);
  });
});

describe('looksLikeDocument', () => {
  it('tells JSON lines from documents', () => {
    expect(looksLikeDocument(Buffer.from('{"kind":"Event"}\n{"kind":"Event"}\n'))).toBe(false);
    expect(looksLikeDocument(Buffer.from('{\n  "kind": "EventList"\n}'))).toBe(true);
    expect(looksLikeDocument(Buffer.from('  [{"kind":"Event"}]'))).toBe(true);
  });
});

describe('frameInput', () => {
  it('reads gzip without being told, by magic bytes', async () => {
    const gz = gzipSync(Buffer.from('{"a":1}\n{"b":2}\n'));
    const seen: string[] = [];
    for await (const recs of frameInput(Readable.from([gz])))
      for (const r of recs) seen.push(r.data.toString());
    expect(seen).toEqual(['{"a":1}', '{"b":2}']);
  });
});

describe('framing holds at most maxRecordBytes of a record', () => {
  it('keeps the head of an over-long line however it is chunked, with its full size and true offsets', () => {
    const text = `short\n${'x'.repeat(25)}\nnext\n${'y'.repeat(12)}`;
    for (const size of [1, 3, 7, 100]) {
      const s = new LineSplitter(0, undefined, 10);
      const out: [string, number, number | undefined][] = [];
      const on = (l: Buffer, off: number, _p: boolean, over?: number) => out.push([l.toString(), off, over]);
      for (let i = 0; i < text.length; i += size) s.push(Buffer.from(text.slice(i, i + size)), on);
      s.end(on);
      expect(out).toEqual([
        ['short', 0, undefined],
        ['xxxxxxxxxx', 6, 25],
        ['next', 32, undefined],
        ['yyyyyyyyyy', 37, 12],
      ]);
    }
  });

  it('cuts a top-level array into its elements, numbered, and keeps the head of one over the cap', () => {
    const text = ' [ {"a":"]"} , [1,2], 7, "s" ,{"big":"0123456789abcdef"} ]\n{"after":1}';
    const d = new DocumentSplitter(12);
    const out: [string, number | undefined, number | undefined][] = [];
    const on = (doc: Buffer, _off: number, over?: number, index?: number) =>
      out.push([doc.toString(), over, index]);
    for (const ch of text) d.push(Buffer.from(ch), on);
    d.end(on);
    expect(out).toEqual([
      ['{"a":"]"}', undefined, 0],
      ['[1,2]', undefined, 1],
      ['7', undefined, 2],
      ['"s"', undefined, 3],
      ['{"big":"0123', 26, 4],
      ['{"after":1}', undefined, undefined],
    ]);
  });

  it('reads a 40 MB line inside a small gzip holding only the cap of it', async () => {
    const line = Buffer.alloc(40 * 1024 * 1024, 0x61);
    const gz = gzipSync(Buffer.concat([Buffer.from('{"a":1}\n'), line, Buffer.from('\n{"b":2}\n')]));
    expect(gz.length).toBeLessThan(100 * 1024);
    const seen: [number, number | undefined][] = [];
    for await (const recs of frameInput(Readable.from([gz]), { maxRecordBytes: 1024 * 1024 }))
      for (const r of recs) seen.push([r.data.length, r.oversize]);
    expect(seen).toEqual([
      [7, undefined],
      [1024 * 1024, 40 * 1024 * 1024],
      [7, undefined],
    ]);
  });
});

describe('frameInput from a pipe that delivers a byte at a time (found by the fuzz suite)', () => {
  const bytes = (b: Buffer) => Readable.from([...b].map((x) => Buffer.from([x])));
  const read = async (input: Readable) => {
    const out: string[] = [];
    for await (const recs of frameInput(input)) for (const r of recs) out.push(r.data.toString());
    return out;
  };

  it('still recognises gzip by its two magic bytes', async () => {
    expect(await read(bytes(gzipSync(Buffer.from('{"a":1}\n{"b":2}\n'))))).toEqual(['{"a":1}', '{"b":2}']);
  });

  it('still tells a pretty-printed document from JSON lines', async () => {
    expect(await read(bytes(Buffer.from('{\n  "items": [1,\n 2]\n}\n')))).toEqual([
      '{\n  "items": [1,\n 2]\n}',
    ]);
  });
});
