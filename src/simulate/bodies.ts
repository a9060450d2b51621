import type { Pod, Workload } from './cluster.js';
import type { Prng } from './prng.js';

/**
 * Request and response bodies for RequestResponse events, rendered as JSON text. Objects that
 * recur (a pod, a deployment) are rendered once and the changing resourceVersion spliced in, so
 * bodies cost a concatenation rather than a JSON.stringify per event.
 */

// Slot markers must survive JSON.stringify unescaped and never occur in real content.
const RV = '@@RV@@';
const NAME = '@@NAME@@';
const UID = '@@UID@@';
const SLOT = /@@(RV|NAME|UID)@@/;

/** JSON text split at its slots: even entries are text, odd ones the slot names. */
type Template = string[];

function compile(json: string): Template {
  return json.split(SLOT);
}

function fill(t: Template, rv: number, name = '', uid = ''): string {
  let out = '';
  for (let i = 0; i < t.length; i++) {
    const part = t[i] ?? '';
    out += i % 2 === 0 ? part : part === 'RV' ? String(rv) : part === 'NAME' ? name : uid;
  }
  return out;
}

const podTemplates = new WeakMap<Pod, Template>();

const CREATED = '2026-01-05T09:12:44Z';

function managedFields(manager: string, operation: string, subresource?: string): unknown[] {
  return [
    {
      manager,
      operation,
      apiVersion: 'v1',
      time: CREATED,
      fieldsType: 'FieldsV1',
      fieldsV1: {
        'f:metadata': {
          'f:generateName': {},
          'f:labels': { '.': {}, 'f:app': {}, 'f:pod-template-hash': {} },
        },
        'f:spec': {
          'f:containers': { 'k:{"name":"app"}': { '.': {}, 'f:image': {}, 'f:name': {}, 'f:resources': {} } },
        },
      },
      ...(subresource === undefined ? {} : { subresource }),
    },
  ];
}

function podObject(pod: Pod): unknown {
  const w = pod.workload;
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      name: NAME,
      generateName: `${w.name}-${w.replicaSetHash}-`,
      namespace: pod.namespace,
      uid: UID,
      resourceVersion: RV,
      creationTimestamp: CREATED,
      labels: { app: w.name, 'pod-template-hash': w.replicaSetHash },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: `${w.name}-${w.replicaSetHash}`,
          uid: w.replicaSetUid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
      managedFields: [
        ...managedFields('kube-controller-manager', 'Update'),
        ...managedFields('kubelet', 'Update', 'status'),
      ],
    },
    spec: {
      volumes: [
        { name: 'config', configMap: { name: w.configMap, defaultMode: 420 } },
        {
          name: 'kube-api-access',
          projected: {
            sources: [
              { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
            ],
            defaultMode: 420,
          },
        },
      ],
      containers: [
        {
          name: 'app',
          image: w.image,
          ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
          env: [{ name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: w.secret, key: 'password' } } }],
          resources: { limits: { memory: '512Mi' }, requests: { cpu: '100m', memory: '256Mi' } },
          volumeMounts: [
            { name: 'config', mountPath: '/etc/app' },
            {
              name: 'kube-api-access',
              readOnly: true,
              mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
            },
          ],
          readinessProbe: {
            httpGet: { path: '/healthz', port: 8080, scheme: 'HTTP' },
            timeoutSeconds: 1,
            periodSeconds: 10,
            successThreshold: 1,
            failureThreshold: 3,
          },
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          imagePullPolicy: 'IfNotPresent',
          securityContext: {
            allowPrivilegeEscalation: false,
            runAsNonRoot: true,
            capabilities: { drop: ['ALL'] },
          },
        },
      ],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: w.serviceAccount,
      serviceAccount: w.serviceAccount,
      nodeName: pod.node.name,
      securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
      schedulerName: 'default-scheduler',
      tolerations: [
        {
          key: 'node.kubernetes.io/not-ready',
          operator: 'Exists',
          effect: 'NoExecute',
          tolerationSeconds: 300,
        },
        {
          key: 'node.kubernetes.io/unreachable',
          operator: 'Exists',
          effect: 'NoExecute',
          tolerationSeconds: 300,
        },
      ],
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
    },
    status: {
      phase: 'Running',
      conditions: [
        { type: 'Initialized', status: 'True', lastProbeTime: null, lastTransitionTime: CREATED },
        { type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: CREATED },
        { type: 'ContainersReady', status: 'True', lastProbeTime: null, lastTransitionTime: CREATED },
        { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: CREATED },
      ],
      hostIP: pod.node.ip,
      hostIPs: [{ ip: pod.node.ip }],
      podIP: pod.ip,
      podIPs: [{ ip: pod.ip }],
      startTime: CREATED,
      containerStatuses: [
        {
          name: 'app',
          state: { running: { startedAt: CREATED } },
          lastState: {},
          ready: true,
          restartCount: 0,
          image: w.image,
          imageID: `${w.image.split(':')[0]}@sha256:${'9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'}`,
          containerID: `containerd://${pod.uid.replaceAll('-', '')}${pod.uid.replaceAll('-', '').slice(0, 32)}`,
          started: true,
        },
      ],
      qosClass: 'Burstable',
    },
  };
}

