/**
 * The DuckDB store computes its columns in SQL from the event's text, which reaches it either as
 * written (the fast path: a plain kube-apiserver line is not parsed in JS) or as JSON.stringify
 * wrote it (the parsed path). Both must give the columns the reference gives (model/derive.ts, as
 * the memory store applies it to JSON.parse's reading of the same text), whatever odd value a
 * field holds: numbers a double or an int32 cannot hold, status codes as strings or fractions,
 * latency annotations that are not quite Go durations, years past 9999, duplicate keys.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTimestampMicros } from '../../src/model/derive.js';
import { FACT_PLAIN, newLineScanner } from '../../src/model/event-scan.js';
import { DEFAULT_PREPARE_OPTIONS, fastPathUnsafe, prepareLine } from '../../src/model/prepare.js';
import { DuckDBStore } from '../../src/store/duckdb/duckdb-store.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';

const RUNS = Number(process.env.KAUDIT_FUZZ_RUNS ?? 40);
const SEED = Number(process.env.KAUDIT_FUZZ_SEED ?? 20261204);

const codeToken: fc.Arbitrary<string> = fc.oneof(
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
  fc.constantFrom(
    '200',
    '200.5',
    '200.0',
    '2e2',
    '2.005e2',
    '"200"',
    '"403"',
    'true',
    'null',
    '[200]',
    '{"x":200}',
    '-0',
    '1e400',
    '-1e400',
    '2147483647',
    '2147483648',
    '-2147483648',
    '-2147483649',
    '2147483647.0000000001',
    '99999999999999999999',
  ),
);

const unit = fc.constantFrom('ns', 'us', 'µs', 'μs', 'ms', 's', 'm', 'h', 'd', 'S', '');
const durationNumber = fc.oneof(
  fc.nat(100_000).map(String),
  fc.double({ min: 0, max: 1e6, noNaN: true }).map(String),
  fc.constantFrom('.5', '1.', '1e3', ' 1', '+1', '0x10', '1_000', '00.25', '', 'inf', 'NaN'),
  fc.integer({ min: 1, max: 400 }).map((n) => '9'.repeat(n)),
);
const duration: fc.Arbitrary<string> = fc.oneof(
  fc
    .tuple(
      fc.constantFrom('', '', '-', '--'),
      fc.array(fc.tuple(durationNumber, unit), { minLength: 1, maxLength: 3 }),
    )
    .map(([sign, parts]) => sign + parts.map(([n, u]) => n + u).join('')),
  fc.constantFrom('0', '0s', '-0s', '', 'ms', '1.2.3s', '1h2m3.5s', '2562047h47m16.854775807s'),
);

const pad = (n: number, w: number) => String(n).padStart(w, '0');
const timestamp: fc.Arbitrary<string> = fc
  .record({
    year: fc.oneof(
      fc.integer({ min: 1970, max: 2100 }),
      fc.constantFrom(0, 1, 999, 9999, 10000, 12026, 999999),
    ),
    month: fc.integer({ min: 1, max: 12 }),
    day: fc.integer({ min: 1, max: 28 }),
    hour: fc.integer({ min: 0, max: 23 }),
    minute: fc.integer({ min: 0, max: 59 }),
    second: fc.integer({ min: 0, max: 59 }),
    fraction: fc.stringMatching(/^[0-9]{0,12}$/),
    zone: fc.constantFrom('Z', 'Z', '+02:00', '-05:30', '+00:00'),
  })
  .map(
    (t) =>
      `${pad(t.year, 4)}-${pad(t.month, 2)}-${pad(t.day, 2)}T${pad(t.hour, 2)}:${pad(t.minute, 2)}:${pad(t.second, 2)}` +
      `${t.fraction === '' ? '' : `.${t.fraction}`}${t.zone}`,
  );

/** A field of the event, as its key and its value's JSON; duplicates are allowed on purpose. */
type Field = [string, string];

const dupeTarget = fc.constantFrom(
  'verb',
  'user',
  'username',
  'objectRef',
  'namespace',
  'code',
  'stageTimestamp',
  'decision',
  'latency',
  'userAgent',
  'sourceIPs',
);

