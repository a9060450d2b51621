import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { validateRbacObject } from '../fixtures/rbac/validate-rbac-object.js';
import { FIXTURES, runCliSync } from '../helpers/cli.js';

const DENIALS = join(FIXTURES, 'rbac/denials.jsonl');
const CLUSTER = join(FIXTURES, 'rbac/cluster-rbac.yaml');

describe('kaudit report denials', () => {
  it('a table of the groups, then the fixes as YAML ready for kubectl apply', () => {
    const r = runCliSync(['report', 'denials', '--from', DENIALS]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const [head, ...rest] = r.stdout.split(
      '\n# RBAC fix for system:serviceaccount:ci:deployer: allows its 4 denied request(s)\n',
    );
    expect(head).toContain('17 of 21 requests denied: rbac 10, admission 5, authentication 1, other 1');
    expect(head).toMatch(/admission:PodSecurity\s+dana@example.com\s+create\s+pods\s+payments\s+1/);
    expect(head).toMatch(/authentication\s+\(unauthenticated\)\s+list\s+secrets/);
    expect(head).toContain(
      'suspicious: system:anonymous: anonymous user; never seen succeeding (no fix proposed)',
    );
    const objects = parseAllDocuments(rest.join('')).map((d) => d.toJS() as { kind: string });
    expect(objects.map((o) => o.kind)).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'RoleBinding',
      'Role',
      'RoleBinding',
    ]);
    for (const o of objects) validateRbacObject(o);
  });

  it('--json: PodSecurity rejections are admission with no fix; --rbac adds the closest role', () => {
    const r = runCliSync(['report', 'denials', '--from', DENIALS, '--rbac', CLUSTER, '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      groups: {
        class: string;
        subject: string;
        resource: string;
        admission?: { kind: string };
        closest?: { role: string; lacks: string[] } | null;
      }[];
      subjects: { subject: string; fix: unknown }[];
    };
    const ps = out.groups.filter((g) => g.admission?.kind === 'PodSecurity');
    expect(ps.map((g) => g.class)).toEqual(['admission', 'admission']);
    expect(out.subjects.find((s) => s.subject === 'dana@example.com')?.fix).toBeNull();
    expect(
      out.groups.find((g) => g.resource === 'secrets' && g.class === 'rbac' && g.subject.includes('deployer'))
        ?.closest,
    ).toMatchObject({
      role: 'deployer',
      lacks: ['resource "secrets"'],
    });
  });

  it('without --from it reads the store, and a missing store is exit 2 with a hint', () => {
    const r = runCliSync(['report', 'denials', '--data', '/nonexistent/kaudit-data']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'error[KAUDIT_STORE_MISSING]: no store at /nonexistent/kaudit-data/kaudit.duckdb',
    );
    expect(r.stderr).toContain('hint: load events with `kaudit ingest PATH...`');
  });

  it('a malformed number is exit 2', () => {
    const r = runCliSync(['report', 'denials', '--from', DENIALS, '--limit', 'many']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error[KAUDIT_FLAG_INVALID]: --limit "many"');
  });
});
