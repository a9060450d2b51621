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
    expect(docs.map(([t]) => JSON.parse(t))).toEqual([{ a: '}{', b: [1, { c: '"}' }] }, [1]]);
    expect(docs[1]?.[1]).toBe(text.indexOf('\n[') + 1);
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
  it('reads gzip transparently, by magic bytes', async () => {
    const gz = gzipSync(Buffer.from('{"a":1}\n{"b":2}\n'));
    const seen: string[] = [];
    for await (const recs of frameInput(Readable.from([gz])))
      for (const r of recs) seen.push(r.data.toString());
    expect(seen).toEqual(['{"a":1}', '{"b":2}']);
  });
});