interface Case {
  code: string;
  latency: string;
  received: string;
  stage: string;
  dupe: string | null;
  path: 'fast' | 'spaced' | 'parsed';
}

const oneCase: fc.Arbitrary<Case> = fc.record({
  code: codeToken,
  latency: duration,
  received: fc.oneof({ weight: 3, arbitrary: fc.constant('2026-11-26T10:00:00.000000Z') }, timestamp),
  stage: fc.oneof({ weight: 3, arbitrary: fc.constant('2026-11-26T10:00:00.010000Z') }, timestamp),
  dupe: fc.option(dupeTarget, { freq: 2 }),
  path: fc.constantFrom('fast', 'spaced', 'parsed'),
});

const obj = (fields: Field[], spaced: boolean) =>
  `{${fields.map(([k, v]) => `${JSON.stringify(k)}:${spaced ? ' ' : ''}${v}`).join(',')}}`;

/** The event's text in kube-apiserver's field order, with the case's odd values and duplicate. */
function eventText(c: Case, id: string): string {
  const s = c.path === 'spaced';
  const d = (what: string, first: Field, second: Field): Field[] =>
    c.dupe === what ? [first, second] : [second];
  const str = JSON.stringify;
  const resource = c.path === 'parsed' ? 'secrets' : 'configmaps';
  const user = obj(d('username', ['username', str('first')], ['username', str('alice')]), s);
  const objectRef = (ns: string) =>
    obj(
      [
        ['resource', str(resource)],
        ...d('namespace', ['namespace', str('first')], ['namespace', str(ns)]),
        ['name', str('x')],
        ['apiVersion', str('v1')],
      ],
      s,
    );
  const status = obj([['metadata', '{}'], ...d('code', ['code', '418'], ['code', c.code])], s);
  const annotations = obj(
    [
      ...d(
        'decision',
        ['authorization.k8s.io/decision', str('forbid')],
        ['authorization.k8s.io/decision', str('allow')],
      ),
      ['authorization.k8s.io/reason', str('RBAC: allowed')],
      ...d(
        'latency',
        ['apiserver.latency.k8s.io/etcd', str('5ms')],
        ['apiserver.latency.k8s.io/etcd', str(c.latency)],
      ),
      ['apiserver.latency.k8s.io/total', str('1.5s')],
    ],
    s,
  );
  const fields: Field[] = [
    ['auditID', str(id)],
    ['stage', str('ResponseComplete')],
    ['requestURI', str(`/api/v1/namespaces/ns/${resource}`)],
    ...d('verb', ['verb', str('delete')], ['verb', str('create')]),
    ...d('user', ['user', obj([['username', str('mallory')]], s)], ['user', user]),
    ...d('sourceIPs', ['sourceIPs', '["10.9.9.9"]'], ['sourceIPs', '["10.0.0.1","10.0.0.2"]']),
    ...d('userAgent', ['userAgent', str('first')], ['userAgent', str('kubectl')]),
    ...d('objectRef', ['objectRef', objectRef('first')], ['objectRef', objectRef('ns')]),
    ['responseStatus', status],
    ['requestReceivedTimestamp', str(c.received)],
    ...d('stageTimestamp', ['stageTimestamp', str('2030-01-01T00:00:00Z')], ['stageTimestamp', str(c.stage)]),
    ['annotations', annotations],
  ];
  // The head kube-apiserver writes (compact, as model/apiserver-line.ts reads it) keeps a spaced
  // line on the fast path.
  const head = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata",`;
  return head + obj(fields, s).slice(1);
}

let dir: string;
let duck: DuckDBStore;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kaudit-agree-'));
  duck = await DuckDBStore.open({ dataDir: dir, threads: 1 });
});
afterAll(async () => {
  await duck.close();
  rmSync(dir, { recursive: true, force: true });
});

const COLUMNS = [
  'verb',
  'username',
  'source_ips',
  'user_agent',
  'namespace',
  'code',
  'decision',
  'reason',
  'latency_ms',
  'latency_breakdown',
] as const;

