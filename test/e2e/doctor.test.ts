import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentProcess,
  BIN,
  buildOnce,
  kaudit,
  startAgent,
  tempDir,
  waitFor,
} from '../fixtures/agent/harness.js';
import { auditLine } from '../fixtures/agent/make-events.js';
import { THIRD_PARTY } from '../helpers/cli.js';

interface Check {
  id: string;
  status: 'ok' | 'warn' | 'fail' | 'skip';
  detail: string;
  fix?: string;
}

const byId = (checks: Check[]) => Object.fromEntries(checks.map((c) => [c.id, c]));
/** No agent config from the machine or the environment leaks into a test. */
const isolated = (cwd: string) => ({ cwd, env: { KAUDIT_CONFIG: '', KAUDIT_DATA: join(cwd, 'data') } });

describe('kaudit doctor', () => {
  const dir = tempDir('doctor');
  beforeAll(buildOnce);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('on a machine with nothing set up fails, with one line and its fix per problem', async () => {
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    const r = await kaudit(['doctor', '--rootfs', empty], isolated(empty));
    expect(r.code).toBe(1);
    const failing = r.stdout.split('\n').filter((l) => l.startsWith('FAIL'));
    expect(failing).toEqual([
      expect.stringMatching(
        /^FAIL {2}apiserver-flags +no kube-apiserver here: .* -> fix: run on a control-plane node or give --manifest FILE; for EKS, GKE or AKS see docs\/managed-clusters.md$/,
      ),
      expect.stringMatching(
        /^FAIL {2}agent-running +no running agent announced itself .* -> fix: kaudit agent --config /,
      ),
    ]);
    const json = await kaudit(['doctor', '--rootfs', empty, '--json'], isolated(empty));
    expect(json.code).toBe(1);
    const out = JSON.parse(json.stdout) as { ok: boolean; checks: Check[] };
    expect(out.ok).toBe(false);
    for (const c of out.checks.filter((c) => c.status === 'fail' || c.status === 'warn'))
      expect(c.fix).toBeTruthy();
  });

  describe('on a node set up with kaudit setup apiserver and an agent tailing the log', () => {
    const root = join(dir, 'node');
    const manifest = join(root, 'etc/kubernetes/manifests/kube-apiserver.yaml');
    const logDir = join(root, 'var/log/kubernetes/apiserver');
    let agent: AgentProcess;

    beforeAll(async () => {
      mkdirSync(join(root, 'etc/kubernetes/manifests'), { recursive: true });
      writeFileSync(manifest, readFileSync(`${THIRD_PARTY}kubeadm/kube-apiserver-v1.30-stock.yaml`));
      const setup = await kaudit(['setup', 'apiserver', '--manifest', manifest, '--rootfs', root, '--write']);
      expect(setup.code, setup.stderr).toBe(0);
      mkdirSync(logDir, { recursive: true });
      const now = new Date().toISOString();
      let lines = '';
      for (let i = 0; i < 20; i++)
        lines += auditLine(`doc-${i}`, { requestReceivedTimestamp: now, stageTimestamp: now });
      writeFileSync(join(logDir, 'audit.log'), lines);
      const config = join(root, 'kaudit.yaml');
      writeFileSync(
        config,
        `cluster: e2e\nrun_path: run\ndata: data\nadmin: {listen: "127.0.0.1:0"}\nlogs:\n  - type: file\n    path: ${join(logDir, 'audit.log')}\n`,
      );
      agent = await startAgent(config);
      await waitFor('the events to be stored', async () => {
        const s = (await (await fetch(`${agent.admin}/status`)).json()) as { store: { rows: number | null } };
        return (s.store.rows ?? 0) >= 20;
      });
    });
    afterAll(async () => {
      agent?.child.kill('SIGTERM');
      await agent?.exited;
    });

    it('passes every check', async () => {
      const r = await kaudit(
        ['doctor', '--manifest', manifest, '--rootfs', root, '--config', join(root, 'kaudit.yaml'), '--json'],
        isolated(root),
      );
      const checks = byId((JSON.parse(r.stdout) as { checks: Check[] }).checks);
      expect(checks['apiserver-flags']?.status).toBe('ok');
      expect(checks['audit-policy']).toMatchObject({
        status: 'ok',
        detail: `${join(root, 'etc/kubernetes/audit-policies/policy.yaml')} lints clean`,
      });
      expect(checks['audit-log-dir']?.status).toBe('ok');
      expect(checks['agent-config']?.status).toBe('ok');
      expect(checks['agent-running']?.status).toBe('ok');
      expect(checks['agent-tailing']?.status).toBe('ok');
      expect(checks['agent-freshness']?.status).toBe('ok');
      expect(checks['disk-space']?.status).not.toBe('fail');
      expect(r.code).toBe(0);
    });

    it('fails the policy and the log directory when they are gone, naming the fix', async () => {
      const other = join(dir, 'node2');
      mkdirSync(join(other, 'etc/kubernetes/manifests'), { recursive: true });
      writeFileSync(join(other, 'etc/kubernetes/manifests/kube-apiserver.yaml'), readFileSync(manifest));
      const r = await kaudit(['doctor', '--rootfs', other, '--json'], isolated(other));
      const checks = byId((JSON.parse(r.stdout) as { checks: Check[] }).checks);
      expect(checks['apiserver-flags']?.status).toBe('ok');
      expect(checks['audit-policy']).toMatchObject({
        status: 'fail',
        fix: `kaudit policy generate > ${join(other, 'etc/kubernetes/audit-policies/policy.yaml')}`,
      });
      expect(checks['audit-log-dir']?.status).toBe('fail');
      expect(r.code).toBe(1);
    });

    it('fails the flags of a manifest without auditing, with the setup command as the fix', async () => {
      const plain = join(dir, 'plain.yaml');
      writeFileSync(plain, readFileSync(`${THIRD_PARTY}kubeadm/kube-apiserver-v1.30-stock.yaml`));
      const r = await kaudit(['doctor', '--manifest', plain, '--json'], isolated(dir));
      const checks = byId((JSON.parse(r.stdout) as { checks: Check[] }).checks);
      expect(checks['apiserver-flags']).toMatchObject({
        status: 'fail',
        fix: `kaudit setup apiserver --manifest ${plain} --write`,
      });
    });
  });

  describe('on the demo (kaudit agent --demo, as npm start runs it)', () => {
    const demoDir = join(dir, 'demo');
    let demo: ChildProcess;

    beforeAll(async () => {
      mkdirSync(demoDir);
      demo = spawn(
        process.execPath,
        [BIN, 'agent', '--demo', '--data', join(demoDir, 'data'), '--demo-rate', '100'],
        {
          cwd: demoDir,
          env: { ...process.env, KAUDIT_ADMIN_LISTEN: '127.0.0.1:0' },
          stdio: 'ignore',
        },
      );
      await waitFor('the demo agent to store events', async () => {
        const f = join(demoDir, 'data/agent.json');
        if (!existsSync(f)) return false;
        try {
          const admin = (JSON.parse(readFileSync(f, 'utf8')) as { admin: string }).admin;
          const s = (await (await fetch(`${admin}/status`)).json()) as { store: { rows: number | null } };
          return (s.store.rows ?? 0) > 0;
        } catch {
          return false;
        }
      });
    });
    afterAll(async () => {
      demo?.kill('SIGTERM');
      await new Promise((r) => demo?.once('exit', r));
    });

    it("passes the agent's checks", async () => {
      const r = await kaudit(['doctor', '--rootfs', demoDir, '--json'], isolated(demoDir));
      const checks = byId((JSON.parse(r.stdout) as { checks: Check[] }).checks);
      expect(checks['agent-running']?.status).toBe('ok');
      expect(checks['agent-tailing']?.status).toBe('ok');
      expect(checks['agent-freshness']?.status).toBe('ok');
    });
  });
});
