import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, runCliSync } from '../helpers/cli.js';

const CLUSTER = join(FIXTURES, 'rbac/cluster-rbac.yaml');
const LOG = join(FIXTURES, 'rbac/denials.jsonl');

describe('kaudit rbac review', () => {
  it('a table per subject, the risky permissions with the granting binding, never-seen subjects', () => {
    const r = runCliSync(['rbac', 'review', '--rbac', CLUSTER, '--from', LOG]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/ServiceAccount ci\/deployer\s+10\s+2\s+1\s+0\s+0\s+1\s+0/);
    expect(r.stdout).toMatch(
      /high\s+User dana@example.com\s+pods-exec-attach\s+payments\s+RoleBinding payments\/payments-devs -> Role pod-admin rules\[0\]\s+no/,
    );
    expect(r.stdout).toMatch(
      /ClusterRoleBinding old-contractor\s+cluster-admin\s+User contractor@example.com/,
    );
  });

  it('--fail-on high exits 1; --json is one document', () => {
    const r = runCliSync(['rbac', 'review', '--rbac', CLUSTER, '--from', LOG, '--fail-on', 'high', '--json']);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as { subjects: { username: string; risks: { id: string }[] }[] };
    expect(out.subjects.map((s) => s.username)).toEqual([
      'system:serviceaccount:ci:deployer',
      'dana@example.com',
    ]);
    const critical = runCliSync([
      'rbac',
      'review',
      '--rbac',
      CLUSTER,
      '--from',
      LOG,
      '--fail-on',
      'critical',
    ]);
    expect(critical.code).toBe(0);
  });

  it('--format md gives sections for a ticket, with the tightened roles', () => {
    const r = runCliSync(['rbac', 'review', '--rbac', CLUSTER, '--from', LOG, '--format', 'md']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('### Risky permissions');
    expect(r.stdout).toContain('### Tightened RBAC for ServiceAccount ci/deployer\n\n```yaml\n');
  });

  it('no --rbac, a bad --fail-on, or an unknown --user are exit 2', () => {
    const noRbac = runCliSync(['rbac', 'review', '--from', LOG]);
    expect(noRbac.code).toBe(2);
    expect(noRbac.stderr).toContain(
      'error[KAUDIT_NO_INPUT]: rbac review needs the cluster RBAC: --rbac FILE',
    );
    expect(runCliSync(['rbac', 'review', '--rbac', CLUSTER, '--from', LOG, '--fail-on', 'bad']).code).toBe(2);
    const unknown = runCliSync(['rbac', 'review', '--rbac', CLUSTER, '--from', LOG, '--user', 'nobody']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('error[KAUDIT_RBAC_UNKNOWN_SUBJECT]');
  });
});
