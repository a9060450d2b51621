import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateLines } from '../simulate/generator.js';
import { eventKey } from './event-key.js';
import {
  FACT_CONTROL,
  FACT_KEY,
  FACT_LATENCY,
  FACT_PLAIN,
  type FactOptions,
  type LineScanner,
  newEventScanner,
  newLineScanner,
  STAGING_ROW,
  stagingTag,
} from './event-scan.js';
import { LineSplitter } from './frame.js';
import { DEFAULT_PREPARE_OPTIONS, prepareLine } from './prepare.js';

const ID = '7b5bcf9e-4a43-4b1c-9c3d-2f1b7a8e0d11';
const FACTS: FactOptions = {
  plain: true,
  maxEventBytes: DEFAULT_PREPARE_OPTIONS.maxEventBytes,
  redact: true,
};

interface LineParts {
  id?: string;
  stage?: string;
  uri?: string;
  resource?: string;
  body?: object;
  received?: string;
  stageAt?: string;
  annotations?: Record<string, string> | null;
}

/** A line in kube-apiserver's field order and spacing. */
function line(p: LineParts = {}): string {
  const annotations =
    p.annotations === null
      ? ''
      : `,"annotations":${JSON.stringify(p.annotations ?? { 'authorization.k8s.io/decision': 'allow' })}`;
  return (
    `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"${p.id ?? ID}",` +
    `"stage":"${p.stage ?? 'ResponseComplete'}","requestURI":"${p.uri ?? '/api/v1/namespaces/ns/configmaps'}","verb":"create",` +
    `"user":{"username":"alice"},"objectRef":{"resource":"${p.resource ?? 'configmaps'}","namespace":"ns","apiVersion":"v1"},` +
    `"responseStatus":{"metadata":{},"code":201}${p.body === undefined ? '' : `,"requestObject":${JSON.stringify(p.body)}`},` +
    `"requestReceivedTimestamp":"${p.received ?? '2026-11-26T10:00:00.123456Z'}",` +
    `"stageTimestamp":"${p.stageAt ?? '2026-11-26T10:00:00.200000Z'}"${annotations}}`
  );
}

interface Facts {
  control: boolean;
  plain: boolean;
  key: { id: string; stageMs: number; mayHaveLatency: boolean } | null;
}

const STAGES = ['', 'RequestReceived', 'ResponseStarted', 'ResponseComplete', 'Panic'];

function factsOf(lines: readonly Buffer[], opts: FactOptions = FACTS): Facts[] {
  const scanner = newEventScanner();
  scanner.load(lines, 0, lines.length);
  scanner.readFacts(opts);
  return lines.map((_l, i) => {
    const flags = scanner.flags(i);
    let key: Facts['key'] = null;
    if ((flags & FACT_KEY) !== 0) {
      const at = scanner.wordsAt(i);
      const hex = [0, 1, 2, 3]
        .map((k) => (scanner.u32[at + k] as number).toString(16).padStart(8, '0'))
        .join('');
      const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
      key = {
        id: `${uuid}","stage":"${STAGES[scanner.u32[at + 4] as number]}`,
        stageMs: scanner.stageMs(i),
        mayHaveLatency: (flags & FACT_LATENCY) !== 0,
      };
    }
    return { control: (flags & FACT_CONTROL) !== 0, plain: (flags & FACT_PLAIN) !== 0, key };
  });
}

/** What the JS readers say, which the module must agree with wherever it answers. */
function agrees(l: Buffer, f: Facts, opts: FactOptions = FACTS): void {
  const control = l.indexOf(0x1f) >= 0 || l.indexOf(0x0a) >= 0 || l.indexOf(0x0d) >= 0;
  expect(f.control).toBe(control);
  if (f.plain) {
    const prepared = prepareLine(l, opts);
    expect(prepared.events).toHaveLength(1);
    expect(prepared.events[0]).toBe(l);
  }
  if (f.key !== null) expect(f.key).toEqual(eventKey(l));
}