/** The pod as the API returns it; `as` renders a sibling of the same ReplicaSet under another name. */
export function podJson(pod: Pod, rv: number, as: { name: string; uid: string } = pod): string {
  let t = podTemplates.get(pod);
  if (t === undefined) {
    t = compile(JSON.stringify(podObject(pod)));
    podTemplates.set(pod, t);
  }
  return fill(t, rv, as.name, as.uid);
}

/** The strategic-merge patch kubelet sends to pods/status when a condition changes. */
export function podStatusPatchJson(pod: Pod, transitionTime: string, ready: boolean): string {
  const status = ready ? 'True' : 'False';
  return (
    `{"metadata":{"uid":"${pod.uid}"},"status":{"$setElementOrder/conditions":[{"type":"Initialized"},` +
    `{"type":"Ready"},{"type":"ContainersReady"},{"type":"PodScheduled"}],"conditions":[{"lastTransitionTime":"${transitionTime}",` +
    `"status":"${status}","type":"Ready"},{"lastTransitionTime":"${transitionTime}","status":"${status}","type":"ContainersReady"}]}}`
  );
}

function deploymentObject(w: Workload, image: string, generation: number, rvMark: string): unknown {
  return {
    kind: 'Deployment',
    apiVersion: 'apps/v1',
    metadata: {
      name: w.name,
      namespace: w.namespace,
      uid: w.uid,
      resourceVersion: rvMark,
      generation,
      creationTimestamp: CREATED,
      labels: { app: w.name, 'app.kubernetes.io/instance': `${w.namespace}-${w.name}` },
      annotations: { 'deployment.kubernetes.io/revision': String(generation) },
      managedFields: managedFields('argocd-controller', 'Apply'),
    },
    spec: {
      replicas: w.pods.length,
      selector: { matchLabels: { app: w.name } },
      template: {
        metadata: { labels: { app: w.name } },
        spec: {
          containers: [
            {
              name: 'app',
              image,
              ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
              resources: { limits: { memory: '512Mi' }, requests: { cpu: '100m', memory: '256Mi' } },
            },
          ],
          serviceAccountName: w.serviceAccount,
        },
      },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
    },
    status: {
      observedGeneration: generation,
      replicas: w.pods.length,
      updatedReplicas: w.pods.length,
      readyReplicas: w.pods.length,
      availableReplicas: w.pods.length,
      conditions: [
        {
          type: 'Available',
          status: 'True',
          lastUpdateTime: CREATED,
          lastTransitionTime: CREATED,
          reason: 'MinimumReplicasAvailable',
          message: 'Deployment has minimum availability.',
        },
      ],
    },
  };
}

const deploymentCache = new Map<string, Template>();

