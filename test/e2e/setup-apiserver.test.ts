import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildOnce, kaudit, tempDir } from '../fixtures/agent/harness.js';
import { THIRD_PARTY } from '../helpers/cli.js';
import { type K8sObject, unknownFieldProblems, validateSchema } from '../helpers/k8s-schema.js';

describe('kaudit setup apiserver', () => {
  const root = tempDir('setup-apiserver');
  const manifests = join(root, 'etc/kubernetes/manifests');
  const manifest = join(manifests, 'kube-apiserver.yaml');
  const original = readFileSync(`${THIRD_PARTY}kubeadm/kube-apiserver-v1.30-stock.yaml`, 'utf8');

  beforeAll(async () => {
    await buildOnce();
    mkdirSync(manifests, { recursive: true });
    writeFileSync(manifest, original, { mode: 0o600 });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const setup = (...args: string[]) =>
    kaudit(['setup', 'apiserver', '--manifest', manifest, '--rootfs', root, ...args]);

  it('prints the changed manifest and leaves the file alone by default', async () => {
    const r = await setup();
    expect(r.code).toBe(0);
    const pod = parse(r.stdout) as K8sObject;
    expect(() => validateSchema(pod)).not.toThrow();
    expect(unknownFieldProblems([{ label: 'manifest', object: pod }])).toEqual([]);
    expect(r.stdout).toContain('--audit-policy-file=/etc/kubernetes/audit-policies/policy.yaml');
    expect(r.stderr).toContain('add --audit-log-path=/var/log/kubernetes/apiserver/audit.log');
    expect(r.stderr).toContain('--write writes it from preset recommended');
    expect(readFileSync(manifest, 'utf8')).toBe(original);
  });

  it('--dry-run shows a unified diff of the manifest and the new policy file', async () => {
    const r = await setup('--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`^--- ${manifest}\\n\\+\\+\\+ ${manifest}\\n@@ -15,6 \\+15,12 @@\\n`),
    );
    expect(r.stdout).toContain('+    - --audit-log-format=json\n');
    expect(r.stdout).toContain(
      `--- /dev/null\n+++ ${join(root, 'etc/kubernetes/audit-policies/policy.yaml')}\n@@ -0,0 +1,`,
    );
    expect(r.stdout).toContain('+apiVersion: audit.k8s.io/v1\n');
    expect(readFileSync(manifest, 'utf8')).toBe(original);
  });

  it('--write writes the policy and the manifest after a backup outside the static Pod directory; a second run changes nothing', async () => {
    const r = await setup('--write');
    expect(r.code).toBe(0);
    const written = readFileSync(manifest, 'utf8');
    expect(written).toContain('--audit-log-maxbackup=10');
    expect(statSync(manifest).mode & 0o777).toBe(0o600);
    expect(readdirSync(manifests)).toEqual(['kube-apiserver.yaml']);
    const backups = readdirSync(join(root, 'etc/kubernetes')).filter((f) => f.includes('kaudit-backup'));
    expect(backups).toHaveLength(1);
    expect(readFileSync(join(root, 'etc/kubernetes', backups[0] ?? ''), 'utf8')).toBe(original);
    const policy = join(root, 'etc/kubernetes/audit-policies/policy.yaml');
    const lint = await kaudit(['policy', 'lint', policy]);
    expect(lint.code).toBe(0);

    const again = await setup('--write');
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('already has every audit flag and mount');
    expect(readFileSync(manifest, 'utf8')).toBe(written);
    expect(readdirSync(join(root, 'etc/kubernetes')).filter((f) => f.includes('kaudit-backup'))).toHaveLength(
      1,
    );
  });

  it('--json says what changed', async () => {
    const r = await setup('--json', '--log-maxage', '30');
    const out = JSON.parse(r.stdout) as {
      changed: boolean;
      changes: { name: string; before?: string; after: string }[];
    };
    expect(out.changed).toBe(true);
    expect(out.changes).toEqual([{ what: 'flag', name: '--audit-log-maxage', before: '7', after: '30' }]);
  });

  it('with --webhook refuses to write until the kubeconfig exists, since kube-apiserver would not start', async () => {
    const r = await setup('--webhook', '--write');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('KAUDIT_SETUP_WEBHOOK_MISSING');
    expect(r.stderr).toContain('kaudit setup webhook --kubeconfig-out');
    mkdirSync(join(root, 'etc/kubernetes/kaudit'), { recursive: true });
    writeFileSync(join(root, 'etc/kubernetes/kaudit/webhook.kubeconfig'), 'apiVersion: v1\nkind: Config\n');
    const ok = await setup('--webhook', '--write');
    expect(ok.code).toBe(0);
    expect(readFileSync(manifest, 'utf8')).toContain('--audit-webhook-mode=batch');
  });

  it('refuses a manifest that is not kube-apiserver, and a policy kube-apiserver would reject', async () => {
    const etcd = join(root, 'etcd.yaml');
    writeFileSync(etcd, original.replace(/kube-apiserver/g, 'etcd'));
    const r = await kaudit(['setup', 'apiserver', '--manifest', etcd]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${etcd}: no kube-apiserver container in the Pod (containers: etcd)`);

    const other = join(root, 'other.yaml');
    copyFileSync(`${THIRD_PARTY}kubeadm/kube-apiserver-v1.30-stock.yaml`, other);
    const badPolicy = join(root, 'bad-policy.yaml');
    writeFileSync(badPolicy, 'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Loud\n');
    const bad = await kaudit([
      'setup',
      'apiserver',
      '--manifest',
      other,
      '--policy-file',
      badPolicy,
      '--write',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('KAUDIT_SETUP_POLICY_INVALID');
    expect(readFileSync(other, 'utf8')).toBe(original);
  });
});
