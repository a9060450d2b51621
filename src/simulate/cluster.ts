import type { Prng } from './prng.js';

/** The Kubernetes version the simulated cluster runs; it shows in every component's user agent. */
export const K8S_VERSION = 'v1.30.4';
const K8S_COMMIT = 'a51b3b711150f57ffc1f526a640ec058514ed596'.slice(0, 7);
const GO_OS = 'linux/amd64';

/** How a user agent looks when it comes from client-go in a Kubernetes binary. */
export function k8sAgent(binary: string, suffix = ''): string {
  return `${binary}/${K8S_VERSION} (${GO_OS}) kubernetes/${K8S_COMMIT}${suffix}`;
}

/** The subject an RBAC binding names, formatted as kube-apiserver's RBAC authorizer does in its reason. */
export type Subject =
  | { kind: 'User'; name: string }
  | { kind: 'Group'; name: string }
  | { kind: 'ServiceAccount'; name: string; namespace: string };

export function describeSubject(s: Subject): string {
  // rbac/rbac.go describes a ServiceAccount as "name/namespace".
  return s.kind === 'ServiceAccount' ? `ServiceAccount "${s.name}/${s.namespace}"` : `${s.kind} "${s.name}"`;
}

/** `RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to Group "g"` (plugin/pkg/auth/authorizer/rbac). */
export function rbacReason(
  binding: { kind: 'ClusterRoleBinding' } | { kind: 'RoleBinding'; namespace: string },
  bindingName: string,
  role: { kind: 'ClusterRole' | 'Role'; name: string },
  subject: Subject,
): string {
  const b = binding.kind === 'RoleBinding' ? `${bindingName}/${binding.namespace}` : bindingName;
  return `RBAC: allowed by ${binding.kind} "${b}" of ${role.kind} "${role.name}" to ${describeSubject(subject)}`;
}

export interface Actor {
  readonly username: string;
  readonly uid?: string;
  readonly groups: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
  readonly userAgent: string;
  readonly sourceIP: string;
  /** The `authorization.k8s.io/reason` kube-apiserver writes when this actor's request is allowed. */
  readonly allowReason: string;
  /** The RBAC subject that names this actor in a fix (a ServiceAccount for service accounts). */
  readonly subject: Subject;
  /** Pre-rendered `"user":{..},"sourceIPs":[..],"userAgent":".."` so events are built by concatenation. */
  readonly json: string;
  /** Pre-rendered `,"annotations":{..}` of an allowed request. */
  readonly allowAnnotationsJson: string;
}

export interface ActorSpec {
  username: string;
  uid?: string;
  groups: readonly string[];
  extra?: Record<string, readonly string[]>;
  userAgent: string;
  sourceIP: string;
  allowReason: string;
  subject?: Subject;
}

export function makeActor(spec: ActorSpec): Actor {
  const user: Record<string, unknown> = { username: spec.username };
  if (spec.uid !== undefined) user.uid = spec.uid;
  user.groups = spec.groups;
  if (spec.extra !== undefined) user.extra = spec.extra;
  const json =
    `"user":${JSON.stringify(user)},"sourceIPs":${JSON.stringify([spec.sourceIP])}` +
    `,"userAgent":${JSON.stringify(spec.userAgent)}`;
  const sa = /^system:serviceaccount:([^:]+):(.+)$/.exec(spec.username);
  const subject: Subject =
    spec.subject ??
    (sa?.[1] !== undefined && sa[2] !== undefined
      ? { kind: 'ServiceAccount', name: sa[2], namespace: sa[1] }
      : { kind: 'User', name: spec.username });
  const allowAnnotationsJson =
    `,"annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":` +
    `${JSON.stringify(spec.allowReason)}}`;
  return { ...spec, subject, json, allowAnnotationsJson };
}

export interface Node {
  readonly name: string;
  readonly ip: string;
  readonly uid: string;
  readonly kubelet: Actor;
  readonly kubeProxy: Actor;
}

export interface Pod {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly ip: string;
  readonly node: Node;
  readonly workload: Workload;
  /** The pod's service account, authenticated with a bound token (user.extra names the pod). */
  readonly actor: Actor;
}

export interface Workload {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly image: string;
  readonly replicaSetHash: string;
  readonly replicaSetUid: string;
  readonly serviceAccount: string;
  readonly configMap: string;
  readonly secret: string;
  readonly pods: Pod[];
  generation: number;
}

