import { crb, sa } from '../cluster.js';
import { core, refPath } from '../context.js';
import { formatGoDuration } from '../time.js';
import { client, podServiceAccount, type ScenarioKit, spread } from './kit.js';

const SECOND = 1_000_000;

/** Latency problems: an expensive client, a slow etcd, and a client throttled by API Priority and Fairness. */
export function scheduleSlow(k: ScenarioKit): void {
  const { c, startUs, windowUs } = k;
  const { cluster, engine, prng } = c;
  const at = (f: number): number => startUs + f * windowUs;

  // An exporter lists every pod in the cluster from etcd (no resourceVersion, no limit) every 5 s.
  const exporter = podServiceAccount(
    c,
    'monitoring',
    'inventory-exporter',
    'OpenAPI-Generator/29.0.0/python',
    prng.pick(cluster.nodes),
    crb('inventory-exporter', 'view', sa('monitoring', 'inventory-exporter')),
  );
  const listStep = k.step(
    'slow',
    'slow/unpaginated-list',
    'A client lists all pods from etcd every few seconds',
    {
      kind: 'slow',
      cause: 'unpaginated-list',
      client: client(exporter),
      verbs: ['list'],
      resources: ['pods'],
      minLatencyMs: 500,
      advice:
        'Use an informer (watch) or list with resourceVersion=0 and limit=500 so the watch cache serves it.',
    },
  );
  const from = at(0.15);
  const to = at(0.85);
  const n = Math.min(Math.max((to - from) / (5 * SECOND), 6), 2000);
  for (const t of spread(from, to, n)) {
    k.at(t + prng.int(400_000), listStep, () => {
      const pods = core('pods');
      engine.emit({
        actor: exporter,
        verb: 'list',
        uri: refPath(pods),
        ref: pods,
        latencyUs: prng.logNormal(2_400_000, 0.3),
        annotations: {},
      });
    });
  }

  // etcd is slow (a defragmentation, a noisy disk): every write in the window takes seconds.
  const etcdStep = k.step('slow', 'slow/etcd-latency', 'etcd is slow: writes take seconds', {
    kind: 'slow',
    cause: 'etcd-latency',
    verbs: ['create', 'update', 'patch', 'delete'],
    resources: ['*'],
    minLatencyMs: 500,
    advice:
      'Storage latency, not a client: check etcd disk fsync latency, defragmentation and leader changes.',
  });
  const slowFrom = at(0.55);
  const slowLen = Math.min(3 * 60 * SECOND, Math.max(0.05 * windowUs, 2 * SECOND));
  engine.at(slowFrom, () => {
    engine.etcdSlow = { fromUs: slowFrom, toUs: slowFrom + slowLen, step: etcdStep };
  });

  // A misbehaving controller hammers the API; APF queues it, then rejects with 429.
  const scanner = podServiceAccount(
    c,
    'ci',
    'image-scanner',
    'image-scanner/v0.4.2 (linux/amd64) kubernetes/$Format',
    prng.pick(cluster.nodes),
    crb('image-scanner', 'view', sa('ci', 'image-scanner')),
  );
  const apfStep = k.step(
    'slow',
    'slow/apf-throttling',
    'A noisy controller is throttled by API Priority and Fairness (429)',
    {
      kind: 'slow',
      cause: 'apf-throttling',
      code: 429,
      client: client(scanner),
      verbs: ['get'],
      resources: ['pods'],
      minLatencyMs: 0,
      advice:
        'The client exceeds its priority level; make it use informers, lower its QPS, or give it its own FlowSchema.',
    },
  );
  const burstStart = at(0.7);
  const burst = 240;
  for (let i = 0; i < burst; i++) {
    k.at(burstStart + i * 50_000 + prng.int(20_000), apfStep, () => {
      const pod = prng.pick(cluster.pods);
      const ref = core('pods', pod.namespace, pod.name);
      const throttled = i > 40 && prng.chance(0.75);
      if (throttled) {
        // APF runs before authorization in the handler chain, so a 429 has no authorization annotations.
        engine.emit({
          actor: scanner,
          verb: 'get',
          uri: refPath(ref),
          ref,
          failure: {
            code: 429,
            reason: 'TooManyRequests',
            message: 'Too many requests, please try again later.',
            details: { retryAfterSeconds: 1 },
          },
          authz: null,
          latencyUs: prng.logNormal(15_000, 0.3),
        });
      } else {
        const waitNs = Math.round(prng.logNormal(i > 20 ? 400_000_000 : 3_000_000, 0.4));
        engine.emit({
          actor: scanner,
          verb: 'get',
          uri: refPath(ref),
          ref,
          latencyUs: waitNs / 1000 + prng.logNormal(1_300, 0.5),
          annotations:
            waitNs > 1_000_000 ? { 'apiserver.latency.k8s.io/apf-queue-wait': formatGoDuration(waitNs) } : {},
        });
      }
    });
  }
}
