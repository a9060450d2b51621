import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getPreset, renderPolicyYaml } from '../policy/generate.js';
import { type DoctorInputs, runDoctor } from './doctor.js';

const root = mkdtempSync(join(tmpdir(), 'kaudit-doctor-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A fake /proc with one process running `argv`. */
function proc(name: string, argv: string[]): string {
  const dir = join(root, name);
  mkdirSync(join(dir, '4242'), { recursive: true });
  mkdirSync(join(dir, 'self'), { recursive: true });
  writeFileSync(join(dir, '4242', 'cmdline'), `${argv.join('\0')}\0`);
  return dir;
}

const inputs = (over: Partial<DoctorInputs>): DoctorInputs => ({
  rootfs: join(root, 'nothing'),
  procDir: join(root, 'no-proc'),
  configCandidates: [],
  defaultDataDir: join(root, 'data'),
  readLocator: async () => undefined,
  maxEventAgeMs: 600_000,
  minFreeBytes: 1,
  now: Date.now(),
  timeoutMs: 1000,
  ...over,
});

const check = async (over: Partial<DoctorInputs>, id: string) =>
  (await runDoctor(inputs(over))).find((c) => c.id === id);

describe('runDoctor', () => {
  it("finds a running kube-apiserver's flags in /proc when there is no manifest", async () => {
    writeFileSync(join(root, 'policy.yaml'), renderPolicyYaml(getPreset('recommended')));
    const p = proc('proc-ok', [
      '/usr/local/bin/kube-apiserver',
      `--audit-policy-file=${join(root, 'policy.yaml')}`,
      '--audit-log-path',
      join(root, 'logs/audit.log'),
      '--audit-log-maxsize=100',
      '--audit-log-maxbackup=5',
    ]);
    mkdirSync(join(root, 'logs'));
    const checks = await runDoctor(inputs({ procDir: p, rootfs: '/' }));
    expect(checks.find((c) => c.id === 'apiserver-flags')).toMatchObject({
      status: 'ok',
      detail: expect.stringContaining('process 4242'),
    });
    expect(checks.find((c) => c.id === 'audit-policy')).toMatchObject({ status: 'ok' });
    expect(checks.find((c) => c.id === 'audit-log-dir')).toMatchObject({ status: 'ok' });
  });

  it('fails a kube-apiserver without audit flags and warns about a log that is never rotated', async () => {
    const none = proc('proc-none', ['kube-apiserver', '--secure-port=6443']);
    expect(await check({ procDir: none }, 'apiserver-flags')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('no --audit-policy-file and no --audit-log-path'),
      fix: 'kaudit setup apiserver --manifest /etc/kubernetes/manifests/kube-apiserver.yaml --write',
    });
    const unrotated = proc('proc-unrotated', [
      'kube-apiserver',
      '--audit-policy-file=/p',
      '--audit-log-path=/var/log/a.log',
    ]);
    expect(await check({ procDir: unrotated }, 'apiserver-flags')).toMatchObject({
      status: 'warn',
      detail: expect.stringContaining('grows until the disk is full'),
    });
    const legacy = proc('proc-legacy', [
      'kube-apiserver',
      '--audit-policy-file=/p',
      '--audit-log-path=/a.log',
      '--audit-log-format=legacy',
    ]);
    expect(await check({ procDir: legacy }, 'apiserver-flags')).toMatchObject({ status: 'fail' });
  });

  it('fails a policy kube-apiserver would refuse, naming the first error', async () => {
    writeFileSync(
      join(root, 'bad.yaml'),
      'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Loud\n',
    );
    const c = await check({ policy: join(root, 'bad.yaml') }, 'audit-policy');
    expect(c).toMatchObject({ status: 'fail', fix: `kaudit policy lint ${join(root, 'bad.yaml')}` });
    expect(c?.detail).toMatch(/^1 error\(s\), first: .*bad\.yaml:4:\d+: error\[/);
  });

  it('fails when the data directory has less free space than asked', async () => {
    expect(await check({ minFreeBytes: 2 ** 60 }, 'disk-space')).toMatchObject({ status: 'fail' });
  });

  it('reports an agent whose agent.json names a dead process as not running', async () => {
    const c = await check(
      { readLocator: async () => ({ pid: 2 ** 22 + 12345, admin: 'http://127.0.0.1:1' }) },
      'agent-running',
    );
    expect(c).toMatchObject({ status: 'fail', detail: expect.stringContaining('no running agent') });
  });
});
