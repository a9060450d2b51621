import { readFileSync } from 'node:fs';
/**
 * The analyses end to end through the CLI over a store: denials found without annotations, RBAC from
 * the store, the slow client and the changed objects of the simulator's scenarios, user SQL that
 * cannot reach the host, and `kaudit serve` refusing an unguarded address.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ndjson, runCli, THIRD_PARTY } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const dir = tempDir('kaudit-reports-');
const demo = join(dir, 'demo');
const sim = join(dir, 'sim');

beforeAll(async () => {
  expect(
    (
      await runCli([
        'ingest',
        '--data',
        demo,
        '--no-progress',
        join(THIRD_PARTY, 'samples/audit2rbac-demo.log'),
      ])
    ).code,
  ).toBe(0);
  const log = join(dir, 'audit.log');
  const s = await runCli([
    'simulate',
    '--out',
    log,
    '--count',
    '20000',
    '--seed',
    '4',
    '--start',
    '2026-01-15T09:00:00Z',
  ]);
  expect(s.code, s.stderr).toBe(0);
  const i = await runCli(['ingest', '--data', sim, '--cluster', 'sim', '--no-progress', log]);
  expect(i.code, i.stderr).toBe(0);
}, 180_000);

describe('over audit2rbac demo log (no decision annotations)', () => {
  it('search --decision forbid finds all 11 denials, and says how it knows', async () => {
    const r = await runCli(['search', '--data', demo, '--decision', 'forbid', '--json', '--limit', '100']);
    expect(r.code).toBe(0);
    expect(ndjson(r.stdout)).toHaveLength(11);
  });

  it('rbac generate --user alice from the store gives a Role and RoleBinding in ns1, nothing cluster-scoped', async () => {
    const r = await runCli(['rbac', 'generate', '--data', demo, '--user', 'alice', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      objects: {
        kind: string;
        metadata: { namespace?: string };
        rules?: { verbs: string[]; resources: string[] }[];
      }[];
    };
    expect(out.objects.map((o) => o.kind).sort()).toEqual(['Role', 'RoleBinding']);
    expect(out.objects.every((o) => o.metadata.namespace === 'ns1')).toBe(true);
    const rules = out.objects.find((o) => o.kind === 'Role')?.rules ?? [];
    expect(rules.flatMap((x) => x.resources).sort()).toEqual(['configmaps', 'pods', 'secrets']);
    expect(rules.flatMap((x) => x.verbs).sort()).toEqual(['get', 'list', 'watch']);
  });
});

describe('over the simulated cluster', () => {
  it('report latency names the client behind the unpaginated cluster-wide LISTs and the 429s', async () => {
    const r = await runCli(['report', 'latency', '--data', sim, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as {
      expensiveLists: { subject: string }[];
      throttled: { subject: string }[];
      slowest: { latencyMs: number }[];
    };
    expect(rep.expensiveLists[0]?.subject).toBe('system:serviceaccount:monitoring:inventory-exporter');
    expect(rep.throttled[0]?.subject).toBe('system:serviceaccount:ci:image-scanner');
    expect(rep.slowest[0]?.latencyMs).toBeGreaterThan(500);
    const md = await runCli(['report', 'latency', '--data', sim, '--format', 'md']);
    expect(md.stdout).toContain('## Slow requests');
  });

  it('history shows who changed an object, in order', async () => {
    const r = await runCli(['history', 'namespaces/feature-x-preview', '--data', sim, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const h = JSON.parse(r.stdout) as {
      changes: { verb: string; ts: string; subject: string; subresource: string | null }[];
    };
    // The simulated policy logs namespaces at Metadata: the create names no object, the delete does.
    expect(h.changes.map((c) => [c.verb, c.subject])).toContainEqual(['delete', 'alice@example.com']);
    expect(h.changes.some((c) => c.subresource === 'finalize')).toBe(true);
    const times = h.changes.map((c) => c.ts);
    expect([...times].sort()).toEqual(times);
  });

  it('history of every object the truth file says changed names who changed it, how and from where', async () => {
    const truth = JSON.parse(readFileSync(join(dir, 'audit.log.truth.json'), 'utf8')) as {
      steps: {
        id: string;
        expect: {
          kind: string;
          verb?: string;
          resource?: string;
          namespace?: string;
          name?: string;
          primaryAuditID?: string;
          client?: { username: string; sourceIP: string };
        };
      }[];
    };
    const changed = truth.steps.filter(
      (s) => s.expect.kind === 'change' && s.expect.name !== undefined && s.expect.resource === 'configmaps',
    );
    expect(changed.length).toBeGreaterThan(0);
    for (const step of changed) {
      const e = step.expect;
      const r = await runCli(['history', `${e.resource}/${e.namespace}/${e.name}`, '--data', sim, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const h = JSON.parse(r.stdout) as {
        changes: {
          auditId: string;
          verb: string;
          subject: string;
          sourceIp: string;
          requestObject?: unknown;
        }[];
      };
      const primary = h.changes.find((c) => c.auditId === e.primaryAuditID);
      expect(primary, step.id).toMatchObject({
        verb: e.verb,
        subject: e.client?.username,
        sourceIp: e.client?.sourceIP,
      });
      expect(primary?.requestObject, 'the body the policy logged').toBeDefined();
    }
  });

  it('report activity counts requests and ranks subjects', async () => {
    const r = await runCli(['report', 'activity', '--data', sim, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const a = JSON.parse(r.stdout) as { requests: number; top: { subjects: { count: number }[] } };
    expect(a.requests).toBeGreaterThan(1000);
    expect(a.top.subjects[0]?.count).toBeGreaterThan(0);
  });

  it('report denials classifies the PodSecurity rejection as admission, with no RBAC fix', async () => {
    const r = await runCli(['report', 'denials', '--data', sim, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout) as {
      groups: { class: string; subject: string; admission?: { kind: string } }[];
    };
    const admission = d.groups.filter((g) => g.class === 'admission');
    expect(admission.map((g) => g.admission?.kind)).toContainEqual(expect.stringMatching(/pod-?security/i));
    expect(
      d.groups.some(
        (g) => g.class === 'rbac' && g.subject === 'system:serviceaccount:payments:report-generator',
      ),
    ).toBe(true);
  });
});

describe('kaudit search', () => {
  const search = (...args: string[]) => runCli(['search', '--data', sim, ...args]);

  it('normalises what is obvious and refuses what is not, naming the valid choices', async () => {
    const upper = await search('--verb', 'GET', '--limit', '3', '--json');
    expect(upper.code).toBe(0);
    expect(ndjson(upper.stdout).map((r) => r.verb)).toEqual(['get', 'get', 'get']);
    const typo = await search('--verb', 'gte');
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('did you mean get?');
    expect((await search('--code', '6xx')).code).toBe(2);
    expect((await search('--min-latency', 'soon')).code).toBe(2);
    expect((await search('--stage', 'Done')).code).toBe(2);
    expect((await search('--sort', 'random')).code).toBe(2);
    expect((await search('--columns', 'ts,nope')).stderr).toContain('--columns "nope"');
  });

  it('filters by code class, denial, latency, stage, user agent and URI text', async () => {
    const rows = async (...args: string[]) =>
      ndjson((await search(...args, '--json', '--limit', '1000')).stdout);
    expect(
      (await rows('--code', '4xx')).every((r) => (r.code as number) >= 400 && (r.code as number) <= 499),
    ).toBe(true);
    expect((await rows('--denied')).every((r) => r.code === 401 || r.code === 403)).toBe(true);
    const slow = await rows('--min-latency', '1s', '--sort', 'latency');
    expect(slow.length).toBeGreaterThan(0);
    expect(slow.every((r) => (r.latency_ms as number) >= 1000)).toBe(true);
    expect(slow.map((r) => r.latency_ms)).toEqual(
      [...slow.map((r) => r.latency_ms)].sort((a, b) => (b as number) - (a as number)),
    );
    expect((await rows('--stage', 'responsestarted')).every((r) => r.stage === 'ResponseStarted')).toBe(true);
    expect(
      (await rows('--user-agent', 'KUBECTL')).every((r) => String(r.user_agent).includes('kubectl')),
    ).toBe(true);
    expect(
      (await rows('--text', '/namespaces/kube-system/')).every((r) =>
        String(r.request_uri).includes('/namespaces/kube-system/'),
      ),
    ).toBe(true);
    expect(await rows('--resource', 'pods/*', '--verb', 'create')).not.toEqual([]);
  });

  it('prints the columns asked for, as CSV, JSON or a table; says on stderr when nothing matches', async () => {
    const csv = await search('--columns', 'audit_id,verb', '--output', 'csv', '--limit', '2');
    expect(csv.stdout.split('\n')[0]).toBe('audit_id,verb');
    expect(csv.stdout.trim().split('\n')).toHaveLength(3);
    const json = JSON.parse(
      (await search('--columns', 'verb', '--output', 'json', '--limit', '2')).stdout,
    ) as unknown[];
    expect(json).toEqual([{ verb: expect.any(String) }, { verb: expect.any(String) }]);
    const none = await search('--user', 'nobody-at-all');
    expect(none.code).toBe(0);
    expect(none.stdout).toBe('');
    expect(none.stderr).toContain('no events match');
  });
});

describe('kaudit store info', () => {
  it('says what the store holds, per cluster, with the dead letters', async () => {
    const r = await runCli(['store', 'info', '--data', sim, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout) as {
      backend: string;
      rows: number;
      clusters: { cluster: string; rows: number }[];
      deadLetters: number;
    };
    expect(info.backend).toBe('duckdb');
    expect(info.clusters).toEqual([expect.objectContaining({ cluster: 'sim', rows: info.rows })]);
    expect(info.deadLetters).toBe(0);
    const missing = await runCli(['store', 'info', '--data', join(dir, 'nothing-here')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('KAUDIT_STORE_MISSING');
  });
});

describe('safety', () => {
  it('kaudit query cannot write, read host files or load extensions (exit 2), and the store is unchanged', async () => {
    const before = await runCli(['query', '--data', demo, '--json', 'SELECT count(*) AS n FROM events']);
    for (const sql of [
      'EXPLAIN ANALYZE DELETE FROM audit_events',
      "SELECT * FROM read_text('/etc/hostname')",
      `COPY (SELECT 1) TO '${join(dir, 'x.csv')}'`,
      'INSTALL httpfs',
    ]) {
      const r = await runCli(['query', '--data', demo, sql]);
      expect(r.code, sql).toBe(2);
      expect(r.stderr).toMatch(/error\[KAUDIT_QUERY/);
    }
    const after = await runCli(['query', '--data', demo, '--json', 'SELECT count(*) AS n FROM events']);
    expect(after.stdout).toBe(before.stdout);
  });

  it('kaudit serve refuses 0.0.0.0 without tokens or client certificates, exit 2', async () => {
    const r = await runCli(['serve', '--data', demo, '--listen', '0.0.0.0:0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('KAUDIT_SERVE_UNGUARDED');
  });
});
