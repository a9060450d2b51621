import {
  appConfig,
  configMapJson,
  deploymentApplyJson,
  deploymentJson,
  podJson,
  podStatusPatchJson,
  secretJson,
} from './bodies.js';
import { type Actor, APP_NAMESPACES, crb, group, type Pod } from './cluster.js';
import { core, grouped, latency, refPath, type SimContext, watchTimeout } from './context.js';
import type { Ref, Request } from './engine.js';
import { formatMicroTime } from './time.js';

const SECOND = 1_000_000;
const LEASES = grouped('coordination.k8s.io', 'v1', 'leases');

/** Events per second the periodic sources produce for a cluster of `nodes` nodes. */
export function periodicRatePerS(nodes: number): number {
  // Per node: lease renewal and node-status patch every 10 s. Four leader-election leases every
  // 2 s, Prometheus scraping /metrics every 30 s, a load balancer probing /readyz every 10 s.
  return nodes * 0.2 + 4 * 0.5 + 1 / 30 + 0.1;
}

/** The control plane's clockwork: node heartbeats and leader-election renewals. */
export function startPeriodic(c: SimContext, startUs: number): void {
  const { engine, prng, cluster } = c;
  // A request every `periodUs`, first at a random phase; writes bump the resourceVersion first.
  const periodic = (periodUs: number, jitter: number, request: () => Request): void => {
    engine.every(startUs + prng.int(periodUs), periodUs, jitter, () => {
      engine.emit(request());
    });
  };
  const write = (actor: Actor, verb: string, ref: Ref, query = ''): Request => {
    c.nextRv();
    return { actor, verb, uri: refPath(ref) + query, ref, latencyUs: latency.write(c) };
  };
  for (const node of cluster.nodes) {
    const lease = { ...LEASES, namespace: 'kube-node-lease', name: node.name };
    // kubelet renews its Lease every 10 s (nodeLeaseDurationSeconds 40 / 4).
    periodic(10 * SECOND, 0.02, () => write(node.kubelet, 'update', lease, '?timeout=10s'));
    const status = core('nodes', undefined, node.name, 'status');
    periodic(10 * SECOND, 0.05, () => write(node.kubelet, 'patch', status));
  }
  const leaders: [Actor, Ref][] = [
    [cluster.kcm, { ...LEASES, namespace: 'kube-system', name: 'kube-controller-manager' }],
    [cluster.scheduler, { ...LEASES, namespace: 'kube-system', name: 'kube-scheduler' }],
    [cluster.certManager, { ...LEASES, namespace: 'kube-system', name: 'cert-manager-controller' }],
    [cluster.ingressNginx, { ...LEASES, namespace: 'ingress-nginx', name: 'ingress-nginx-leader' }],
  ];
  for (const [actor, ref] of leaders) {
    // client-go leader election: retryPeriod 2 s, the holder updates its lease on every retry.
    periodic(2 * SECOND, 0.01, () => write(actor, 'update', ref, '?timeout=5s'));
  }
  periodic(30 * SECOND, 0, () => ({
    actor: cluster.prometheus,
    verb: 'get',
    uri: '/metrics',
    latencyUs: prng.logNormal(40_000, 0.3),
  }));
  periodic(10 * SECOND, 0, () => ({
    actor: cluster.healthProbe,
    verb: 'get',
    uri: '/readyz',
    latencyUs: prng.logNormal(400, 0.3),
  }));
}

interface WatchTarget {
  actor: Actor;
  ref: Ref;
  query: string;
}

