import { readFileSync } from 'node:fs';
import { Pod } from 'kubernetes-models/v1/Pod';
import { describe, expect, it } from 'vitest';
import { parse, parseDocument } from 'yaml';
import { THIRD_PARTY } from '../../test/helpers/cli.js';
import {
  DEFAULT_LOG_PATH,
  DEFAULT_POLICY_FILE,
  inspectApiserverManifest,
  setupApiserverManifest,
} from './apiserver-manifest.js';
import { lineDiff } from './line-diff.js';

const stock = readFileSync(`${THIRD_PARTY}kubeadm/kube-apiserver-v1.30-stock.yaml`, 'utf8');
const customised = readFileSync(`${THIRD_PARTY}kubeadm/kube-apiserver-v1.30.yaml`, 'utf8');

interface PodShape {
  spec: {
    containers: {
      command: string[];
      volumeMounts: { mountPath: string; name: string; readOnly?: boolean }[];
    }[];
    volumes: { name: string; hostPath?: { path: string; type?: string } }[];
  };
}

const podOf = (text: string) => parse(text) as PodShape;
const diffLines = (a: string, b: string) =>
  lineDiff(a, b, { from: 'a', to: 'b' })
    .split('\n')
    .filter((l) => /^[-+][^-+]/.test(l));

describe('setupApiserverManifest on kubeadm output', () => {
  const result = setupApiserverManifest(stock, { webhook: {} });
  const pod = podOf(result.text);
  const container = pod.spec.containers[0];

  it('gives a manifest that validates as a Pod', () => {
    expect(() => new Pod(parse(result.text)).validate()).not.toThrow();
  });

  it("carries every flag the seed lists, and kaudit's", () => {
    expect(container?.command).toEqual(
      expect.arrayContaining([
        `--audit-policy-file=${DEFAULT_POLICY_FILE}`,
        `--audit-log-path=${DEFAULT_LOG_PATH}`,
        '--audit-log-format=json',
        '--audit-log-maxage=7',
        '--audit-log-maxbackup=10',
        '--audit-log-maxsize=100',
        '--audit-webhook-config-file=/etc/kubernetes/kaudit/webhook.kubeconfig',
        '--audit-webhook-mode=batch',
        '--audit-webhook-batch-max-size=400',
        '--audit-webhook-batch-max-wait=5s',
        '--audit-webhook-version=audit.k8s.io/v1',
      ]),
    );
    // kubeadm's alphabetical order is kept: the audit flags sit between --allow-privileged and --authorization-mode.
    const flags = container?.command.slice(1) ?? [];
    expect(flags).toEqual([...flags].sort());
  });

  it('mounts the policy read-only and the log directory writable, from the host', () => {
    const mount = (p: string) => container?.volumeMounts.find((m) => m.mountPath === p);
    const volume = (n: string | undefined) => pod.spec.volumes.find((v) => v.name === n);
    const policy = mount(DEFAULT_POLICY_FILE);
    expect(policy?.readOnly).toBe(true);
    expect(volume(policy?.name)?.hostPath).toEqual({ path: DEFAULT_POLICY_FILE, type: 'File' });
    const log = mount('/var/log/kubernetes/apiserver');
    expect(log?.readOnly).toBeUndefined();
    expect(volume(log?.name)?.hostPath).toEqual({
      path: '/var/log/kubernetes/apiserver',
      type: 'DirectoryOrCreate',
    });
    const webhook = mount('/etc/kubernetes/kaudit');
    expect(webhook?.readOnly).toBe(true);
    expect(result.hostPaths).toEqual({
      policyFile: DEFAULT_POLICY_FILE,
      logDir: '/var/log/kubernetes/apiserver',
      webhookConfigFile: '/etc/kubernetes/kaudit/webhook.kubeconfig',
    });
  });

  it('only adds lines: everything else stays byte for byte', () => {
    const changed = diffLines(stock, result.text);
    expect(changed.filter((l) => l.startsWith('-'))).toEqual([]);
    expect(changed).toHaveLength(11 + 3 * 3 + 3 * 4 - 1);
  });

  it('is unchanged by a second run', () => {
    const again = setupApiserverManifest(result.text, { webhook: {} });
    expect(again.changes).toEqual([]);
    expect(again.text).toBe(result.text);
  });
});