/** Namespaces that hold applications; the rest are infrastructure. */
export const APP_NAMESPACES = ['payments', 'checkout', 'catalog', 'web', 'data'] as const;
export const NAMESPACES = [
  'default',
  'kube-system',
  'kube-public',
  'kube-node-lease',
  'monitoring',
  'argocd',
  'ingress-nginx',
  'cert-manager',
  'ci',
  ...APP_NAMESPACES,
] as const;

const APP_NAMES: Record<(typeof APP_NAMESPACES)[number], readonly string[]> = {
  payments: ['payments-api', 'ledger', 'fraud-scorer'],
  checkout: ['checkout-api', 'cart', 'pricing'],
  catalog: ['catalog-api', 'search-indexer', 'image-resizer'],
  web: ['storefront', 'bff', 'sessions'],
  data: ['kafka-connect', 'etl-runner'],
};

export interface Cluster {
  readonly nodes: readonly Node[];
  readonly controlPlaneIP: string;
  readonly workloads: readonly Workload[];
  readonly pods: readonly Pod[];
  readonly kcm: Actor;
  readonly scheduler: Actor;
  readonly controllers: Readonly<Record<ControllerName, Actor>>;
  readonly coredns: Actor;
  readonly metricsServer: Actor;
  readonly prometheus: Actor;
  readonly argocd: Actor;
  readonly ciDeployer: Actor;
  readonly ingressNginx: Actor;
  readonly certManager: Actor;
  readonly healthProbe: Actor;
  readonly humans: readonly Human[];
  /** Precomputed namespace uids so objects keep their identity across events. */
  readonly namespaceUids: Readonly<Record<string, string>>;
}

export interface Human {
  readonly actor: Actor;
  /** Namespaces this person works in. */
  readonly namespaces: readonly string[];
  readonly admin: boolean;
}

export const CONTROLLERS = [
  'deployment-controller',
  'replicaset-controller',
  'endpointslice-controller',
  'endpointslicemirroring-controller',
  'horizontal-pod-autoscaler',
  'namespace-controller',
  'generic-garbage-collector',
  'node-controller',
  'daemon-set-controller',
  'job-controller',
  'cronjob-controller',
  'resourcequota-controller',
] as const;
export type ControllerName = (typeof CONTROLLERS)[number];

function saActor(
  prng: Prng,
  namespace: string,
  name: string,
  userAgent: string,
  sourceIP: string,
  allowReason: string,
  pod?: { name: string; uid: string; node: Node },
): Actor {
  const extra: Record<string, string[]> | undefined =
    pod === undefined
      ? undefined
      : {
          'authentication.kubernetes.io/credential-id': [`JTI=${prng.uuid()}`],
          'authentication.kubernetes.io/node-name': [pod.node.name],
          'authentication.kubernetes.io/node-uid': [pod.node.uid],
          'authentication.kubernetes.io/pod-name': [pod.name],
          'authentication.kubernetes.io/pod-uid': [pod.uid],
        };
  return makeActor({
    username: `system:serviceaccount:${namespace}:${name}`,
    uid: prng.uuid(),
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
    ...(extra === undefined ? {} : { extra }),
    userAgent,
    sourceIP,
    allowReason,
  });
}

/** The RBAC reason for a ClusterRoleBinding `binding` of ClusterRole `role`. */
export function crb(binding: string, role: string, subject: Subject): string {
  return rbacReason({ kind: 'ClusterRoleBinding' }, binding, { kind: 'ClusterRole', name: role }, subject);
}

export function sa(namespace: string, name: string): Subject {
  return { kind: 'ServiceAccount', name, namespace };
}

export function group(name: string): Subject {
  return { kind: 'Group', name };
}

/** A team's developers edit their own namespace: RoleBinding "dev-<ns>-edit" of ClusterRole "edit" to Group "dev-<ns>". */
function devTeamEdits(ns: string): string {
  return rbacReason(
    { kind: 'RoleBinding', namespace: ns },
    `dev-${ns}-edit`,
    { kind: 'ClusterRole', name: 'edit' },
    group(`dev-${ns}`),
  );
}