function watchTargets(c: SimContext): WatchTarget[] {
  const { cluster } = c;
  const t: WatchTarget[] = [];
  for (const node of cluster.nodes) {
    t.push({
      actor: node.kubelet,
      ref: core('pods'),
      query: `fieldSelector=spec.nodeName%3D${node.name}`,
    });
    t.push({
      actor: node.kubelet,
      ref: core('services'),
      query: 'labelSelector=%21service.kubernetes.io%2Fheadless',
    });
    t.push({
      actor: node.kubeProxy,
      ref: grouped('discovery.k8s.io', 'v1', 'endpointslices'),
      query:
        'labelSelector=%21service.kubernetes.io%2Fheadless%2C%21service.kubernetes.io%2Fservice-proxy-name',
    });
    t.push({
      actor: node.kubeProxy,
      ref: core('nodes'),
      query: `fieldSelector=metadata.name%3D${node.name}`,
    });
  }
  for (const pod of cluster.pods) {
    const w = pod.workload;
    t.push({
      actor: pod.node.kubelet,
      ref: core('configmaps', pod.namespace),
      query: `fieldSelector=metadata.name%3D${w.configMap}`,
    });
    t.push({
      actor: pod.node.kubelet,
      ref: core('secrets', pod.namespace),
      query: `fieldSelector=metadata.name%3D${w.secret}`,
    });
  }
  const informers: [Actor, Ref][] = [
    [cluster.kcm, core('pods')],
    [cluster.kcm, core('nodes')],
    [cluster.kcm, core('namespaces')],
    [cluster.kcm, core('services')],
    [cluster.kcm, core('serviceaccounts')],
    [cluster.kcm, grouped('apps', 'v1', 'deployments')],
    [cluster.kcm, grouped('apps', 'v1', 'replicasets')],
    [cluster.kcm, grouped('apps', 'v1', 'daemonsets')],
    [cluster.kcm, grouped('discovery.k8s.io', 'v1', 'endpointslices')],
    [cluster.kcm, grouped('batch', 'v1', 'jobs')],
    [cluster.scheduler, core('pods')],
    [cluster.scheduler, core('nodes')],
    [cluster.scheduler, core('persistentvolumeclaims')],
    [cluster.scheduler, grouped('storage.k8s.io', 'v1', 'csinodes')],
    [cluster.coredns, grouped('discovery.k8s.io', 'v1', 'endpointslices')],
    [cluster.coredns, core('services')],
    [cluster.coredns, core('namespaces')],
    [cluster.prometheus, core('pods')],
    [cluster.prometheus, core('endpoints')],
    [cluster.prometheus, core('services')],
    [cluster.metricsServer, core('nodes')],
    [cluster.argocd, grouped('apps', 'v1', 'deployments')],
    [cluster.argocd, core('configmaps')],
    [cluster.argocd, core('services')],
    [cluster.argocd, grouped('argoproj.io', 'v1alpha1', 'applications', 'argocd')],
    [cluster.ingressNginx, grouped('networking.k8s.io', 'v1', 'ingresses')],
    [cluster.ingressNginx, grouped('discovery.k8s.io', 'v1', 'endpointslices')],
    [cluster.ingressNginx, core('secrets')],
    [cluster.certManager, grouped('cert-manager.io', 'v1', 'certificates')],
    [cluster.certManager, core('secrets')],
  ];
  for (const [actor, ref] of informers) t.push({ actor, ref, query: '' });
  return t;
}

/** One kind of background request, drawn with probability proportional to its weight. */
interface Mix {
  weight: number;
  run: (c: SimContext) => void;
}

function pickPod(c: SimContext): Pod {
  return c.prng.pick(c.cluster.pods);
}

function rsRef(pod: Pod, sub?: string): Ref {
  return grouped(
    'apps',
    'v1',
    'replicasets',
    pod.namespace,
    `${pod.workload.name}-${pod.workload.replicaSetHash}`,
    sub,
  );
}