describe('EventScanner', () => {
  it('reads the key, stage time and latency hint of kube-apiserver lines as eventKey does', () => {
    const lines = [
      line(),
      line({ annotations: null }),
      line({ annotations: { 'apiserver.latency.k8s.io/etcd': '1.5s' } }),
      line({ stage: 'RequestReceived', stageAt: '2026-11-26T10:00:00Z' }),
      line({ stage: 'Panic', stageAt: '2024-02-29T23:59:59.5Z' }),
      line({ stageAt: '2026-11-26T10:00:00.999999999Z' }),
      line({ body: { kind: 'ConfigMap', data: { big: 'x'.repeat(3000) } } }),
    ].map((s) => Buffer.from(s));
    const facts = factsOf(lines);
    expect(facts.map((f) => f.key?.stageMs)).toEqual([
      Date.parse('2026-11-26T10:00:00.200Z'),
      Date.parse('2026-11-26T10:00:00.200Z'),
      Date.parse('2026-11-26T10:00:00.200Z'),
      Date.parse('2026-11-26T10:00:00Z'),
      Date.parse('2024-02-29T23:59:59.500Z'),
      Date.parse('2026-11-26T10:00:00.999Z'),
      Date.parse('2026-11-26T10:00:00.200Z'),
    ]);
    expect(facts.map((f) => f.key?.mayHaveLatency)).toEqual([false, false, true, false, false, false, false]);
    expect(facts[0]?.key?.id).toBe(`${ID}","stage":"ResponseComplete`);
    for (const [i, f] of facts.entries()) agrees(lines[i] as Buffer, f);
  });

  it('leaves to eventKey what it does not read itself', () => {
    const lines = [
      line({ id: ID.toUpperCase() }),
      line({ id: 'not-a-uuid' }),
      line({ id: 'a\\"b' }),
      line({ stage: 'Finished' }),
      line({ stageAt: '2026-02-30T10:00:00Z' }),
      line({ stageAt: '2026-13-01T10:00:00Z' }),
      line({ stageAt: '0026-11-26T10:00:00Z' }),
      line({ stageAt: '2026-11-26T12:00:00.250+02:00' }),
      line({ received: 'yesterday' }),
      JSON.stringify({
        auditID: ID,
        stage: 'ResponseComplete',
        requestReceivedTimestamp: '2026-11-26T10:00:00Z',
      }),
    ].map((s) => Buffer.from(s));
    const facts = factsOf(lines);
    expect(facts.map((f) => f.key)).toEqual(lines.map(() => null));
    // eventKey still has an answer for some of them: the store asks it.
    expect(eventKey(lines[0] as Buffer)?.id).toBe(`${ID.toUpperCase()}","stage":"ResponseComplete`);
    expect(eventKey(lines[7] as Buffer)?.stageMs).toBe(Date.parse('2026-11-26T10:00:00.250Z'));
  });

  it('flags raw control characters anywhere in the event', () => {
    const base = line();
    const lines = [
      `${base.slice(0, 100)}\r${base.slice(100)}`,
      `${base}\x1f`,
      `${base.slice(0, 700)}\n${base.slice(700)}`,
      base,
    ];
    expect(factsOf(lines.map((s) => Buffer.from(s))).map((f) => f.control)).toEqual([
      true,
      true,
      true,
      false,
    ]);
  });

  it('calls a line plain only when prepareLine would pass it through', () => {
    const lines = [
      line(),
      line({ uri: '/api/v1/pods?limit=500&resourceVersion=0' }),
      line({ uri: '/api/v1/namespaces/ns/pods/p/exec?command=sh&TOKEN=abc' }),
      line({ uri: '/apis/x?code=1' }),
      line({ resource: 'secrets', body: { kind: 'Secret', data: { a: 'b' } } }),
      line({ body: { kind: 'List', items: [{ kind: 'Secret', data: { a: 'b' } }] } }),
      line({ body: { kind: 'Pod', spec: { volumes: [{ secret: { secretName: 'token' } }] } } }),
      line({ resource: 'serviceaccounts', body: { kind: 'TokenRequest' } }),
      `${line()}\r`,
      `{"apiVersion":"audit.k8s.io/v1","kind":"Event","auditID":"${ID}"}`,
    ].map((s) => Buffer.from(s));
    const facts = factsOf(lines);
    expect(facts.map((f) => f.plain)).toEqual([
      true,
      true,
      false,
      false,
      false,
      false,
      true,
      false,
      false,
      false,
    ]);
    for (const [i, f] of facts.entries()) agrees(lines[i] as Buffer, f);
    // Without redaction only the shape matters; over the size limit nothing is plain.
    const noRedact = { ...FACTS, redact: false };
    expect(factsOf(lines, noRedact).map((f) => f.plain)).toEqual([
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      false,
      false,
    ]);
    expect(factsOf([lines[0] as Buffer], { ...FACTS, maxEventBytes: 100 })[0]?.plain).toBe(false);
  });

  it('finds credential words in the query and sensitive kinds in bodies at every offset, in any case', () => {
    // The module reads sixteen bytes at a time: each word is tried at every position in a block,
    // across block ends and in the tail, and so are near misses that must not count.
    const words = [
      'token',
      'SECRET',
      'Passw',
      'kEy',
      'sig',
      'code=',
      'tokn',
      'secre',
      'pas',
      'ke',
      'si',
      'cod',
    ];
    const kinds = [
      'Secret',
      'SecretList',
      'TokenReview',
      'TokenRequest',
      'Secrets',
      'Token',
      'SecretLis',
      'TokenRev',
    ];
    const credential = /token|secret|passw|key|sig|code=/i;
    const sensitive = new Set(['Secret', 'SecretList', 'TokenReview', 'TokenRequest']);
    const lines: Buffer[] = [];
    const plain: boolean[] = [];
    for (let pad = 0; pad < 40; pad++) {
      for (const w of words) {
        lines.push(Buffer.from(line({ uri: `/api/v1/pods?${'x'.repeat(pad)}${w}` })));
        lines.push(Buffer.from(line({ uri: `/api/v1/pods?${'y'.repeat(pad)}${w}=1&limit=500` })));
        plain.push(!credential.test(w), !credential.test(`${w}=1&limit=500`));
      }
      for (const kind of kinds) {
        const l = line({ body: { metadata: { name: 'n'.repeat(pad) }, kind } });
        // Also with the body last, its kind in the line's final bytes.
        const bodyLast = `${l.slice(0, l.indexOf(',"requestReceivedTimestamp"'))}}`;
        lines.push(Buffer.from(l), Buffer.from(bodyLast));
        plain.push(!sensitive.has(kind), !sensitive.has(kind));
      }
    }
    const facts = factsOf(lines);
    expect(facts.map((f) => f.plain)).toEqual(plain);
    for (const [i, f] of facts.entries()) agrees(lines[i] as Buffer, f);
    expect(plain.filter((p) => p).length).toBeGreaterThan(400);
    expect(plain.filter((p) => !p).length).toBeGreaterThan(400);
  });

  it('calls no line plain that repeats a key the store reads (model/duplicate-key.ts), as prepareLine', () => {
    const base = line({ body: { metadata: { name: 'a' }, spec: { name: 'b', name2: 'c' } } });
    const lines = [
      base,
      base.replace('"verb":"create",', '"verb":"create","verb":"delete",'),
      base.replace('"username":"alice"', '"username":"alice","username":"mallory"'),
      base.replace('"code":201', '"code":201,"code":403'),
      base.replace('"namespace":"ns"', '"namespace":"ns","namespace":"kube-system"'),
      base.replace('/decision":"allow"', '/decision":"allow","authorization.k8s.io/decision":"forbid"'),
      base.replace('"verb":"create",', '"verb":"create","ver\\u0062":"delete",'),
      base.replace('"name2":"c"', '"name":"c"'),
      base.replace('"stageTimestamp"', '"requestObject":{},"stageTimestamp"'),
    ].map((s) => Buffer.from(s));
    const facts = factsOf(lines);
    expect(facts.map((f) => f.plain)).toEqual([true, false, false, false, false, false, false, true, false]);
    expect(lines.map((l) => prepareLine(l).events[0] === l)).toEqual(facts.map((f) => f.plain));
    const noRedact = { ...FACTS, redact: false };
    expect(factsOf(lines, noRedact).map((f) => f.plain)).toEqual(facts.map((f) => f.plain));
  });

  it('agrees with the JS readers on every line of the shared samples and of simulated traffic', () => {
    const dir = join(import.meta.dirname, '../../test/fixtures/third-party/samples');
    const inputs = readdirSync(dir)
      .filter((n) => !n.endsWith('.gz'))
      .map((n) => readFileSync(join(dir, n)));
    // The simulator writes kube-apiserver's layout, with bodies, secrets and tokens among its events.
    inputs.push(Buffer.from([...generateLines({ seed: 7, count: 20_000 })].join('\n')));
    let keyed = 0;
    let plain = 0;
    for (const input of inputs) {
      const lines: Buffer[] = [];
      new LineSplitter().push(Buffer.concat([input, Buffer.from('\n')]), (l) => lines.push(l));
      const facts = factsOf(lines);
      for (const [i, f] of facts.entries()) agrees(lines[i] as Buffer, f);
      keyed += facts.filter((f) => f.key !== null).length;
      plain += facts.filter((f) => f.plain).length;
    }
    expect(keyed).toBeGreaterThan(19_000);
    expect(plain).toBeGreaterThan(19_000);
  });

  it('writes staging rows with the batch index and latency flag after each kept event (STAGING_ROW)', () => {
    const events = ['{"a":1}', '{"b":2}', '{"c":3}'].map((s) => Buffer.from(s));
    const scanner = newEventScanner();
    scanner.load(events, 0, 3);
    scanner.readFacts(FACTS);
    scanner.keep(0, false);
    scanner.keep(2, true);
    expect(scanner.stagingRows(40).toString()).toBe('{"a":1}\x1f80\n{"c":3}\x1f85\n');
    scanner.keep(1, true);
    expect(scanner.stagingRows(0).toString()).toBe('{"a":1}\x1f0\n{"b":2}\x1f3\n{"c":3}\x1f5\n');
    // The tags follow the one definition of the format.
    expect([stagingTag(40, false), stagingTag(42, true)]).toEqual([80, 85]);
    expect(STAGING_ROW.separator).toBe(0x1f);
  });
});

