import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { type AgentConfig, parseAgentConfig } from '../../src/collect/agent-config.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { type K8sObject, unknownFieldProblems, validateSchema } from '../helpers/k8s-schema.js';

const DEPLOY = join(REPO_ROOT, 'deploy/kubernetes');
const OVERLAYS = ['node-agent', 'webhook'];

type Obj = K8sObject;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? yamlFiles(p) : p.endsWith('.yaml') ? [p] : [];
  });
}

const docs = (text: string): Obj[] =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);

function render(overlay: string): Obj[] {
  const out = execFileSync('kubectl', ['kustomize', join(DEPLOY, 'overlays', overlay)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return docs(out);
}

interface Mount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}
interface PodSpec {
  containers: {
    args?: string[];
    volumeMounts?: Mount[];
    ports?: { name: string; containerPort: number }[];
    livenessProbe?: { httpGet?: { path: string; port: string } };
    readinessProbe?: { httpGet?: { path: string; port: string } };
  }[];
  volumes?: {
    name: string;
    configMap?: { name: string; items?: { key: string; path: string }[] };
    hostPath?: { path: string };
  }[];
  nodeSelector?: Record<string, string>;
  tolerations?: { key: string; effect?: string }[];
}

function podSpecOf(objects: Obj[], ...kinds: string[]): PodSpec {
  const workload = objects.find((o) => kinds.includes(o.kind));
  if (workload === undefined) throw new Error(`no ${kinds.join(' or ')} in the rendered overlay`);
  return (workload.spec as { template: { spec: PodSpec } }).template.spec;
}

const within = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

/** Every path the agent opens, with whether it writes there. */
function configPaths(config: AgentConfig): { path: string; what: string; writes: boolean }[] {
  const out = [
    { path: config.runPath, what: 'run_path', writes: true },
    { path: config.dataDir, what: 'data', writes: true },
  ];
  for (const l of config.logs) {
    if (l.type === 'file') {
      const parts = l.path.split('/');
      const glob = parts.findIndex((s) => /[*?[]/.test(s));
      out.push({
        path: glob < 0 ? posix.dirname(l.path) : parts.slice(0, glob).join('/'),
        what: `${l.name} path`,
        writes: false,
      });
    } else {
      if (l.tls) {
        out.push({ path: l.tls.cert, what: `${l.name} tls.cert`, writes: false });
        out.push({ path: l.tls.key, what: `${l.name} tls.key`, writes: false });
        if (l.tls.clientCa)
          out.push({ path: l.tls.clientCa, what: `${l.name} tls.client_ca`, writes: false });
      }
      if (l.tokenFile) out.push({ path: l.tokenFile, what: `${l.name} token_file`, writes: false });
    }
  }
  return out;
}

/** Problems with the agent's config against the pod that runs it: each path inside a mount, writable where it writes. */
function mountProblems(spec: PodSpec, configMaps: Obj[]): string[] {
  const problems: string[] = [];
  const c = spec.containers[0];
  const mounts = c?.volumeMounts ?? [];
  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
  for (const m of mounts) if (!volumes.has(m.name)) problems.push(`volumeMount ${m.name} has no volume`);
  const args = c?.args ?? [];
  const configFile = args[args.indexOf('--config') + 1];
  if (configFile === undefined) return [...problems, 'no --config in args'];
  const configMount = mounts
    .filter((m) => within(configFile, m.mountPath))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  const volume = configMount && volumes.get(configMount.name);
  const item = volume?.configMap?.items?.find(
    (i) => posix.join(configMount?.mountPath ?? '', i.path) === configFile,
  );
  const cm = configMaps.find((m) => m.metadata.name === volume?.configMap?.name);
  const text = item && (cm?.data as Record<string, string> | undefined)?.[item.key];
  if (text === undefined) return [...problems, `--config ${configFile} is not a key of a mounted ConfigMap`];
  const { config, diagnostics } = parseAgentConfig(text, { file: configFile });
  if (config === undefined) return [...problems, ...diagnostics.map((d) => d.message)];
  for (const p of configPaths(config)) {
    const m = mounts
      .filter((x) => within(p.path, x.mountPath))
      .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
    if (m === undefined) problems.push(`${p.what} ${p.path} is not inside a mounted volume`);
    else if (p.writes && m.readOnly) problems.push(`${p.what} ${p.path} is on read-only mount ${m.name}`);
  }
  const adminPort = Number(config.admin.port);
  const port = c?.ports?.find((x) => x.containerPort === adminPort);
  for (const probe of [c?.livenessProbe, c?.readinessProbe]) {
    if (probe?.httpGet?.path !== '/healthz' || probe.httpGet.port !== port?.name)
      problems.push(`probe not on /healthz of the admin port ${adminPort}`);
  }
  if (config.admin.host === '127.0.0.1')
    problems.push('admin.listen on loopback: kubelet probes cannot reach it');
  return problems;
}

describe('deploy/kubernetes', () => {
  it('every manifest file validates against the Kubernetes schemas', () => {
    const files = yamlFiles(DEPLOY).filter((f) => !f.endsWith('kustomization.yaml'));
    expect(files.map((f) => relative(DEPLOY, f)).sort()).toEqual([
      'base/namespace.yaml',
      'base/serviceaccount.yaml',
      'overlays/node-agent/configmap.yaml',
      'overlays/node-agent/daemonset.yaml',
      'overlays/webhook/configmap.yaml',
      'overlays/webhook/deployment.yaml',
      'overlays/webhook/persistentvolumeclaim.yaml',
      'overlays/webhook/service.yaml',
    ]);
    for (const f of files)
      for (const o of docs(readFileSync(f, 'utf8'))) expect(() => validateSchema(o), f).not.toThrow();
  });

  it('has no field the Kubernetes schemas do not define, in any file or rendered overlay', () => {
    const objects = [
      ...yamlFiles(DEPLOY)
        .filter((f) => !f.endsWith('kustomization.yaml'))
        .flatMap((f) =>
          docs(readFileSync(f, 'utf8')).map((object) => ({ label: relative(DEPLOY, f), object })),
        ),
      ...OVERLAYS.flatMap((overlay) =>
        render(overlay).map((object) => ({
          label: `${overlay}: ${object.kind} ${object.metadata.name}`,
          object,
        })),
      ),
    ];
    expect(unknownFieldProblems(objects)).toEqual([]);
  });

  it('would catch a misspelt field, a field at the wrong level and a value of the wrong type', () => {
    const daemonSet = render('node-agent').find((o) => o.kind === 'DaemonSet') as Obj;
    const mutate = (change: (c: Record<string, unknown>, s: Record<string, unknown>) => void): Obj => {
      const copy = structuredClone(daemonSet);
      const s = podSpecOf([copy], 'DaemonSet') as unknown as Record<string, unknown>;
      change((s.containers as Record<string, unknown>[])[0] as Record<string, unknown>, s);
      return copy;
    };
    const problems = unknownFieldProblems([
      { label: 'typo', object: mutate((c) => Object.assign(c, { imagePullPolicyy: 'Always' })) },
      { label: 'level', object: mutate((_c, s) => Object.assign(s, { readOnlyRootFilesystem: true })) },
      { label: 'type', object: mutate((c) => Object.assign(c, { stdin: 'yes' })) },
    ]);
    expect(problems).toEqual([
      expect.stringMatching(/^typo: .*'"imagePullPolicyy"' does not exist in type 'IContainer'/),
      expect.stringMatching(/^level: .*'"readOnlyRootFilesystem"' does not exist in type 'IPodSpec'/),
      expect.stringMatching(/^type: Type 'string' is not assignable to type 'boolean( \| undefined)?'/),
    ]);
    // The compiled JSON Schema validators alone let the first two through.
    expect(() =>
      validateSchema(mutate((c) => Object.assign(c, { imagePullPolicyy: 'Always' }))),
    ).not.toThrow();
  });

  for (const overlay of OVERLAYS) {
    describe(`overlays/${overlay}`, () => {
      const objects = render(overlay);

      it('renders with kubectl kustomize into valid objects, all in the kaudit namespace', () => {
        for (const o of objects) {
          expect(() => validateSchema(o), `${o.kind} ${o.metadata.name}`).not.toThrow();
          if (o.kind !== 'Namespace')
            expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe('kaudit');
        }
      });

      it("puts every path of the ConfigMap's kaudit.yaml inside a mounted volume, and probes /healthz", () => {
        const spec = podSpecOf(objects, 'DaemonSet', 'Deployment');
        expect(
          mountProblems(
            spec,
            objects.filter((o) => o.kind === 'ConfigMap'),
          ),
        ).toEqual([]);
      });
    });
  }

  it('runs the node agent on control-plane nodes only, reading the log directory read-only', () => {
    const spec = podSpecOf(render('node-agent'), 'DaemonSet');
    expect(spec.nodeSelector).toEqual({ 'node-role.kubernetes.io/control-plane': '' });
    expect(spec.tolerations?.map((t) => t.key)).toContain('node-role.kubernetes.io/control-plane');
    const log = spec.containers[0]?.volumeMounts?.find(
      (m) => m.mountPath === '/var/log/kubernetes/apiserver',
    );
    expect(log?.readOnly).toBe(true);
    expect(spec.volumes?.find((v) => v.name === log?.name)?.hostPath?.path).toBe(
      '/var/log/kubernetes/apiserver',
    );
  });

  it('the path check finds a path outside the mounts and a store on a read-only mount', () => {
    const objects = render('webhook');
    const cm = structuredClone(objects.find((o) => o.kind === 'ConfigMap')) as Obj & {
      data: Record<string, string>;
    };
    cm.data['kaudit.yaml'] = (cm.data['kaudit.yaml'] ?? '')
      .replace('data: /var/lib/kaudit/data', 'data: /etc/kaudit/tls/data')
      .replace('/etc/kaudit/tls/ca.crt', '/etc/ssl/ca.crt');
    const spec = podSpecOf(objects, 'Deployment');
    expect(mountProblems(spec, [cm])).toEqual([
      'data /etc/kaudit/tls/data is on read-only mount tls',
      'kube-apiserver-webhook tls.client_ca /etc/ssl/ca.crt is not inside a mounted volume',
    ]);
  });
});