describe('setupApiserverManifest on a manifest that already audits', () => {
  it("keeps the manifest's own paths and volumes, adding only what is missing", () => {
    const r = setupApiserverManifest(customised);
    expect(r.flags['--audit-log-path']).toBe('/var/log/audit/kube-apiserver-audit.log');
    expect(r.flags['--audit-policy-file']).toBe('/etc/kubernetes/moreconfig/apiserver-audit-policy.yaml');
    expect(r.changes.map((c) => c.name)).toEqual([
      '--audit-log-format',
      '--audit-log-maxage',
      '--audit-log-maxbackup',
      '--audit-log-maxsize',
    ]);
    // Found through the existing hostPath volumes (auditlogs, moreconfig).
    expect(r.hostPaths).toEqual({
      policyFile: '/etc/kubernetes/moreconfig/apiserver-audit-policy.yaml',
      logDir: '/var/log/audit',
    });
  });

  it('moves the paths when asked, and corrects a legacy format and stdout logging', () => {
    const legacy = stock.replace(
      '    - --allow-privileged=true\n',
      '    - --allow-privileged=true\n    - --audit-log-format=legacy\n    - --audit-log-path=-\n',
    );
    const r = setupApiserverManifest(legacy, { policyFile: '/etc/kubernetes/audit/policy.yaml' });
    expect(r.changes.filter((c) => c.before !== undefined)).toEqual([
      { what: 'flag', name: '--audit-log-path', before: '-', after: DEFAULT_LOG_PATH },
      { what: 'flag', name: '--audit-log-format', before: 'legacy', after: 'json' },
    ]);
    expect(r.flags['--audit-policy-file']).toBe('/etc/kubernetes/audit/policy.yaml');
  });

  it('reads and rewrites flags given as two items (--flag value), and args instead of command', () => {
    const argsForm = stock
      .replace(
        '  - command:\n    - kube-apiserver\n',
        '  - command:\n    - kube-apiserver\n    args:\n    - --audit-log-maxage\n    - "3"\n',
      )
      .replace(/ {4}- (--(?!audit)[a-z-]+=.*)\n/g, '    - $1\n');
    const r = setupApiserverManifest(argsForm, { logMaxAgeDays: 5 });
    const c = podOf(r.text).spec.containers[0] as unknown as { command: string[]; args: string[] };
    const at = c.args.indexOf('--audit-log-maxage');
    expect(c.args.slice(at, at + 2)).toEqual(['--audit-log-maxage', '5']);
    expect(c.args).toContain(`--audit-policy-file=${DEFAULT_POLICY_FILE}`);
    expect(setupApiserverManifest(r.text, { logMaxAgeDays: 5 }).changes).toEqual([]);
  });

  it('keeps the layout of a manifest whose lists are indented under their keys', () => {
    const indented = parseDocument(stock).toString({ indentSeq: true, lineWidth: 0 });
    expect(indented).toContain('    - command:\n        - kube-apiserver\n');
    const r = setupApiserverManifest(indented);
    expect(diffLines(indented, r.text).filter((l) => l.startsWith('-'))).toEqual([]);
  });
});

describe('setupApiserverManifest refusals', () => {
  it('refuses what is not a kube-apiserver Pod, saying why', () => {
    expect(() => setupApiserverManifest('apiVersion: apps/v1\nkind: Deployment\n', {}, 'x.yaml')).toThrow(
      'x.yaml: is a Deployment, not a Pod',
    );
    const etcd = stock.replace(/kube-apiserver/g, 'etcd');
    expect(() => setupApiserverManifest(etcd, {}, 'etcd.yaml')).toThrow(
      'etcd.yaml: no kube-apiserver container in the Pod (containers: etcd)',
    );
    expect(() => setupApiserverManifest('kind: Pod\nspec: [\n', {}, 'bad.yaml')).toThrow(
      /bad.yaml:\d+:\d+: not valid YAML/,
    );
    const shell = stock.replace(
      '  - command:\n    - kube-apiserver\n',
      '  - command:\n    - sh\n    - -c\n    - kube-apiserver\n',
    );
    expect(() => setupApiserverManifest(shell)).toThrow(/started through a shell/);
  });

  it('refuses a read-only mount where kube-apiserver must write the log', () => {
    const ro = customised.replace(
      '    - mountPath: /var/log/audit\n      name: auditlogs\n',
      '    - mountPath: /var/log/audit\n      name: auditlogs\n      readOnly: true\n',
    );
    expect(() => setupApiserverManifest(ro)).toThrow(/volume auditlogs mounts \/var\/log\/audit read-only/);
  });

  it('refuses relative paths', () => {
    expect(() => setupApiserverManifest(stock, { logPath: 'audit.log' })).toThrow(
      /--audit-log-path "audit.log": must be an absolute path/,
    );
  });
});

describe('inspectApiserverManifest', () => {
  it('reads the flags and maps container paths to host paths through hostPath volumes', () => {
    const view = inspectApiserverManifest(customised);
    expect(view.flags.get('audit-log-path')).toBe('/var/log/audit/kube-apiserver-audit.log');
    expect(view.hostPathOf('/etc/kubernetes/moreconfig/apiserver-audit-policy.yaml')).toBe(
      '/etc/kubernetes/moreconfig/apiserver-audit-policy.yaml',
    );
    expect(view.hostPathOf('/var/lib/nothing')).toBeUndefined();
  });
});