describe('LineScanner', () => {
  it('splits like LineSplitter and marks the plain lines, however many lines a chunk holds', () => {
    const plain = line();
    const lines = Array.from({ length: 20_000 }, (_v, i) => (i % 3 === 0 ? '{}' : i % 3 === 1 ? plain : ''));
    const chunk = Buffer.from(`${lines.join('\n')}\npartial`);
    const found = newLineScanner(DEFAULT_PREPARE_OPTIONS).scan(chunk, 0, chunk.lastIndexOf(0x0a) + 1);
    expect(found.count).toBe(lines.length);
    const got = Array.from({ length: found.count }, (_v, i) =>
      chunk.toString('utf8', found.starts[i] as number, found.ends[i] as number),
    );
    expect(got).toEqual(lines);
    expect(Array.from(found.flags, (f) => f === FACT_PLAIN)).toEqual(lines.map((l) => l === plain));
  });

  it('gives LineSplitter the same lines and offsets across chunk boundaries', () => {
    const text = `${line()}\n{"x":1}\n\n${line({ stage: 'ResponseStarted' })}\nlast`;
    const collect = (scanner?: LineScanner) => {
      const out: [string, number, boolean][] = [];
      const s = new LineSplitter(10, scanner);
      const onLine = (l: Buffer, o: number, p: boolean) => out.push([l.toString(), o, p]);
      for (let i = 0; i < text.length; i += 97) s.push(Buffer.from(text.slice(i, i + 97)), onLine);
      s.end(onLine);
      return out;
    };
    const plainFlags = collect(newLineScanner(DEFAULT_PREPARE_OPTIONS));
    const without = collect();
    expect(plainFlags.map(([l, o]) => [l, o])).toEqual(without.map(([l, o]) => [l, o]));
    expect(without.map(([, , p]) => p)).toEqual([false, false, false, false, false]);
    // A line split across chunks is joined in JS and not marked; whole ones in a chunk are.
    expect(collect(newLineScanner(DEFAULT_PREPARE_OPTIONS)).some(([, , p]) => p)).toBe(false);
    const whole = new LineSplitter(0, newLineScanner(DEFAULT_PREPARE_OPTIONS));
    const flags: boolean[] = [];
    whole.push(Buffer.from(`${text}\n`), (_l, _o, p) => flags.push(p));
    expect(flags).toEqual([true, false, false, true, false]);
  });
});

