import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN, type CliResult, FIXTURES as FIXTURE_ROOT, runCliSync, THIRD_PARTY } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const FIXTURES = join(FIXTURE_ROOT, 'policy');

function kaudit(args: string[], input?: string): CliResult {
  return runCliSync(args, input === undefined ? {} : { input });
}
const jsonLines = (s: string) =>
  s
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(() => {
  if (!existsSync(BIN)) throw new Error('build the CLI first: npx tsc -p tsconfig.build.json');
});

describe('kaudit policy lint', () => {
  it('prints warnings with file:line:column and exits 0 when kube-apiserver would load the policy', () => {
    const r = kaudit(['policy', 'lint', join(THIRD_PARTY, 'policies/kubernetes-docs-audit-policy.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      'kubernetes-docs-audit-policy.yaml:13:5: warning[KAUDIT_LINT_PODS_SUBRESOURCES] rules[0].resources[0].resources:',
    );
    expect(r.stdout).toContain('hint: write "pods/*"');
    expect(r.stderr).toBe('kaudit: 0 error(s), 3 warning(s)\n');
  });

  it('reads the policy from stdin with -', () => {
    const r = kaudit(
      ['policy', 'lint', '-'],
      readFileSync(join(THIRD_PARTY, 'policies/audit2rbac-demo-policy.yaml'), 'utf8'),
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^-:4:3: warning\[KAUDIT_LINT_NO_CATCH_ALL\] rules\[0\]:/);
  });

  it('exits 1 and lists every error at once', () => {
    const r = kaudit(['policy', 'lint', join(FIXTURES, 'invalid-many.yaml')]);
    expect(r.code).toBe(1);
    const errors = r.stdout.split('\n').filter((l) => l.includes(': error['));
    expect(errors).toHaveLength(5);
    expect(errors[0]).toMatch(
      /invalid-many\.yaml:3:14: error\[KAUDIT_POLICY_STAGE\] omitStages\[0\]: unknown stage "RequestRecieved"$/,
    );
  });

  it('--fail-on warning turns warnings into exit 1', () => {
    const r = kaudit([
      'policy',
      'lint',
      '--fail-on',
      'warning',
      join(THIRD_PARTY, 'policies/audit2rbac-demo-policy.yaml'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('KAUDIT_LINT_NO_CATCH_ALL');
  });

  it('--json prints one diagnostic per line', () => {
    const r = kaudit([
      'policy',
      'lint',
      '--json',
      join(THIRD_PARTY, 'policies/falcosecurity-plugins-k8saudit-audit-policy.yaml'),
    ]);
    expect(r.code).toBe(0);
    const lines = jsonLines(r.stdout);
    expect(lines).toContainEqual(
      expect.objectContaining({
        severity: 'warning',
        code: 'KAUDIT_LINT_WRONG_GROUP',
        path: 'rules[0].resources[0].resources[1]',
        line: 13,
        column: 27,
      }),
    );
  });

  it('refuses v1beta1 policies unless checking against Kubernetes 1.23', () => {
    const file = join(THIRD_PARTY, 'policies/openshift-library-go/default.yaml');
    const now = kaudit(['policy', 'lint', file]);
    expect(now.code).toBe(1);
    expect(now.stdout).toContain(
      'error[KAUDIT_POLICY_API_VERSION] apiVersion: audit.k8s.io/v1beta1 was removed in Kubernetes 1.24',
    );
    const old = kaudit(['policy', 'lint', '--kubernetes-version', '1.23', file]);
    expect(old.code).toBe(0);
    expect(old.stdout).toBe('');
    expect(old.stderr).toContain('no problems found');
  });

  it('checks a rule fragment only with --fragment', () => {
    const file = join(
      THIRD_PARTY,
      'policies/openshift-library-go/fragments-current/writerequestbodies-rules.yaml',
    );
    expect(kaudit(['policy', 'lint', file]).stdout).toContain('KAUDIT_POLICY_FRAGMENT');
    const r = kaudit(['policy', 'lint', '--fragment', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('KAUDIT_LINT_SENSITIVE_BODY');
  });

  it('exits 2 on a missing file or a bad version', () => {
    const missing = kaudit(['policy', 'lint', 'no-such-policy.yaml']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('error[KAUDIT_FILE_UNREADABLE]');
    expect(missing.stdout).toBe('');
    const bad = kaudit([
      'policy',
      'lint',
      '--kubernetes-version',
      'banana',
      join(FIXTURES, 'invalid-many.yaml'),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('KAUDIT_BAD_KUBERNETES_VERSION');
  });
});

describe('kaudit policy eval', () => {
  const docs = join(THIRD_PARTY, 'policies/kubernetes-docs-audit-policy.yaml');

  it('evaluates one request given by flags', () => {
    const r = kaudit([
      'policy',
      'eval',
      docs,
      '--user',
      'alice',
      '--group',
      'devs',
      '--verb',
      'get',
      '--namespace',
      'default',
      '--resource',
      'pods/log',
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      '{"level":"Metadata","omitStages":["RequestReceived"],"omitManagedFields":false,"rule":1}\n',
    );
  });

  it('evaluates a non-resource request and prints a table by default', () => {
    const r = kaudit([
      'policy',
      'eval',
      docs,
      '--user',
      'bob',
      '--group',
      'system:authenticated',
      '--path',
      '/version',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^REQUEST\s+LEVEL\s+OMIT_STAGES\s+OMIT_MANAGED_FIELDS\s+RULE$/);
    expect(r.stdout).toMatch(/bob get \/version\s+None\s+RequestReceived\s+false\s+rules\[4\]/);
  });

  it('evaluates a batch of events and request records', () => {
    const r = kaudit([
      'policy',
      'eval',
      docs,
      '--requests',
      join(FIXTURES, 'requests-mixed.jsonl'),
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(jsonLines(r.stdout)).toEqual([
      { level: 'Metadata', omitStages: ['RequestReceived'], omitManagedFields: false, rule: 1 },
      { level: 'Metadata', omitStages: ['RequestReceived'], omitManagedFields: false, rule: 8 },
      { level: 'Metadata', omitStages: ['RequestReceived'], omitManagedFields: false, rule: 6 },
    ]);
  });

  it('reads requests from stdin and reports a bad line with its number', () => {
    const r = kaudit(
      ['policy', 'eval', docs, '--requests', '-'],
      '{"verb":"get","path":"/metrics"}\nnot json\n',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('-:2: not JSON');
  });

  it('refuses an invalid policy, listing its errors', () => {
    const r = kaudit(['policy', 'eval', join(FIXTURES, 'invalid-many.yaml'), '--verb', 'get', '--path', '/']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error[KAUDIT_POLICY_INVALID]');
    expect(r.stderr).toContain(
      'invalid-many.yaml:11:9: error[KAUDIT_POLICY_GROUP] rules[2].resources[0].group',
    );
  });

  it('needs --entry for a ConfigMap of several policies', () => {
    const cm = join(FIXTURES, 'configmap-two-policies.yaml');
    const r = kaudit(['policy', 'eval', cm, '--path', '/x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('hint: choose one with --entry: good.yaml, bad.yaml');
    const ok = kaudit(['policy', 'eval', cm, '--entry', 'good.yaml', '--path', '/x', '--json']);
    expect(ok.stdout).toBe('{"level":"Metadata","omitStages":[],"omitManagedFields":false,"rule":0}\n');
  });

  it('applies group "*" only from Kubernetes 1.36', () => {
    const dir = tempDir('kaudit-eval-');
    const policy = join(dir, 'star.yaml');
    writeFileSync(
      policy,
      'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Request\n    resources: [{group: "*", resources: ["*/status"]}]\n',
    );
    const args = [
      'policy',
      'eval',
      policy,
      '--verb',
      'update',
      '--api-group',
      'apps',
      '--resource',
      'deployments/status',
      '--namespace',
      'a',
      '--json',
    ];
    expect(jsonLines(kaudit(args).stdout)[0]).toMatchObject({ level: 'Request', rule: 0 });
    const old = kaudit([...args, '--kubernetes-version', '1.35']);
    expect(old.code).toBe(2);
    expect(old.stderr).toContain('group "*" needs Kubernetes 1.36 or newer');
  });
});

describe('kaudit policy simulate', () => {
  it('reports per-rule counts that match a direct count of a generated log', () => {
    const dir = tempDir('kaudit-sim-');
    const log = join(dir, 'audit.log');
    const lines: string[] = [];
    const want = { health: 0, secrets: 0, other: 0 };
    for (let i = 0; i < 300; i++) {
      const kind = i % 5 === 0 ? 'health' : i % 3 === 0 ? 'secrets' : 'other';
      want[kind]++;
      const resource = kind === 'secrets' ? 'secrets' : 'pods';
      const e = {
        kind: 'Event',
        apiVersion: 'audit.k8s.io/v1',
        level: 'RequestResponse',
        auditID: `r${i}`,
        stage: 'ResponseComplete',
        requestURI: kind === 'health' ? '/healthz' : `/api/v1/namespaces/a/${resource}`,
        verb: kind === 'health' ? 'get' : 'create',
        user: { username: 'alice', groups: ['system:authenticated'] },
        ...(kind === 'health'
          ? {}
          : {
              objectRef: { resource, namespace: 'a', apiVersion: 'v1' },
              requestObject: { data: 'x'.repeat(i) },
            }),
        requestReceivedTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
        stageTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
      };
      lines.push(JSON.stringify(e));
    }
    writeFileSync(log, `${lines.join('\n')}\n`);
    const policy = join(dir, 'policy.yaml');
    writeFileSync(
      policy,
      'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  nonResourceURLs: ["/healthz*"]\n- level: Request\n  resources: [{resources: [secrets]}]\n- level: Metadata\n',
    );
    const r = kaudit(['policy', 'simulate', policy, log, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as {
      input: { events: number; bytes: number };
      output: { events: number; bytes: number };
      rules: { index: number; level: string; events: number; bytes: number }[];
      unmatched: { events: number };
      sensitiveBodies: { events: number };
    };
    expect(report.input).toMatchObject({
      events: 300,
      bytes: lines.reduce((n, l) => n + Buffer.byteLength(l), 0),
    });
    expect(report.rules.map((x) => [x.index, x.level, x.events])).toEqual([
      [0, 'None', 0],
      [1, 'Request', want.secrets],
      [2, 'Metadata', want.other],
    ]);
    expect(report.output.events).toBe(want.secrets + want.other);
    expect(report.unmatched.events).toBe(0);
    expect(report.sensitiveBodies.events).toBe(want.secrets);
    expect(report.output.bytes).toBeLessThan(report.input.bytes);

    const table = kaudit(['policy', 'simulate', policy, log]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/rules\[1\]\s+Request\s+\d+\s+\d+/);
    expect(table.stdout).toContain(`Requests dropped entirely: ${want.health} of 300`);
  });

  it('prints its table report as the golden file', () => {
    const r = kaudit([
      'policy',
      'simulate',
      join(THIRD_PARTY, 'policies/gce-create-master-audit-policy.rendered.yaml'),
      join(THIRD_PARTY, 'samples/audit2rbac-demo.log'),
    ]);
    expect(r.code).toBe(0);
    const golden = join(FIXTURES, 'golden/simulate-gce-audit2rbac-demo.txt');
    if (process.env.KAUDIT_UPDATE_GOLDEN === '1') writeFileSync(golden, r.stdout);
    expect(r.stdout).toBe(readFileSync(golden, 'utf8'));
  });

  it('runs on real captured samples', () => {
    const r = kaudit([
      'policy',
      'simulate',
      join(THIRD_PARTY, 'policies/gce-create-master-audit-policy.rendered.yaml'),
      join(THIRD_PARTY, 'samples/audit2rbac-demo.log'),
      '--json',
    ]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { input: { events: number } };
    expect(report.input.events).toBe(
      readFileSync(join(THIRD_PARTY, 'samples/audit2rbac-demo.log'), 'utf8').trim().split('\n').length,
    );
  });

  it('simulates over the store with --data exactly as over the log it was ingested from', () => {
    const dir = tempDir('kaudit-sim-data-');
    const log = join(THIRD_PARTY, 'samples/audit2rbac-demo.log');
    const ingest = kaudit(['ingest', '--data', dir, '--no-progress', '--no-redact', log]);
    expect(ingest.code).toBe(0);
    const policy = join(THIRD_PARTY, 'policies/kubernetes-docs-audit-policy.yaml');
    const fromStore = kaudit(['policy', 'simulate', policy, '--data', dir, '--json']);
    const fromLog = kaudit(['policy', 'simulate', policy, log, '--json']);
    expect(fromStore.code).toBe(0);
    const a = JSON.parse(fromStore.stdout) as { input: { events: number }; rules: unknown[] };
    const b = JSON.parse(fromLog.stdout) as { input: { events: number }; rules: unknown[] };
    expect(a.input.events).toBe(37);
    expect(a.rules).toEqual(b.rules);
    expect(a.input).toEqual(b.input);
    const neither = kaudit(['policy', 'simulate', policy]);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain('KAUDIT_SIMULATE_NO_INPUT');
  });

  it('exits 2 when a log is missing', () => {
    const r = kaudit([
      'policy',
      'simulate',
      join(THIRD_PARTY, 'policies/audit2rbac-demo-policy.yaml'),
      'missing.log',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('cannot read audit log missing.log');
  });
});

describe('kaudit policy generate', () => {
  it('prints the recommended policy, which lints clean', () => {
    const r = kaudit(['policy', 'generate']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^# kaudit's recommended audit policy/);
    const dir = tempDir('kaudit-gen-');
    writeFileSync(join(dir, 'p.yaml'), r.stdout);
    const lint = kaudit(['policy', 'lint', join(dir, 'p.yaml')]);
    expect(lint.code).toBe(0);
    expect(lint.stdout).toBe('');
  });

  it('prints the seed page policy with its verbs on the rule', () => {
    const r = kaudit(['policy', 'generate', '--preset', 'seed']);
    expect(r.stdout).toContain('- group: authorization.k8s.io\n        resources: [subjectaccessreviews]');
    expect(r.stdout).toContain(
      'verbs: [create, patch, update, delete]\n    resources:\n      - group: ""\n        resources: [pods]',
    );
  });

  it('tunes to observed traffic with --from, dropping heavy system reads only', () => {
    const dir = tempDir('kaudit-gen-');
    const log = join(dir, 'audit.log');
    const ev = (i: number, user: string, verb: string, resource: string) =>
      JSON.stringify({
        kind: 'Event',
        apiVersion: 'audit.k8s.io/v1',
        level: 'Metadata',
        auditID: `g${i}`,
        stage: 'ResponseComplete',
        requestURI: `/api/v1/${resource}`,
        verb,
        user: { username: user, groups: [] },
        objectRef: { resource, apiVersion: 'v1' },
        responseStatus: { code: 200 },
        requestReceivedTimestamp: '2026-01-01T00:00:00Z',
        stageTimestamp: '2026-01-01T00:00:00Z',
      });
    const lines = [
      ...Array.from({ length: 200 }, (_, i) =>
        ev(i, 'system:serviceaccount:kube-system:poller', 'list', 'namespaces'),
      ),
      ...Array.from({ length: 200 }, (_, i) =>
        ev(1000 + i, 'system:serviceaccount:kube-system:writer', 'update', 'namespaces'),
      ),
    ];
    writeFileSync(log, `${lines.join('\n')}\n`);
    const r = kaudit(['policy', 'generate', '--from', log]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      'kaudit: dropping system:serviceaccount:kube-system:poller list namespaces: 200 events',
    );
    expect(r.stdout).toContain('users: ["system:serviceaccount:kube-system:poller"]\n    verbs: [list]');
    expect(r.stdout).not.toContain('kube-system:writer');
    const json = kaudit(['policy', 'generate', '--from', log, '--json']);
    expect((JSON.parse(json.stdout) as { tuned: unknown[] }).tuned).toHaveLength(1);
  });

  it('rejects an unknown preset', () => {
    const r = kaudit(['policy', 'generate', '--preset', 'loud']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Allowed choices are recommended, seed, gke, minimal');
  });
});

describe('kaudit policy simulate inputs', () => {
  const dir = tempDir('kaudit-policy-inputs-');
  const logs = join(dir, 'logs');
  const policy = join(FIXTURES, 'golden', 'preset-recommended.yaml');

  beforeAll(() => {
    const s = runCliSync(['simulate', '--out', join(logs, 'audit.log'), '--count', '2000', '--seed', '2']);
    expect(s.code, s.stderr).toBe(0);
  });

  it('reads a directory of logs', () => {
    const r = kaudit(['policy', 'simulate', '--json', policy, logs]);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { input: { events: number } }).input.events).toBe(2000);
  });

  it('refuses a file that is not an audit log, naming it (exit 2)', () => {
    const r = kaudit(['policy', 'simulate', policy, policy]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${policy} is not an audit log`);
  });

  it('reads the store of KAUDIT_DATA when no log is named', () => {
    const data = join(dir, 'data');
    expect(runCliSync(['ingest', '--data', data, '--no-progress', logs]).code).toBe(0);
    const r = runCliSync(['policy', 'simulate', '--json', policy], { env: { KAUDIT_DATA: data } });
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { input: { events: number } }).input.events).toBe(2000);
  });
});