/** Builds the simulated cluster: nodes, namespaces, workloads and every client that talks to the API. */
export function buildCluster(prng: Prng, nodeCount: number): Cluster {
  const controlPlaneIP = '10.0.0.10';
  const nodes: Node[] = [];
  for (let i = 0; i < nodeCount; i++) {
    const ip = `10.0.${1 + (i % 3)}.${20 + Math.floor(i / 3) * 7 + prng.int(5)}`;
    const name = `ip-${ip.replaceAll('.', '-')}.eu-west-1.compute.internal`;
    const uid = prng.uuid();
    const kubelet = makeActor({
      username: `system:node:${name}`,
      groups: ['system:nodes', 'system:authenticated'],
      userAgent: k8sAgent('kubelet'),
      sourceIP: ip,
      allowReason: crb('system:node', 'system:node', group('system:nodes')),
    });
    const node: Node = { name, ip, uid, kubelet, kubeProxy: kubelet };
    const proxyPod = { name: `kube-proxy-${prng.suffix(5)}`, uid: prng.uuid(), node };
    const kubeProxy = saActor(
      prng,
      'kube-system',
      'kube-proxy',
      k8sAgent('kube-proxy'),
      ip,
      crb('kubeadm:node-proxier', 'system:node-proxier', sa('kube-system', 'kube-proxy')),
      proxyPod,
    );
    nodes.push({ ...node, kubeProxy });
  }
  const anyNode = (): Node => prng.pick(nodes);

  const workloads: Workload[] = [];
  const pods: Pod[] = [];
  for (const ns of APP_NAMESPACES) {
    for (const name of APP_NAMES[ns]) {
      const w: Workload = {
        namespace: ns,
        name,
        uid: prng.uuid(),
        image: `registry.example.com/${ns}/${name}:1.${prng.range(4, 19)}.${prng.range(0, 9)}`,
        replicaSetHash: prng.suffix(10),
        replicaSetUid: prng.uuid(),
        serviceAccount: name,
        configMap: `${name}-config`,
        secret: `${name}-credentials`,
        pods: [],
        generation: prng.range(3, 40),
      };
      const replicas = prng.range(2, 4);
      for (let r = 0; r < replicas; r++) {
        const node = anyNode();
        const podName = `${name}-${w.replicaSetHash}-${prng.suffix(5)}`;
        const uid = prng.uuid();
        const ip = `10.244.${nodes.indexOf(node)}.${prng.range(2, 250)}`;
        const actor = saActor(
          prng,
          ns,
          name,
          `${name}/v0.0.0 (${GO_OS}) kubernetes/$Format`,
          ip,
          rbacReason({ kind: 'RoleBinding', namespace: ns }, name, { kind: 'Role', name }, sa(ns, name)),
          { name: podName, uid, node },
        );
        const pod: Pod = { name: podName, namespace: ns, uid, ip, node, workload: w, actor };
        w.pods.push(pod);
        pods.push(pod);
      }
      workloads.push(w);
    }
  }

  const podIP = (node: Node): string => `10.244.${nodes.indexOf(node)}.${prng.range(2, 250)}`;
  const inPod = (ns: string, name: string, agent: string, reason: string, podPrefix: string): Actor => {
    const node = anyNode();
    return saActor(prng, ns, name, agent, podIP(node), reason, {
      name: `${podPrefix}-${prng.suffix(10)}-${prng.suffix(5)}`,
      uid: prng.uuid(),
      node,
    });
  };

  const controllers = {} as Record<ControllerName, Actor>;
  for (const c of CONTROLLERS) {
    const username = `system:serviceaccount:kube-system:${c}`;
    controllers[c] = makeActor({
      username,
      uid: prng.uuid(),
      groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
      // controller-manager's client builder appends the service account name to its user agent.
      userAgent: k8sAgent('kube-controller-manager', `/${username}`),
      sourceIP: controlPlaneIP,
      allowReason: crb(`system:controller:${c}`, `system:controller:${c}`, sa('kube-system', c)),
    });
  }

  const person = (email: string, groups: string[], ip: string, agentOs: string, reason: string): Actor =>
    makeActor({
      username: email,
      groups: [...groups, 'system:authenticated'],
      extra: { 'oidc.example.com/idp': ['okta'] },
      userAgent: `kubectl/v1.30.2 (${agentOs}) kubernetes/3968350`,
      sourceIP: ip,
      allowReason: reason,
    });

  const namespaceUids: Record<string, string> = {};
  for (const ns of NAMESPACES) namespaceUids[ns] = prng.uuid();

  return {
    nodes,
    controlPlaneIP,
    workloads,
    pods,
    controllers,
    kcm: makeActor({
      username: 'system:kube-controller-manager',
      groups: ['system:authenticated'],
      userAgent: k8sAgent('kube-controller-manager', '/leader-election'),
      sourceIP: controlPlaneIP,
      allowReason: crb('system:kube-controller-manager', 'system:kube-controller-manager', {
        kind: 'User',
        name: 'system:kube-controller-manager',
      }),
    }),
    scheduler: makeActor({
      username: 'system:kube-scheduler',
      groups: ['system:authenticated'],
      userAgent: k8sAgent('kube-scheduler', '/scheduler'),
      sourceIP: controlPlaneIP,
      allowReason: crb('system:kube-scheduler', 'system:kube-scheduler', {
        kind: 'User',
        name: 'system:kube-scheduler',
      }),
    }),
    coredns: inPod(
      'kube-system',
      'coredns',
      'coredns/v0.0.0 (linux/amd64) kubernetes/$Format',
      crb('system:coredns', 'system:coredns', sa('kube-system', 'coredns')),
      'coredns',
    ),
    metricsServer: inPod(
      'kube-system',
      'metrics-server',
      'metrics-server/v0.7.1 (linux/amd64) kubernetes/$Format',
      crb('system:metrics-server', 'system:metrics-server', sa('kube-system', 'metrics-server')),
      'metrics-server',
    ),
    prometheus: inPod(
      'monitoring',
      'prometheus-k8s',
      'Prometheus/2.53.0',
      crb('prometheus-k8s', 'prometheus-k8s', sa('monitoring', 'prometheus-k8s')),
      'prometheus-k8s',
    ),
    argocd: inPod(
      'argocd',
      'argocd-application-controller',
      'argocd-application-controller/v2.11.3+e2d5ea1 (linux/amd64) kubernetes/$Format',
      crb(
        'argocd-application-controller',
        'argocd-application-controller',
        sa('argocd', 'argocd-application-controller'),
      ),
      'argocd-application-controller',
    ),
    ciDeployer: inPod(
      'ci',
      'deployer',
      'kubectl/v1.30.4 (linux/amd64) kubernetes/a51b3b7',
      crb('ci-deployer', 'edit', sa('ci', 'deployer')),
      'runner',
    ),
    ingressNginx: inPod(
      'ingress-nginx',
      'ingress-nginx',
      'nginx-ingress-controller/v1.10.1 (linux/amd64) ingress-nginx/4fb5aac1dd3669daa3a14d9de3e3cdb371b4c518',
      crb('ingress-nginx', 'ingress-nginx', sa('ingress-nginx', 'ingress-nginx')),
      'ingress-nginx-controller',
    ),
    certManager: inPod(
      'cert-manager',
      'cert-manager',
      'cert-manager-controller/v1.14.5 (linux/amd64) cert-manager/0e9e0c4eb5b6b6b4e8c0e1b4b2e6f1c7b8e0b9e1',
      crb(
        'cert-manager-controller-certificates',
        'cert-manager-controller-certificates',
        sa('cert-manager', 'cert-manager'),
      ),
      'cert-manager',
    ),
    healthProbe: makeActor({
      username: 'system:anonymous',
      groups: ['system:unauthenticated'],
      userAgent: 'ELB-HealthChecker/2.0',
      sourceIP: '10.0.0.4',
      allowReason: crb(
        'system:public-info-viewer',
        'system:public-info-viewer',
        group('system:unauthenticated'),
      ),
    }),
    humans: [
      {
        actor: person(
          'alice@example.com',
          ['platform-admins'],
          '198.51.100.23',
          'darwin/arm64',
          crb('platform-admins', 'cluster-admin', group('platform-admins')),
        ),
        namespaces: [...NAMESPACES],
        admin: true,
      },
      {
        actor: person(
          'bob@example.com',
          ['dev-payments'],
          '198.51.100.41',
          'linux/amd64',
          devTeamEdits('payments'),
        ),
        namespaces: ['payments'],
        admin: false,
      },
      {
        actor: person(
          'carol@example.com',
          ['dev-catalog'],
          '198.51.100.57',
          'windows/amd64',
          devTeamEdits('catalog'),
        ),
        namespaces: ['catalog'],
        admin: false,
      },
    ],
    namespaceUids,
  };
}