function buildMix(c: SimContext): Mix[] {
  const { cluster, engine, prng } = c;
  const watches = watchTargets(c);
  const ctl = cluster.controllers;
  const now = (): string => formatMicroTime(engine.nowUs).slice(0, 19) + 'Z';
  const mix: Mix[] = [
    {
      // Reflectors re-establish their watches when the server-chosen timeout ends.
      weight: 12,
      run: () => {
        const w = prng.pick(watches);
        const to = watchTimeout(c);
        const q = `allowWatchBookmarks=true${w.query === '' ? '' : `&${w.query}`}&resourceVersion=${c.currentRv() - prng.int(500)}&${to.query}&watch=true`;
        engine.emit({
          actor: w.actor,
          verb: 'watch',
          uri: `${refPath(w.ref)}?${q}`,
          ref: w.ref,
          latencyUs: to.seconds * 1_000_000 + prng.int(300_000),
          longRunning: true,
        });
      },
    },
    {
      // Informer relists are served from the watch cache (resourceVersion=0).
      weight: 8,
      run: () => {
        const w = prng.pick(watches);
        engine.emit({
          actor: w.actor,
          verb: 'list',
          uri: `${refPath(w.ref)}?${w.query === '' ? '' : `${w.query}&`}limit=500&resourceVersion=0`,
          ref: w.ref,
          latencyUs: latency.cachedList(c, prng.range(5, 300)),
        });
      },
    },
    {
      weight: 30,
      run: () => {
        const pod = pickPod(c);
        const r = prng.int(9);
        let actor: Actor;
        let ref: Ref;
        if (r === 0) {
          actor = pod.actor;
          ref = core('configmaps', pod.namespace, pod.workload.configMap);
        } else if (r === 1) {
          actor = ctl['replicaset-controller'];
          ref = rsRef(pod);
        } else if (r === 2) {
          actor = ctl['deployment-controller'];
          ref = grouped('apps', 'v1', 'deployments', pod.namespace, pod.workload.name);
        } else if (r === 3) {
          actor = cluster.certManager;
          ref = core('secrets', pod.namespace, `${pod.workload.name}-tls`);
        } else if (r === 4) {
          actor = cluster.argocd;
          ref = grouped('apps', 'v1', 'deployments', pod.namespace, pod.workload.name);
        } else if (r === 5) {
          actor = ctl['namespace-controller'];
          ref = core('namespaces', pod.namespace, pod.namespace);
        } else if (r === 6) {
          actor = pod.node.kubelet;
          ref = core('pods', pod.namespace, pod.name);
        } else if (r === 7) {
          actor = ctl['node-controller'];
          ref = core('nodes', undefined, pod.node.name);
        } else {
          actor = ctl['generic-garbage-collector'];
          ref = core('pods', pod.namespace, pod.name);
        }
        engine.emit({ actor, verb: 'get', uri: refPath(ref), ref, latencyUs: latency.get(c) });
      },
    },
    {
      weight: 4,
      run: () => {
        const pod = pickPod(c);
        const ref = grouped(
          'discovery.k8s.io',
          'v1',
          'endpointslices',
          pod.namespace,
          `${pod.workload.name}-${prng.suffix(5)}`,
        );
        c.nextRv();
        engine.emit({
          actor: ctl['endpointslice-controller'],
          verb: 'update',
          uri: refPath(ref),
          ref,
          latencyUs: latency.write(c),
        });
      },
    },
    {
      weight: 8,
      run: () => {
        const pod = pickPod(c);
        const actor = prng.pick([
          pod.node.kubelet,
          pod.node.kubelet,
          cluster.scheduler,
          ctl['replicaset-controller'],
        ]);
        const ref = grouped('events.k8s.io', 'v1', 'events', pod.namespace);
        c.nextRv();
        engine.emit({ actor, verb: 'create', uri: refPath(ref), ref, latencyUs: latency.write(c) });
      },
    },
    {
      // kubelet reports readiness changes: RequestResponse with the patch and the whole pod back.
      weight: 5,
      run: () => {
        const pod = pickPod(c);
        const ref = core('pods', pod.namespace, pod.name, 'status');
        const rv = c.nextRv();
        engine.emit({
          actor: pod.node.kubelet,
          verb: 'patch',
          uri: refPath(ref),
          ref,
          latencyUs: latency.write(c),
          requestObject: podStatusPatchJson(pod, now(), prng.chance(0.9)),
          responseObject: podJson(pod, rv),
        });
      },
    },
    {
      weight: 1.5,
      run: () => {
        const pod = pickPod(c);
        const w = pod.workload;
        const ref = grouped('apps', 'v1', 'deployments', w.namespace, w.name, 'status');
        const rv = c.nextRv();
        const body = deploymentJson(w, rv);
        engine.emit({
          actor: ctl['deployment-controller'],
          verb: 'update',
          uri: refPath(ref),
          ref,
          latencyUs: latency.write(c),
          requestObject: deploymentJson(w, rv - 1),
          responseObject: body,
        });
      },
    },
    {
      weight: 2,
      run: () => {
        const pod = pickPod(c);
        const ref = rsRef(pod, 'status');
        c.nextRv();
        engine.emit({
          actor: ctl['replicaset-controller'],
          verb: 'update',
          uri: refPath(ref),
          ref,
          latencyUs: latency.write(c),
        });
      },
    },
    {
      // kube-rbac-proxy and metrics-server authenticate scrapers with TokenReviews / SubjectAccessReviews.
      weight: 4,
      run: () => {
        const actor = prng.pick([cluster.metricsServer, cluster.prometheus]);
        const ref = prng.chance(0.5)
          ? grouped('authentication.k8s.io', 'v1', 'tokenreviews')
          : grouped('authorization.k8s.io', 'v1', 'subjectaccessreviews');
        engine.emit({ actor, verb: 'create', uri: refPath(ref), ref, latencyUs: latency.review(c) });
      },
    },
    {
      // kubelet refreshes projected service-account tokens.
      weight: 3,
      run: () => {
        const pod = pickPod(c);
        const ref = core('serviceaccounts', pod.namespace, pod.workload.serviceAccount, 'token');
        engine.emit({
          actor: pod.node.kubelet,
          verb: 'create',
          uri: refPath(ref),
          ref,
          latencyUs: latency.write(c),
        });
      },
    },
    { weight: 1.2, run: () => humanCommand(c) },
    {
      weight: 3,
      run: () => {
        const pod = pickPod(c);
        const w = pod.workload;
        if (prng.chance(0.8)) {
          const ref = prng.chance(0.5)
            ? grouped('apps', 'v1', 'deployments', w.namespace)
            : core('configmaps', w.namespace);
          engine.emit({
            actor: cluster.argocd,
            verb: 'list',
            uri: `${refPath(ref)}?limit=500`,
            ref,
            latencyUs: latency.etcdList(c, 20),
          });
          return;
        }
        argocdApply(c, w.namespace, w.name);
      },
    },
    {
      weight: 0.3,
      run: () => {
        const w = prng.pick(cluster.workloads);
        const ref = grouped('apps', 'v1', 'deployments', w.namespace, w.name);
        const rv = c.nextRv();
        engine.emit({
          actor: cluster.ciDeployer,
          verb: 'patch',
          uri: `${refPath(ref)}?fieldManager=kubectl-client-side-apply&fieldValidation=Strict`,
          ref,
          latencyUs: latency.write(c),
          requestObject: deploymentApplyJson(w, w.image),
          responseObject: deploymentJson(w, rv),
        });
      },
    },
    {
      // The HPA controller reads pod metrics from the metrics.k8s.io aggregated API.
      weight: 2,
      run: () => {
        const w = prng.pick(cluster.workloads);
        const ref = grouped('metrics.k8s.io', 'v1beta1', 'pods', w.namespace);
        engine.emit({
          actor: ctl['horizontal-pod-autoscaler'],
          verb: 'list',
          uri: `${refPath(ref)}?labelSelector=app%3D${w.name}`,
          ref,
          latencyUs: c.prng.logNormal(9_000, 0.5),
        });
      },
    },
    { weight: 0.8, run: () => podChurn(c) },
    {
      weight: 0.5,
      run: () => {
        const w = prng.pick(cluster.workloads);
        const ref = core('secrets', w.namespace, `${w.name}-tls`);
        const rv = c.nextRv();
        const body = secretJson(w.namespace, `${w.name}-tls`, prng.uuid(), rv, prng);
        engine.emit({
          actor: cluster.certManager,
          verb: 'update',
          uri: refPath(ref),
          ref,
          latencyUs: latency.write(c),
          requestObject: body,
          responseObject: body,
        });
      },
    },
  ];
  return mix;
}

