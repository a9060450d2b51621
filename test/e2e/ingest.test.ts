import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FIXTURES, ndjson, runCli, THIRD_PARTY } from '../helpers/cli.js';

let dir: string;
let data: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kaudit-e2e-'));
  data = join(dir, 'data');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function ingestJson(...args: string[]): Promise<Record<string, number | string>> {
  const r = await runCli(['ingest', '--data', data, '--json', ...args]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as Record<string, number | string>;
}

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const r = await runCli(['query', '--data', data, '--json', sql]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return ndjson(r.stdout);
}

// Expected counts, one event per (auditID, stage), checked by reading each file by hand.
const SAMPLES: [string, number][] = [
  ['audit2rbac-demo.log', 37],
  ['openshift-apiaudit-5.log', 5],
  ['raw_audit_kubernetes.json', 1],
  ['raw_audit_oauth-apiserver.json', 1],
  ['raw_audit_openshift.json', 1],
];

describe('kaudit ingest', () => {
  it.each(SAMPLES)('stores every event of the public sample %s', async (name, count) => {
    const s = await ingestJson(join(THIRD_PARTY, 'samples', name));
    expect(s).toMatchObject({ stored: count, events: count, duplicates: 0, malformed: 0, truncated: 0 });
    expect(await query('SELECT count(*) AS n FROM events')).toEqual([{ n: count }]);
  });

  it('adds no rows when the same files are ingested twice', async () => {
    const first = await ingestJson(join(THIRD_PARTY, 'samples'));
    expect(first.stored).toBe(45);
    const second = await ingestJson(join(THIRD_PARTY, 'samples'));
    expect(second).toMatchObject({ stored: 0, duplicates: 45 });
    expect(await query('SELECT count(*) AS n FROM events')).toEqual([{ n: 45 }]);
  });

  it('dead-letters a malformed line in the middle with its offset and stores the rest', async () => {
    const lines = readFileSync(join(FIXTURES, 'watch-long-running.jsonl'), 'utf8').split('\n');
    const bad = '{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID": oops}';
    const text = [lines[0], lines[1], bad, lines[2], lines[3], 'not json at all', ''].join('\n');
    const file = join(dir, 'audit.log');
    writeFileSync(file, text);
    const s = await ingestJson(file);
    expect(s).toMatchObject({ stored: 4, malformed: 2 });
    // Lines the store rejects are dead-lettered after its batch returns, so order by offset.
    const dead = ndjson(readFileSync(join(data, 'dead-letter.ndjson'), 'utf8')).sort(
      (a, b) => Number(a.offset) - Number(b.offset),
    );
    expect(dead).toHaveLength(2);
    expect(dead[0]).toMatchObject({ source: file, offset: Buffer.from(text).indexOf(bad), data: bad });
    expect(dead[0]?.reason).toMatch(/^not JSON/);
    expect(dead[1]).toMatchObject({ offset: Buffer.from(text).indexOf('not json at all') });
    expect(s.deadLetter).toBe(join(data, 'dead-letter.ndjson'));
  });

  it('stores the good items of an EventList file with one bad item and dead-letters it by index', async () => {
    const event = () =>
      JSON.parse(
        readFileSync(join(FIXTURES, 'watch-long-running.jsonl'), 'utf8').split('\n')[0] ?? '{}',
      ) as Record<string, unknown> & { auditID: string };
    const items: unknown[] = Array.from({ length: 10 }, (_, i) => ({ ...event(), auditID: `list-${i}` }));
    items[4] = { kind: 'Event', apiVersion: 'audit.k8s.io/v1', auditID: 'list-4' };
    const file = join(dir, 'list.json');
    writeFileSync(file, JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items }, null, 2));
    const s = await ingestJson(file);
    expect(s).toMatchObject({ stored: 9, malformed: 1 });
    const dead = ndjson(readFileSync(join(data, 'dead-letter.ndjson'), 'utf8'));
    expect(dead).toHaveLength(1);
    expect(dead[0]?.reason).toBe('EventList item 4: not an audit Event: field stage: missing');
    expect(JSON.parse(String(dead[0]?.data))).toEqual(items[4]);
  });

  it('stores an event nested 5000 deep without its bodies and keeps its line aside', async () => {
    const line = readFileSync(join(FIXTURES, 'watch-long-running.jsonl'), 'utf8').split('\n')[0] ?? '';
    const deep = `${'{"a":'.repeat(4999)}{}${'}'.repeat(4999)}`;
    const deepLine = line.replace('"verb"', `"requestObject":${deep},"verb"`);
    const file = join(dir, 'audit.log');
    writeFileSync(file, `${deepLine}\n`);
    const s = await ingestJson(file);
    expect(s).toMatchObject({ stored: 1, truncated: 1, malformed: 1 });
    const [row] = await query('SELECT truncated, raw FROM events');
    expect(row?.truncated).toBe(true);
    expect(JSON.parse(String(row?.raw)).requestObject).toBeUndefined();
    const [dead] = ndjson(readFileSync(join(data, 'dead-letter.ndjson'), 'utf8'));
    expect(dead?.reason).toMatch(/^bodies nested deeper than 1000 levels/);
  });

  it('keeps the head of a 100 MB line inside a small .gz aside and stores the lines around it', async () => {
    const lines = readFileSync(join(FIXTURES, 'watch-long-running.jsonl'), 'utf8').split('\n');
    const huge = Buffer.alloc(100 * 1024 * 1024, 0x61);
    const file = join(dir, 'audit.log.gz');
    writeFileSync(
      file,
      gzipSync(Buffer.concat([Buffer.from(`${lines[0]}\n`), huge, Buffer.from(`\n${lines[1]}\n`)])),
    );
    const s = await ingestJson(file);
    expect(s).toMatchObject({ stored: 2, malformed: 1 });
    const [dead] = ndjson(readFileSync(join(data, 'dead-letter.ndjson'), 'utf8'));
    expect(dead?.reason).toBe(
      `line of ${huge.length} bytes is over the limit of ${64 * 1024 * 1024} bytes (max line bytes); not read, its head is kept`,
    );
    expect(dead?.offset).toBe(Buffer.byteLength(`${lines[0]}\n`));
  });

  it('refuses an event dated past the year 9999 whichever path reads it', async () => {
    const line = readFileSync(join(FIXTURES, 'watch-long-running.jsonl'), 'utf8').split('\n')[0] ?? '';
    const key = '"requestReceivedTimestamp":"';
    const at = line.indexOf(key) + key.length;
    const file = join(dir, 'audit.log');
    const second = readFileSync(join(FIXTURES, 'watch-long-running.jsonl'), 'utf8').split('\n')[1] ?? '';
    writeFileSync(file, `${line.slice(0, at)}1${line.slice(at)}\n${second}\n`);
    const s = await ingestJson(file);
    expect(s).toMatchObject({ stored: 1, malformed: 1 });
  });

  it('dead-letters a line that is not UTF-8 with its exact bytes, and stores the rest', async () => {
    const lines = readFileSync(join(FIXTURES, 'watch-long-running.jsonl'), 'utf8').split('\n');
    const event = JSON.parse(lines[0] ?? '{}');
    event.auditID = 'latin1-0000-0000-0000-000000000001';
    const [before, after] = JSON.stringify(event).split('"verb"');
    // A Latin-1 "é" in the middle of the line: not UTF-8, though the line is otherwise an event.
    const bad = Buffer.concat([
      Buffer.from(`${before}"note":"caf`),
      Buffer.from([0xe9]),
      Buffer.from(`",` + '"verb"' + after),
    ]);
    const file = join(dir, 'audit.log');
    const text = Buffer.concat([
      Buffer.from(`${lines[1]}\n`),
      bad,
      Buffer.from(`\n${lines[2]}\n${lines[3]}\n`),
    ]);
    writeFileSync(file, text);
    const s = await ingestJson(file);
    expect(s).toMatchObject({ stored: 3, malformed: 1 });
    const [dead] = ndjson(readFileSync(join(data, 'dead-letter.ndjson'), 'utf8'));
    expect(dead).toMatchObject({ source: file, offset: text.indexOf(bad), reason: 'not UTF-8 text' });
    expect(Buffer.from(String(dead?.dataBase64), 'base64').equals(bad)).toBe(true);
  });

  it('stores a 10 MiB line truncated, counted, with the truncation annotation', async () => {
    const [line] = readFileSync(join(FIXTURES, 'watch-long-running.jsonl'), 'utf8').split('\n');
    const event = JSON.parse(line ?? '{}');
    event.level = 'RequestResponse';
    event.auditID = 'big-0000-0000-0000-000000000001';
    event.responseObject = {
      kind: 'ConfigMapList',
      items: [{ data: { blob: 'x'.repeat(10 * 1024 * 1024) } }],
    };
    const file = join(dir, 'big.log');
    writeFileSync(file, `${JSON.stringify(event)}\n${line}\n`);
    const s = await ingestJson(file);
    expect(s).toMatchObject({ stored: 2, truncated: 1, malformed: 0 });
    const rows = await query(
      "SELECT truncated, length(raw) AS len, json_extract_string(raw, '$.annotations.\"audit.k8s.io/truncated\"') AS ann FROM events WHERE audit_id LIKE 'big-%'",
    );
    expect(rows[0]).toMatchObject({ truncated: true, ann: 'true' });
    expect(Number(rows[0]?.len)).toBeLessThan(10_000);
  });

  it("removes a Secret's values from raw before storing", async () => {
    await ingestJson(join(FIXTURES, 'secret-request-response.jsonl'));
    const rows = await query('SELECT raw, request_uri FROM events');
    expect(rows).toHaveLength(5);
    const all = JSON.stringify(rows);
    for (const secret of [
      'aHVudGVyMg==',
      'YWRtaW4=',
      'sk-live',
      'bmV3LXBhc3N3b3Jk',
      'eyJhbGciOiJSUzI1NiJ9',
    ]) {
      expect(all).not.toContain(secret);
    }
    expect(all).toContain('password');
  });

  it('keeps secrets only when told to with --no-redact', async () => {
    await ingestJson('--no-redact', join(FIXTURES, 'secret-request-response.jsonl'));
    expect(JSON.stringify(await query('SELECT raw FROM events'))).toContain('aHVudGVyMg==');
  });

  it('marks a watch long-running', async () => {
    await ingestJson(join(FIXTURES, 'watch-long-running.jsonl'));
    const rows = await query("SELECT DISTINCT long_running FROM events WHERE verb = 'watch'");
    expect(rows).toEqual([{ long_running: true }]);
  });

  it('lands v1beta1, GKE and AKS records with the same columns as v1', async () => {
    const s = await ingestJson(
      '--cluster',
      'legacy',
      join(FIXTURES, 'v1beta1-event.jsonl'),
      join(FIXTURES, 'gke-cloud-audit-entries.jsonl'),
      join(FIXTURES, 'aks-diagnostic-records.json'),
    );
    expect(s).toMatchObject({ stored: 5, malformed: 0 });
    const rows = await query(
      'SELECT subject, verb, resource, namespace, name, code, decision, source_ip, cluster, api_group FROM events ORDER BY ts',
    );
    expect(rows).toHaveLength(5);
    for (const row of rows) {
      expect(row).toEqual({
        subject: 'bob',
        verb: 'get',
        resource: 'configmaps',
        namespace: 'default',
        name: 'app-config',
        code: 403,
        decision: 'forbid',
        source_ip: '203.0.113.9',
        cluster: 'legacy',
        api_group: '',
      });
    }
  });

  it('reads gzip files, EventList documents and standard input', async () => {
    const text = readFileSync(join(FIXTURES, 'watch-long-running.jsonl'), 'utf8');
    writeFileSync(join(dir, 'audit-1.log.gz'), gzipSync(text));
    const items = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    writeFileSync(
      join(dir, 'list.json'),
      JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items }, null, 2),
    );
    expect(await ingestJson(join(dir, 'audit-1.log.gz'))).toMatchObject({ stored: 4 });
    expect(await ingestJson(join(dir, 'list.json'))).toMatchObject({ stored: 0, duplicates: 4 });
    const r = await runCli(['ingest', '--data', data, '--json', '--cluster', 'stdin', '-'], {
      input: readFileSync(join(FIXTURES, 'secret-request-response.jsonl')),
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ stored: 5 });
  });

  it('ingests a kaudit simulate output directory, skipping its truth file', async () => {
    const out = join(dir, 'sim');
    const sim = await runCli([
      'simulate',
      '--out',
      join(out, 'audit.log'),
      '--count',
      '3000',
      '--seed',
      '5',
      '--rotate-mb',
      '1',
    ]);
    expect(sim.code).toBe(0);
    const s = await ingestJson(out);
    expect(s).toMatchObject({ events: 3000, stored: 3000, malformed: 0 });
    expect(Number(s.files)).toBeGreaterThan(1);
  });

  it('stores numbers beyond a double as written, with no code, on the fast and the parsing path', async () => {
    const line = readFileSync(join(FIXTURES, 'watch-long-running.jsonl'), 'utf8').split('\n')[0] ?? '';
    const tokens = ['1e400', '99999999999999999999', '9007199254740993', '2147483648'];
    const lines = tokens.flatMap((token, i) => {
      const fast = line
        .replace('"code":200', `"code":${token}`)
        .replace('"auditID":"9b1f', `"auditID":"f${i}`);
      // Spaced after a colon: not kube-apiserver's compact form, so the line is parsed.
      const parsed = fast.replace('"auditID":"f', '"auditID": "p');
      return [fast, parsed];
    });
    const file = join(dir, 'audit.log');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const s = await ingestJson(file);
    expect(s).toMatchObject({ stored: 8, malformed: 0 });
    const rows = await query(
      "SELECT audit_id, code, json_extract(raw, '$.responseStatus') AS status FROM events ORDER BY audit_id",
    );
    expect(rows).toHaveLength(8);
    for (const row of rows) {
      const i = Number(String(row.audit_id).slice(1, 2));
      expect(row.code).toBeNull();
      expect(String(row.status)).toContain(`"code":${tokens[i]}`);
    }
  });

  it('warns, exits 0 and stores nothing when every input is empty', async () => {
    const a = join(dir, 'audit.log');
    const b = join(dir, 'audit-rotated.log');
    writeFileSync(a, '');
    writeFileSync(b, '\n\n');
    const r = await runCli(['ingest', '--data', data, a, b]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`kaudit: warning: every input is empty (${a}, ${b}); nothing stored\n`);
    expect(r.stdout).toContain('stored 0 events from 2 file(s)');
    const empty = join(dir, 'logs');
    mkdirSync(empty);
    const d = await runCli(['ingest', '--data', data, '--json', empty]);
    expect(d.code).toBe(0);
    expect(d.stderr).toContain(`no files to read in ${empty}`);
    expect(JSON.parse(d.stdout)).toMatchObject({ files: 0, stored: 0 });
  });

  it('exits 2 naming a file that holds no audit event, and 1 when it comes with a good one', async () => {
    const notAudit = join(dir, 'passwd');
    writeFileSync(
      notAudit,
      'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n',
    );
    const empty = join(dir, 'empty.log');
    writeFileSync(empty, '');
    const alone = await runCli(['ingest', '--data', data, notAudit, empty]);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toContain('KAUDIT_INPUT_NOT_AUDIT');
    expect(alone.stderr).toContain(`${notAudit}: not an audit log: none of its 2 records is an audit event`);
    expect(alone.stderr).not.toContain(empty);
    const mixed = await runCli([
      'ingest',
      '--data',
      data,
      notAudit,
      join(FIXTURES, 'watch-long-running.jsonl'),
    ]);
    expect(mixed.code).toBe(1);
    expect(mixed.stdout).toContain(`skipped ${notAudit}: not an audit log`);
  });

  it('exits 2 naming a path that does not exist', async () => {
    const r = await runCli(['ingest', '--data', data, join(dir, 'nope.log')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(join(dir, 'nope.log'));
    expect(r.stdout).toBe('');
  });
});

