import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { validateRbacObject } from '../fixtures/rbac/validate-rbac-object.js';
import { type CliResult, FIXTURES, runCliSync, THIRD_PARTY } from '../helpers/cli.js';

const DEMO = join(THIRD_PARTY, 'samples/audit2rbac-demo.log');
const CLUSTER = join(FIXTURES, 'rbac/cluster-rbac.yaml');
const DENIALS = join(FIXTURES, 'rbac/denials.jsonl');
const kaudit = (args: string[]): CliResult => runCliSync(args);
const tmp = mkdtempSync(join(tmpdir(), 'kaudit-rbac-e2e-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function docs(yamlText: string): Record<string, unknown>[] {
  return parseAllDocuments(yamlText).map((d) => d.toJS() as Record<string, unknown>);
}

describe('kaudit rbac generate', () => {
  it('--user alice over the audit2rbac demo: a Role and RoleBinding in ns1, get/list/watch on configmaps, pods, secrets', () => {
    const r = kaudit(['rbac', 'generate', '--user', 'alice', '--from', DEMO]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const objects = docs(r.stdout);
    expect(objects.map((o) => o.kind)).toEqual(['Role', 'RoleBinding']);
    for (const o of objects) {
      expect((o.metadata as { namespace?: string }).namespace).toBe('ns1');
      validateRbacObject(o as { kind: string });
    }
    expect(objects[0]?.rules).toEqual([
      { verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['configmaps', 'pods', 'secrets'] },
    ]);
    expect(objects[1]?.subjects).toEqual([
      { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'alice' },
    ]);
  });

  it('--all --json: every subject, the service account bound as a ServiceAccount', () => {
    const r = kaudit(['rbac', 'generate', '--all', '--from', DEMO, '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      subjects: { subject: { kind: string; name: string } }[];
      objects: { kind: string }[];
    };
    expect(out.subjects.map((s) => `${s.subject.kind}:${s.subject.name}`)).toEqual([
      'ServiceAccount:sa1',
      'User:alice',
      'User:bob',
    ]);
    for (const o of out.objects) validateRbacObject(o);
  });

  it('--rbac: nothing to add when the cluster already allows everything', () => {
    const rbac = join(tmp, 'alice-can.yaml');
    writeFileSync(
      rbac,
      `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: alice-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: alice}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: cluster-admin}
rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]
`,
    );
    const r = kaudit(['rbac', 'generate', '--user', 'alice', '--from', DEMO, '--rbac', rbac]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('kaudit: nothing to generate: every request is already allowed\n');
  });

  it('an unknown subject is exit 2 naming the subjects seen', () => {
    const r = kaudit(['rbac', 'generate', '--user', 'mallory', '--from', DEMO]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(
      'error[KAUDIT_RBAC_UNKNOWN_SUBJECT]: no requests by User mallory in the audit events',
    );
    expect(r.stderr).toContain('hint: subjects seen: bob, system:serviceaccount:ns1:sa1, alice');
  });

  it('malformed flags are exit 2 without a stack trace', () => {
    for (const args of [
      ['rbac', 'generate', '--from', DEMO],
      ['rbac', 'generate', '--serviceaccount', 'justaname', '--from', DEMO],
      ['rbac', 'generate', '--all', '--user', 'x', '--from', DEMO],
      ['rbac', 'generate', '--user', 'alice'],
    ]) {
      const r = kaudit(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^kaudit: error\[KAUDIT_/);
      expect(r.stderr).not.toContain('    at ');
    }
  });
});

describe('kaudit rbac can', () => {
  it('answers yes with the binding and rule that allow it', () => {
    const r = kaudit([
      'rbac',
      'can',
      'serviceaccount:ci:deployer',
      'patch',
      'deployments.apps',
      '-n',
      'app1',
      '--rbac',
      CLUSTER,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      'yes\nallowed by RoleBinding app1/deployer -> ClusterRole deployer rules[0] verbs=[get,list,watch,update,patch] apiGroups=[apps] resources=[deployments]\n',
    );
  });

  it('answers no with exit 1 and the closest rule', () => {
    const r = kaudit([
      'rbac',
      'can',
      'system:serviceaccount:ci:deployer',
      'list',
      'configmaps',
      '-n',
      'app1',
      '--rbac',
      CLUSTER,
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      'no\nno rule bound to system:serviceaccount:ci:deployer allows list configmaps in namespace app1\n',
    );
    expect(r.stdout).toContain('closest: RoleBinding app1/deployer -> ClusterRole deployer rules[1]');
    expect(r.stdout).toContain('lacks verb "list"');
  });

  it('groups count: --group devs may exec into pods in payments; --json gives one document', () => {
    const r = kaudit([
      'rbac',
      'can',
      'dana',
      'create',
      'pods/exec',
      '-n',
      'payments',
      '--group',
      'devs',
      '--rbac',
      CLUSTER,
      '--json',
    ]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      allowed: true,
      by: { binding: 'payments-devs', role: 'pod-admin', roleKind: 'Role', ruleIndex: 0 },
    });
  });

  it('a file that is not RBAC is exit 2 naming the file, line and field', () => {
    const bad = join(tmp, 'not-rbac.yaml');
    writeFileSync(bad, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n');
    const r = kaudit(['rbac', 'can', 'alice', 'get', 'pods', '--rbac', bad]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('error[KAUDIT_RBAC_INVALID]');
    expect(r.stderr).toContain(
      `${bad}:2: error[KAUDIT_RBAC_INVALID] kind: kind "ConfigMap": not an RBAC object`,
    );
    expect(r.stderr).not.toContain('    at ');
  });
});

describe('kaudit report denials (rbac e2e)', () => {
  it('--format md gives a Markdown report with the fix', () => {
    const r = kaudit(['report', 'denials', '--from', DENIALS, '--format', 'md']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^## Denied requests\n\n17 of 21 requests denied: rbac 10, admission 5, authentication 1, other 1/,
    );
    expect(r.stdout).toContain(
      '| admission:PodSecurity | system:serviceaccount:kube-system:replicaset-controller | create | pods | payments | 2 |',
    );
    expect(r.stdout).toContain(
      '### RBAC fix for system:serviceaccount:ci:deployer\n\n```yaml\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole',
    );
    expect(r.stdout).toContain('| system:anonymous | anonymous user; never seen succeeding |');
  });
});

describe('kaudit rbac generate over the store', () => {
  it('gives what it gives over the log the store was filled from (the store counts request shapes)', () => {
    const dir = mkdtempSync(join(tmp, 'store-'));
    const log = join(dir, 'audit.log');
    expect(
      runCliSync([
        'simulate',
        '--out',
        log,
        '--count',
        '6000',
        '--seed',
        '8',
        '--start',
        '2026-01-15T09:00:00Z',
      ]).code,
    ).toBe(0);
    expect(runCliSync(['ingest', '--data', join(dir, 'data'), '--no-progress', log]).code).toBe(0);
    const fromLog = runCliSync(['rbac', 'generate', '--all', '--from', log]);
    const fromStore = runCliSync(['rbac', 'generate', '--all', '--data', join(dir, 'data')]);
    expect(fromLog.code, fromLog.stderr).toBe(0);
    expect(fromStore.code, fromStore.stderr).toBe(0);
    expect(fromStore.stdout.length).toBeGreaterThan(1000);
    expect(fromStore.stdout).toBe(fromLog.stdout);
    // One subject: the store reads only that subject's requests, and the answer is the same.
    const one = ['--serviceaccount', 'kube-system:replicaset-controller', '--user', 'alice@example.com'];
    const oneFromLog = runCliSync(['rbac', 'generate', ...one, '--from', log]);
    const oneFromStore = runCliSync(['rbac', 'generate', ...one, '--data', join(dir, 'data')]);
    expect(oneFromLog.code, oneFromLog.stderr).toBe(0);
    expect(oneFromStore.stdout).toContain('name: replicaset-controller');
    expect(oneFromStore.stdout).toBe(oneFromLog.stdout);
  });
});