/** Expected audit events per draw from the mix (watches and exec write two). */
const EVENTS_PER_DRAW = 1.15;

/** Starts the background traffic at `ratePerS` events per second (Poisson arrivals). */
export function startBackground(c: SimContext, startUs: number, ratePerS: number): void {
  if (ratePerS <= 0) return;
  const mix = buildMix(c);
  const total = mix.reduce((s, m) => s + m.weight, 0);
  const meanGapUs = (1_000_000 * EVENTS_PER_DRAW) / ratePerS;
  const draw = (): void => {
    let x = c.prng.float() * total;
    for (const m of mix) {
      x -= m.weight;
      if (x < 0) {
        m.run(c);
        break;
      }
    }
    c.engine.at(c.engine.nowUs + c.prng.exp(meanGapUs), draw);
  };
  c.engine.at(startUs + c.prng.exp(meanGapUs), draw);
}

/** A GitOps sync: server-side apply of a deployment or its configmap. */
export function argocdApply(c: SimContext, namespace: string, name: string): void {
  const { cluster, engine, prng } = c;
  const w = cluster.workloads.find((x) => x.namespace === namespace && x.name === name);
  if (w === undefined) return;
  if (prng.chance(0.5)) {
    const ref = grouped('apps', 'v1', 'deployments', namespace, name);
    const rv = c.nextRv();
    engine.emit({
      actor: cluster.argocd,
      verb: 'patch',
      uri: `${refPath(ref)}?fieldManager=argocd-controller&force=true`,
      ref,
      latencyUs: latency.write(c),
      requestObject: deploymentApplyJson(w, w.image),
      responseObject: deploymentJson(w, rv),
    });
  } else {
    const ref = core('configmaps', namespace, w.configMap);
    const rv = c.nextRv();
    const data = appConfig(prng, w);
    engine.emit({
      actor: cluster.argocd,
      verb: 'patch',
      uri: `${refPath(ref)}?fieldManager=argocd-controller&force=true`,
      ref,
      latencyUs: latency.write(c),
      requestObject: JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: w.configMap, namespace },
        data,
      }),
      responseObject: configMapJson(namespace, w.configMap, w.uid, rv, data),
    });
  }
}

