/**
 * Property tests over the decoders and the webhook: random mixes of good events, bad items and
 * events nested past the depth limit, as JSON lines, arrays and EventLists, gzipped or not, cut
 * into random chunks. Invariants: nothing throws, every good event is stored exactly once, every
 * bad one is counted and kept aside. A fixed seed and a short budget in `npm test`;
 * `npm run fuzz` runs longer (KAUDIT_FUZZ_RUNS).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { DeadLetter } from '../../src/collect/dead-letter.js';
import { ingest } from '../../src/collect/ingest.js';
import { memoryLogger } from '../../src/collect/logger.js';
import type { PipelineItem } from '../../src/collect/pipeline.js';
import { WebhookHandler } from '../../src/collect/webhook-source.js';
import { statusCodeOf } from '../../src/model/derive.js';
import { STAGES } from '../../src/model/event.js';
import { MAX_JSON_DEPTH } from '../../src/model/json.js';
import { DEFAULT_PREPARE_OPTIONS, prepareLine, prepareValue } from '../../src/model/prepare.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';

const RUNS = Number(process.env.KAUDIT_FUZZ_RUNS ?? 40);
const SEED = Number(process.env.KAUDIT_FUZZ_SEED ?? 20261204);

type Item =
  | { kind: 'good'; stage: string; verb: string; user: string; depth: number }
  | { kind: 'bad'; value: unknown };

const goodItem: fc.Arbitrary<Item> = fc.record({
  kind: fc.constant('good' as const),
  stage: fc.constantFrom(...STAGES),
  verb: fc.constantFrom('get', 'list', 'create', 'watch', 'delete'),
  user: fc.string({ maxLength: 20 }),
  // Mostly shallow; now and then past the limit.
  depth: fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: 20 }) },
    fc.integer({ min: 900, max: 1400 }),
  ),
});

const badItem: fc.Arbitrary<Item> = fc
  .oneof(
    fc.integer(),
    fc.string({ maxLength: 30 }),
    fc.constant(null),
    fc.boolean(),
    fc.constantFrom('auditID', 'stage', 'verb', 'requestReceivedTimestamp').map((missing) => ({ missing })),
    fc.constant({ wrongStage: true }),
  )
  .map((value) => ({ kind: 'bad' as const, value }));

const items = fc.array(fc.oneof({ weight: 4, arbitrary: goodItem }, badItem), {
  minLength: 1,
  maxLength: 30,
});

function nested(depth: number): unknown {
  let v: unknown = {};
  for (let i = 1; i < depth; i++) v = { a: v };
  return v;
}

/** The JSON of each item; good events get unique IDs. */
function render(list: Item[]): { values: unknown[]; good: string[]; bad: number; deep: number } {
  const values: unknown[] = [];
  const good: string[] = [];
  let bad = 0;
  let deep = 0;
  list.forEach((it, i) => {
    const event: Record<string, unknown> = {
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      level: 'RequestResponse',
      auditID: `id-${i}`,
      stage: it.kind === 'good' ? it.stage : 'ResponseComplete',
      requestURI: '/api/v1/namespaces/default/configmaps',
      verb: it.kind === 'good' ? it.verb : 'get',
      user: { username: it.kind === 'good' ? it.user : 'u' },
      requestReceivedTimestamp: '2026-11-26T10:00:00.000000Z',
      stageTimestamp: '2026-11-26T10:00:00.010000Z',
    };
    if (it.kind === 'good') {
      if (it.depth > 0) event.requestObject = nested(it.depth);
      // The event is one level, its requestObject the next.
      if (it.depth + 1 > MAX_JSON_DEPTH) deep++;
      good.push(`id-${i}`);
      values.push(event);
      return;
    }
    bad++;
    const v = it.value;
    if (typeof v === 'object' && v !== null && 'missing' in v) {
      delete event[String(v.missing)];
      values.push(event);
    } else if (typeof v === 'object' && v !== null && 'wrongStage' in v)
      values.push({ ...event, stage: 'Nope' });
    else values.push(v);
  });
  return { values, good, bad, deep };
}

/** Deep values are written by hand: JSON.stringify would need the stack they are meant to test. */
function toJson(v: unknown): string {
  if (typeof v !== 'object' || v === null) return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(toJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  if ('a' in o && Object.keys(o).length === 1) {
    let depth = 0;
    let cur: unknown = o;
    while (typeof cur === 'object' && cur !== null && 'a' in cur) {
      depth++;
      cur = (cur as { a: unknown }).a;
    }
    return `${'{"a":'.repeat(depth)}{}${'}'.repeat(depth)}`;
  }
  return `{${Object.entries(o)
    .map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`)
    .join(',')}}`;
}

const encodings = fc.constantFrom('lines', 'array', 'eventlist');

function encode(values: unknown[], encoding: string, pretty: boolean): Buffer {
  const sep = pretty ? ',\n  ' : ',';
  if (encoding === 'lines') return Buffer.from(values.map((v) => `${toJson(v)}\n`).join(''));
  const arr = `[${values.map(toJson).join(sep)}]`;
  if (encoding === 'array') return Buffer.from(pretty ? `${arr}\n` : arr);
  return Buffer.from(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":${arr}}`);
}