describe('without WebAssembly (KAUDIT_WASM=off)', () => {
  beforeEach(() => {
    process.env.KAUDIT_WASM = 'off';
  });
  afterEach(() => {
    delete process.env.KAUDIT_WASM;
  });

  it('writes the same staging rows and flags the same control characters, with no keys', () => {
    const events = [line(), `${line()}\r`, '{"b":2}'].map((s) => Buffer.from(s));
    const rows = (scanner: ReturnType<typeof newEventScanner>) => {
      scanner.load(events, 0, 3);
      scanner.readFacts(FACTS);
      const flags = [0, 1, 2].map((i) => scanner.flags(i));
      scanner.keep(0, false);
      scanner.keep(1, true);
      scanner.keep(2, true);
      return { flags, rows: scanner.stagingRows(7).toString() };
    };
    const js = rows(newEventScanner());
    delete process.env.KAUDIT_WASM;
    const wasm = rows(newEventScanner());
    expect(js.flags).toEqual([0, FACT_CONTROL, 0]);
    expect(wasm.flags.map((f) => f & FACT_CONTROL)).toEqual(js.flags);
    expect((wasm.flags[0] ?? 0) & FACT_KEY).toBe(FACT_KEY);
    expect(js.rows).toBe(wasm.rows);
  });

  it('splits lines like the module and marks none plain', () => {
    const chunk = Buffer.from(`${line()}\n\n{"x":1}\nrest`);
    const js = newLineScanner(DEFAULT_PREPARE_OPTIONS).scan(chunk, 0, chunk.lastIndexOf(0x0a) + 1);
    delete process.env.KAUDIT_WASM;
    const wasm = newLineScanner(DEFAULT_PREPARE_OPTIONS).scan(chunk, 0, chunk.lastIndexOf(0x0a) + 1);
    expect([...js.starts]).toEqual([...wasm.starts]);
    expect([...js.ends]).toEqual([...wasm.ends]);
    expect([...js.flags]).toEqual([0, 0, 0]);
    expect([...wasm.flags]).toEqual([FACT_PLAIN, 0, 0]);
  });
});