export function deploymentJson(w: Workload, rv: number, image = w.image): string {
  const key = `${w.uid}/${image}/${w.generation}`;
  let t = deploymentCache.get(key);
  if (t === undefined) {
    if (deploymentCache.size > 1000) deploymentCache.clear();
    t = compile(JSON.stringify(deploymentObject(w, image, w.generation, RV)));
    deploymentCache.set(key, t);
  }
  return fill(t, rv);
}

/** The server-side-apply body a GitOps tool or `kubectl apply --server-side` sends for a deployment. */
export function deploymentApplyJson(w: Workload, image: string): string {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: w.name, namespace: w.namespace, labels: { app: w.name } },
    spec: {
      replicas: w.pods.length,
      selector: { matchLabels: { app: w.name } },
      template: {
        metadata: { labels: { app: w.name } },
        spec: { containers: [{ name: 'app', image }], serviceAccountName: w.serviceAccount },
      },
    },
  });
}

export function configMapJson(
  namespace: string,
  name: string,
  uid: string,
  rv: number,
  data: Readonly<Record<string, string>>,
): string {
  return JSON.stringify({
    kind: 'ConfigMap',
    apiVersion: 'v1',
    metadata: {
      name,
      namespace,
      uid,
      resourceVersion: String(rv),
      creationTimestamp: CREATED,
      labels: { 'app.kubernetes.io/managed-by': 'argocd' },
    },
    data,
  });
}

export function appConfig(prng: Prng, w: Workload): Record<string, string> {
  return {
    LOG_LEVEL: prng.pick(['info', 'debug', 'warn']),
    FEATURE_FLAGS: prng.pick(['new-checkout,fast-search', 'fast-search', 'new-checkout']),
    UPSTREAM_TIMEOUT_MS: String(prng.pick([500, 1000, 1500, 3000])),
    'app.yaml': `server:\n  port: 8080\n  gracefulShutdown: 20s\nservice: ${w.name}\nnamespace: ${w.namespace}\ncache:\n  ttl: ${prng.range(10, 300)}s\n  size: ${prng.range(100, 5000)}\n`,
  };
}

export function secretJson(namespace: string, name: string, uid: string, rv: number, prng: Prng): string {
  return JSON.stringify({
    kind: 'Secret',
    apiVersion: 'v1',
    metadata: { name, namespace, uid, resourceVersion: String(rv), creationTimestamp: CREATED },
    data: {
      username: Buffer.from(`svc-${name}`).toString('base64'),
      password: Buffer.from(prng.hex(24)).toString('base64'),
    },
    type: 'Opaque',
  });
}

export function clusterRoleBindingJson(
  name: string,
  role: string,
  subject: { kind: string; name: string; namespace?: string },
  uid?: string,
  rv?: number,
): string {
  return JSON.stringify({
    kind: 'ClusterRoleBinding',
    apiVersion: 'rbac.authorization.k8s.io/v1',
    metadata: {
      name,
      ...(uid === undefined ? {} : { uid, resourceVersion: String(rv ?? 1), creationTimestamp: CREATED }),
    },
    subjects: [
      subject.kind === 'ServiceAccount'
        ? { kind: 'ServiceAccount', name: subject.name, namespace: subject.namespace }
        : { kind: subject.kind, apiGroup: 'rbac.authorization.k8s.io', name: subject.name },
    ],
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
  });
}

export function privilegedPodJson(namespace: string, name: string, nodeName: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace },
    spec: {
      nodeName,
      hostPID: true,
      hostNetwork: true,
      containers: [
        {
          name: 'shell',
          image: 'docker.io/library/alpine:3.20',
          command: ['nsenter', '--mount=/proc/1/ns/mnt', '--', '/bin/sh', '-c', 'sleep 1000000'],
          securityContext: { privileged: true },
          volumeMounts: [{ name: 'host', mountPath: '/host' }],
        },
      ],
      volumes: [{ name: 'host', hostPath: { path: '/', type: '' } }],
      tolerations: [{ operator: 'Exists' }],
    },
  });
}