function chunked(buf: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < buf.length; i++) {
    const n = sizes[i % sizes.length] ?? 1024;
    out.push(buf.subarray(at, at + n));
    at += n;
  }
  return out;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A webhook handler that records what it offers to the pipeline, each item acknowledged at once. */
function receiver() {
  const offered: PipelineItem[] = [];
  const h = new WebhookHandler({
    config: {
      type: 'webhook',
      name: 'fuzz',
      listen: { host: '127.0.0.1', port: 0 },
      path: '/audit',
      source: 'kubernetes.audit',
      service: 'audit',
      maxBodyBytes: 1024 * 1024,
    },
    prepare: {
      options: DEFAULT_PREPARE_OPTIONS,
      line: (b) => prepareLine(b),
      value: (v) => prepareValue(v),
    },
    tryOffer: (item) => {
      offered.push(item);
      queueMicrotask(() => item.done?.());
      return true;
    },
    log: memoryLogger(),
  });
  return { h, offered };
}

describe('fuzz: decoders', () => {
  it('prepareValue: good events out once each, every bad item and every too-deep event kept aside', () => {
    fc.assert(
      fc.property(items, fc.boolean(), (list, asList) => {
        const { values, good, bad, deep } = render(list);
        const body = asList ? { kind: 'EventList', items: values } : values;
        const p = prepareValue(JSON.parse(toJson(body)));
        const ids = p.events.map((e) => (JSON.parse(e.toString()) as { auditID: string }).auditID);
        expect(ids).toEqual(good);
        expect(p.rejected?.length ?? 0).toBe(bad + deep);
        expect(p.truncated).toBe(deep);
      }),
      { seed: SEED, numRuns: RUNS * 5 },
    );
  });

  it('prepareLine never throws on mutated bytes', () => {
    const line = Buffer.from(
      toJson(
        render([{ kind: 'good', stage: 'ResponseComplete', verb: 'get', user: 'u', depth: 3 }]).values[0],
      ),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        (edits) => {
          const b = Buffer.from(line);
          for (const [at, byte] of edits) b[at % b.length] = byte;
          const p = prepareLine(b);
          // A line on the fast path is passed on as it is (the store validates it in bulk and
          // rejects what is not JSON); anything prepareLine wrote itself is JSON.
          for (const e of p.events) if (!e.equals(b)) expect(() => JSON.parse(e.toString())).not.toThrow();
          expect(p.events.length > 0 || p.malformed !== undefined).toBe(true);
        },
      ),
      { seed: SEED, numRuns: RUNS * 10 },
    );
  });

  it('ingest: every good event stored exactly once, every bad one counted and dead-lettered, any framing', async () => {
    await fc.assert(
      fc.asyncProperty(
        items,
        encodings,
        fc.boolean(),
        fc.boolean(),
        fc.array(fc.integer({ min: 1, max: 4096 }), { minLength: 1, maxLength: 5 }),
        async (list, encoding, pretty, gzip, sizes) => {
          const { values, good, bad, deep } = render(list);
          let bytes = encode(values, encoding, pretty);
          if (gzip) bytes = gzipSync(bytes);
          const dir = mkdtempSync(join(tmpdir(), 'kaudit-fuzz-'));
          dirs.push(dir);
          const store = new MemoryStore();
          const deadLetter = new DeadLetter(dir);
          const s = await ingest([{ path: '-', stream: Readable.from(chunked(bytes, sizes)) }], {
            store,
            cluster: 'fuzz',
            deadLetter,
            log: memoryLogger(),
          });
          await deadLetter.close();
          const stored = [...store.rows.values()].map((r) => r.audit_id).sort();
          expect(stored).toEqual([...good].sort());
          expect(s.stored).toBe(good.length);
          expect(s.malformed).toBe(bad + deep);
          expect(s.truncated).toBe(deep);
          const letters = existsSync(deadLetter.path)
            ? readFileSync(deadLetter.path, 'utf8').split('\n').filter(Boolean)
            : [];
          expect(letters).toHaveLength(bad + deep);
          rmSync(dir, { recursive: true, force: true });
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
  });
});

/** Number tokens as JSON allows them, many beyond what a double keeps (2^53, the float range). */
const numberToken: fc.Arbitrary<string> = fc.oneof(
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map(String),
  fc
    .tuple(
      fc.integer({ min: 1, max: 9 }),
      fc.constantFrom('e', 'E', 'e+', 'e-'),
      fc.integer({ min: 0, max: 500 }),
    )
    .map(([m, e, x]) => `${m}${e}${x}`),
  fc.constantFrom(
    '-0',
    '1.0',
    '200.5',
    '1e400',
    '-1e400',
    '99999999999999999999',
    '9007199254740993',
    '2147483648',
  ),
);

describe('fuzz: numbers', () => {
  function eventText(token: string, latencyDigits: number, variant: string): string {
    const resource = variant === 'redacted' ? 'secrets' : 'configmaps';
    const text =
      '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"n-1",' +
      `"stage":"ResponseComplete","requestURI":"/api/v1/namespaces/ns/${resource}","verb":"create",` +
      '"user":{"username":"u"},"sourceIPs":["10.0.0.1"],"userAgent":"kubectl",' +
      `"objectRef":{"resource":"${resource}","namespace":"ns","name":"x","apiVersion":"v1"},` +
      `"responseStatus":{"metadata":{},"code":${token}},"requestObject":{"spec":{"replicas":${token},"list":[${token}]}},` +
      '"requestReceivedTimestamp":"2026-11-26T10:00:00.000000Z","stageTimestamp":"2026-11-26T10:00:00.010000Z",' +
      `"annotations":{"apiserver.latency.k8s.io/etcd":"${'9'.repeat(latencyDigits)}ms"}}`;
    return variant === 'pretty' ? text.replaceAll('":', '": ') : text;
  }

  it('a number in any field the model reads: stored as written, its column an int32 or empty, on every path', async () => {
    await fc.assert(
      fc.asyncProperty(
        numberToken,
        fc.integer({ min: 1, max: 400 }),
        fc.constantFrom('fast', 'redacted', 'pretty', 'webhook'),
        async (token, latencyDigits, variant) => {
          const text = eventText(token, latencyDigits, variant);
          let events: Buffer[];
          if (variant === 'webhook') {
            const { h, offered } = receiver();
            const body = `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[${text}]}`;
            const res = await h.fetch(new Request('http://127.0.0.1/audit', { method: 'POST', body }));
            expect(res.status).toBe(200);
            events = offered.flatMap((i) => i.events);
          } else {
            const p = prepareLine(Buffer.from(text));
            expect(p.malformed).toBeUndefined();
            events = p.events;
          }
          expect(events).toHaveLength(1);
          const stored = events[0]?.toString() ?? '';
          // Kept as written: the status code and both body numbers, whatever a double makes of them.
          expect(
            stored.split(/:\s?|,|\[/).filter((t) => t.replace(/[}\]]+$/, '') === token).length,
          ).toBeGreaterThanOrEqual(3);
          const store = new MemoryStore();
          const result = await store.write({ cluster: 'fuzz', events });
          expect(result.stored).toBe(1);
          const row = [...store.rows.values()][0];
          expect(row?.code).toBe(statusCodeOf(Number(token)));
          for (const ms of Object.values(row?.latency_breakdown ?? {}))
            expect(Number.isFinite(ms)).toBe(true);
        },
      ),
      { seed: SEED, numRuns: RUNS * 10 },
    );
  });
});

describe('fuzz: webhook', () => {
  const post = (body: Buffer, gzip: boolean) =>
    new Request('http://127.0.0.1/audit', {
      method: 'POST',
      body: gzip ? gzipSync(body) : body,
      headers: gzip ? { 'content-encoding': 'gzip' } : {},
    });

  it('answers 200 with every good event offered once and every bad one kept aside, never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        items,
        fc.constantFrom('array', 'eventlist'),
        fc.boolean(),
        async (list, encoding, gzip) => {
          const { values, good, bad, deep } = render(list);
          const { h, offered } = receiver();
          const res = await h.fetch(post(encode(values, encoding, false), gzip));
          if (good.length === 0 && bad === 0) return;
          expect(res.status).toBe(200);
          const ids = offered.flatMap((i) =>
            i.events.map((e) => (JSON.parse(e.toString()) as { auditID: string }).auditID),
          );
          expect(ids).toEqual(good);
          expect(offered.flatMap((i) => i.deadLetters)).toHaveLength(bad + deep);
        },
      ),
      { seed: SEED, numRuns: RUNS * 2 },
    );
  });

  it('answers random bytes with a 4xx, never a 5xx or a throw', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), fc.boolean(), async (bytes, gzip) => {
        const { h } = receiver();
        const res = await h.fetch(post(Buffer.from(bytes), gzip));
        expect([200, 400, 413, 415]).toContain(res.status);
      }),
      { seed: SEED, numRuns: RUNS * 5 },
    );
  });
});