/** A ReplicaSet replaces a pod: create, bind, first status patch, delete of the old one. */
function podChurn(c: SimContext): void {
  const { cluster, engine, prng } = c;
  const pod = pickPod(c);
  const ctl = cluster.controllers['replicaset-controller'];
  const created = {
    ...pod,
    name: `${pod.workload.name}-${pod.workload.replicaSetHash}-${prng.suffix(5)}`,
    uid: prng.uuid(),
  };
  const list = core('pods', pod.namespace);
  let rv = c.nextRv();
  engine.emit({
    actor: ctl,
    verb: 'create',
    uri: refPath(list),
    ref: list,
    latencyUs: latency.write(c),
    requestObject: podJson(pod, 0).replace(/"resourceVersion":"0",/, ''),
    responseObject: podJson(pod, rv, created),
  });
  const binding = core('pods', pod.namespace, created.name, 'binding');
  engine.emit(
    {
      actor: cluster.scheduler,
      verb: 'create',
      uri: refPath(binding),
      ref: binding,
      latencyUs: latency.write(c),
    },
    15_000,
  );
  rv = c.nextRv();
  const status = core('pods', pod.namespace, created.name, 'status');
  engine.emit(
    {
      actor: pod.node.kubelet,
      verb: 'patch',
      uri: refPath(status),
      ref: status,
      latencyUs: latency.write(c),
      requestObject: podStatusPatchJson(created, formatMicroTime(engine.nowUs).slice(0, 19) + 'Z', false),
      responseObject: podJson(pod, rv, created),
    },
    1_800_000,
  );
  const old = core('pods', pod.namespace, pod.name);
  engine.emit(
    {
      actor: ctl,
      verb: 'delete',
      uri: refPath(old),
      ref: old,
      latencyUs: latency.delete(c),
      requestObject: '{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}',
      responseObject: podJson(pod, rv + 1),
    },
    5_000_000,
  );
}