let batch = 0;

/** `-0s` is -0 ms to both; toEqual tells -0 from 0, and which of the two a sum gives is no matter. */
const withoutNegativeZero = (m: Record<string, number>) =>
  Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v === 0 ? 0 : v]));

describe('fuzz: the DuckDB store agrees with the reference', () => {
  it('stores the same events with the same columns, on the fast and the parsed path, whatever odd value a field holds', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(oneCase, { minLength: 1, maxLength: 12 }), async (cases) => {
        batch++;
        const cluster = `b${batch}`;
        const lines = cases.map((c, i) => Buffer.from(eventText(c, `agree-${batch}-${i}`)));
        const events = lines.flatMap((l) => prepareLine(l).events);
        // The WebAssembly scanner, which picks the fast path's lines when files are read, picks the
        // same ones as prepareLine among kube-apiserver's compact lines, and no others.
        const chunk = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
        const found = newLineScanner(DEFAULT_PREPARE_OPTIONS).scan(chunk, 0, chunk.length);
        lines.forEach((l, i) => {
          const wasm = found.flags[i] === FACT_PLAIN && !fastPathUnsafe(l);
          const js = prepareLine(l).events[0] === l;
          if (cases[i]?.path === 'fast') expect(wasm, `plain: ${l.toString()}`).toBe(js);
          else if (wasm) expect(js, `plain: ${l.toString()}`).toBe(true);
        });
        const mem = new MemoryStore();
        await mem.write({ events, cluster });
        await duck.write({ events, cluster });
        const want = new Map([...mem.rows.values()].map((r) => [r.audit_id, r]));
        const { rows } = await duck.sql(
          `SELECT audit_id, epoch_us(ts) AS ts_us, ${COLUMNS.join(', ')} FROM events WHERE cluster = '${cluster}'`,
          { maxRows: 100, timeoutMs: 60_000 },
        );
        // Stored by one store exactly when stored by the other (the memory store takes any
        // timestamp Date.parse reads; the generated ones are read alike by both).
        expect(rows.map((r) => r.audit_id).sort()).toEqual([...want.keys()].sort());
        for (const row of rows) {
          const ref = want.get(String(row.audit_id));
          if (ref === undefined) throw new Error(`unexpected ${String(row.audit_id)}`);
          const context = `${String(row.audit_id)}: ${lines[Number(String(row.audit_id).split('-')[2])]?.toString()}`;
          expect(Number(row.ts_us), context).toBe(parseTimestampMicros(ref.ts));
          // The reference's microseconds since 1970 are doubles: past 2^53 (the year 2255) they are
          // exact to a few microseconds only; DuckDB's are integers.
          const slackMs = (Math.abs(Number(row.ts_us)) * 2 ** -50) / 1000;
          if (ref.latency_ms === null) expect(row.latency_ms, context).toBeNull();
          else
            expect(Math.abs(Number(row.latency_ms) - ref.latency_ms), context).toBeLessThanOrEqual(
              slackMs + Math.abs(ref.latency_ms) * 1e-12,
            );
          expect(
            {
              verb: row.verb,
              username: row.username,
              source_ips: row.source_ips,
              user_agent: row.user_agent,
              namespace: row.namespace,
              code: row.code,
              decision: row.decision,
              reason: row.reason,
              latency_breakdown: withoutNegativeZero((row.latency_breakdown ?? {}) as Record<string, number>),
            },
            context,
          ).toEqual({
            verb: ref.verb,
            username: ref.username,
            source_ips: ref.source_ips,
            user_agent: ref.user_agent,
            namespace: ref.namespace,
            // -0 is an integer to JSON.parse; DuckDB has no negative zero integer.
            code: ref.code === 0 ? 0 : ref.code,
            decision: ref.decision,
            reason: ref.reason,
            latency_breakdown: withoutNegativeZero(ref.latency_breakdown),
          });
        }
      }),
      { seed: SEED, numRuns: RUNS * 2 },
    );
  });
});