describe('kaudit search and query', () => {
  beforeEach(async () => {
    await ingestJson(join(THIRD_PARTY, 'samples'), join(FIXTURES, 'watch-long-running.jsonl'));
  });

  it('filters by subject, verb, resource/subresource, code and time, newest first', async () => {
    const r = await runCli(['search', '--data', data, '--json', '--subject', 'bob', '--code', '403']);
    expect(r.code).toBe(0);
    const rows = ndjson(r.stdout);
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row).toMatchObject({ subject: 'bob', code: 403 });
    const ts = rows.map((x) => String(x.ts));
    expect([...ts].sort().reverse()).toEqual(ts);

    const exec = ndjson(
      (await runCli(['search', '--data', data, '--json', '--resource', 'pods/exec'])).stdout,
    );
    expect(exec.map((x) => x.audit_id)).toEqual(['4d0c2a8b-7e51-4f0a-9d6b-1c2b3a4f5e61']);

    const window = ndjson(
      (
        await runCli([
          'search',
          '--data',
          data,
          '--json',
          '--since',
          '2026-03-01T10:00:30Z',
          '--until',
          '2026-03-01T10:01:30Z',
        ])
      ).stdout,
    );
    expect(window.map((x) => x.verb)).toEqual(['create']);
  });

  it('prints a table by default and honours --limit', async () => {
    const r = await runCli(['search', '--data', data, '--verb', 'list', '--limit', '2']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TS\s+SUBJECT\s+VERB/);
    expect(lines).toHaveLength(3);
  });

  it('refuses to read a store that does not exist, without creating one', async () => {
    const missing = join(dir, 'nothing-here');
    for (const args of [['search'], ['query', 'SELECT 1']]) {
      const r = await runCli([...args, '--data', missing]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`no store at ${join(missing, 'kaudit.duckdb')}`);
    }
    expect(existsSync(missing)).toBe(false);
  });

  it('rejects a bad --since with exit 2', async () => {
    const r = await runCli(['search', '--data', data, '--since', 'yesterday']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--since "yesterday"');
  });

  it('runs read-only SQL and refuses writes', async () => {
    const rows = ndjson(
      (
        await runCli([
          'query',
          '--data',
          data,
          '--json',
          'SELECT verb, count(*) AS n FROM events GROUP BY verb ORDER BY verb',
        ])
      ).stdout,
    );
    expect(rows.find((r) => r.verb === 'watch')).toEqual({ verb: 'watch', n: 2 });
    const bad = await runCli(['query', '--data', data, 'DROP VIEW events']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('KAUDIT_QUERY_READONLY');
  });
});