/** A person at a terminal: kubectl get / describe / logs / exec / apply in a namespace they work in. */
function humanCommand(c: SimContext): void {
  const { cluster, engine, prng } = c;
  const human = prng.pick(cluster.humans);
  const ns = prng.pick(human.namespaces.filter((n) => (APP_NAMESPACES as readonly string[]).includes(n)));
  const pods = cluster.pods.filter((p) => p.namespace === ns);
  const pod = prng.pick(pods.length > 0 ? pods : cluster.pods);
  const actor = human.actor;
  const what = prng.int(20);
  if (prng.chance(0.2)) {
    // kubectl refreshes its discovery cache every few minutes.
    const reason = crb('system:discovery', 'system:discovery', group('system:authenticated'));
    for (const path of ['/api', '/apis']) {
      engine.emit({
        actor,
        verb: 'get',
        uri: `${path}?timeout=32s`,
        latencyUs: latency.get(c),
        authz: { decision: 'allow', reason },
      });
    }
  }
  if (what < 8) {
    const ref = core('pods', ns);
    engine.emit({
      actor,
      verb: 'list',
      uri: `${refPath(ref)}?limit=500`,
      ref,
      latencyUs: latency.etcdList(c, pods.length),
    });
  } else if (what < 12) {
    const ref = core('pods', ns, pod.name);
    engine.emit({ actor, verb: 'get', uri: refPath(ref), ref, latencyUs: latency.get(c) });
    const ev = core('events', ns);
    engine.emit(
      {
        actor,
        verb: 'list',
        uri: `${refPath(ev)}?fieldSelector=involvedObject.name%3D${pod.name}%2CinvolvedObject.namespace%3D${ns}%2CinvolvedObject.uid%3D${pod.uid}&limit=500`,
        ref: ev,
        latencyUs: latency.etcdList(c, 10),
      },
      30_000,
    );
  } else if (what < 16) {
    const ref = core('pods', ns, pod.name, 'log');
    const follow = prng.chance(0.3);
    engine.emit({
      actor,
      verb: 'get',
      uri: `${refPath(ref)}?container=app${follow ? '&follow=true' : '&tailLines=200'}`,
      ref,
      latencyUs: follow ? prng.range(20, 600) * SECOND : prng.logNormal(60_000, 0.5),
      longRunning: follow,
    });
  } else if (what < 17) {
    execInto(c, actor, pod, ['sh', '-c', 'env | grep -i feature'], prng.range(5, 30) * SECOND);
  } else {
    const w = pod.workload;
    const ref = grouped('apps', 'v1', 'deployments', ns, w.name);
    const rv = c.nextRv();
    engine.emit({
      actor,
      verb: 'patch',
      uri: `${refPath(ref)}?fieldManager=kubectl-client-side-apply&fieldValidation=Strict`,
      ref,
      latencyUs: latency.write(c),
      requestObject: deploymentApplyJson(w, w.image),
      responseObject: deploymentJson(w, rv),
    });
  }
}

/** `kubectl exec`: a create of pods/exec that stays open for the session. */
export function execInto(
  c: SimContext,
  actor: Actor,
  pod: Pod,
  command: readonly string[],
  durationUs: number,
): string {
  const ref = core('pods', pod.namespace, pod.name, 'exec');
  const q = command.map((x) => `command=${encodeURIComponent(x)}`).join('&');
  return c.engine.emit({
    actor,
    verb: 'create',
    uri: `${refPath(ref)}?${q}&container=app&stdin=true&stdout=true&stderr=true&tty=true`,
    ref,
    code: 101,
    latencyUs: durationUs,
    longRunning: true,
  });
}
