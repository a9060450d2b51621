import { clusterRoleBindingJson, privilegedPodJson } from '../bodies.js';
import { type Actor, crb, group, makeActor, NAMESPACES, sa } from '../cluster.js';
import { core, grouped, latency, refPath } from '../context.js';
import type { Ref } from '../engine.js';
import { execInto } from '../traffic.js';
import type { AttackExpectation } from '../truth.js';
import { client, DENY, forbidden, forbiddenPath, type ScenarioKit } from './kit.js';

const ATTACKER_IP = '203.0.113.66';
const ATTACKER_KUBECTL = 'kubectl/v1.29.0 (linux/amd64) kubernetes/3f7a50f';

type Technique = Pick<AttackExpectation, 'technique' | 'techniqueName' | 'tactic'>;

/**
 * An intrusion told in order: an anonymous scan, a pod's service-account token stolen and used
 * from outside, permission discovery, secrets harvested across namespaces, then with a found
 * cluster-admin token: exec, a privileged pod on the host, a backdoor binding, and log cleanup.
 * Each step carries its MITRE ATT&CK technique (Enterprise matrix, Containers platform).
 */
export function scheduleAttack(k: ScenarioKit): void {
  const { c, startUs, windowUs } = k;
  const { cluster, engine, prng } = c;
  const at = (f: number): number => startUs + f * windowUs;
  const gap = (): number => 300_000 + prng.int(1_500_000);

  const step = (
    id: string,
    title: string,
    technique: Technique,
    actor: Actor,
    verbs: string[],
    resources: string[],
    namespaces: string[],
  ) =>
    k.step('attack', `attack/${id}`, title, {
      kind: 'attack',
      ...technique,
      client: client(actor),
      verbs,
      resources,
      namespaces,
    });

  /** Emits `reqs` one after another with human-ish gaps, starting at `t`. */
  const sequence = (t: number, s: ReturnType<typeof step>, reqs: ((offset: number) => void)[]): void => {
    k.at(t, s, () => {
      let offset = 0;
      for (const r of reqs) {
        r(offset);
        offset += gap();
      }
    });
  };

  // 1. Anonymous discovery from the internet.
  const anon = makeActor({
    username: 'system:anonymous',
    groups: ['system:unauthenticated'],
    userAgent: 'python-requests/2.31.0',
    sourceIP: ATTACKER_IP,
    allowReason: crb(
      'system:public-info-viewer',
      'system:public-info-viewer',
      group('system:unauthenticated'),
    ),
  });
  const probe = step(
    'anonymous-discovery',
    'Anonymous requests probe the API from the internet',
    { technique: 'T1613', techniqueName: 'Container and Resource Discovery', tactic: 'Discovery' },
    anon,
    ['get', 'list'],
    ['version', 'api', 'apis', 'pods', 'secrets', 'deployments'],
    ['kube-system'],
  );
  const nonResource = (path: string, allowed: boolean) => (o: number) =>
    engine.emit(
      {
        actor: anon,
        verb: 'get',
        uri: path,
        latencyUs: prng.logNormal(500, 0.3),
        ...(allowed ? {} : { failure: forbiddenPath(anon, 'get', path), authz: DENY }),
      },
      o,
    );
  const denied =
    (actor: Actor, verb: string, ref: Ref, query = '') =>
    (o: number) =>
      engine.emit(
        {
          actor,
          verb,
          uri: refPath(ref) + query,
          ref,
          failure: forbidden(actor, verb, ref),
          authz: DENY,
          latencyUs: prng.logNormal(700, 0.3),
        },
        o,
      );
  sequence(at(0.3), probe, [
    nonResource('/version', true),
    nonResource('/healthz', true),
    nonResource('/api', false),
    nonResource('/apis', false),
    nonResource('/.well-known/openid-configuration', false),
    denied(anon, 'list', core('pods')),
    denied(anon, 'list', core('secrets', 'kube-system')),
    denied(anon, 'list', grouped('apps', 'v1', 'deployments')),
  ]);

  // 2. The storefront pod's token, taken through an app vulnerability, used from the attacker's host.
  const victimPod = cluster.pods.find((p) => p.workload.name === 'storefront') ?? prng.pick(cluster.pods);
  const stolen: Actor = makeActor({
    username: victimPod.actor.username,
    ...(victimPod.actor.uid === undefined ? {} : { uid: victimPod.actor.uid }),
    groups: victimPod.actor.groups,
    ...(victimPod.actor.extra === undefined ? {} : { extra: { ...victimPod.actor.extra } }),
    userAgent: ATTACKER_KUBECTL,
    sourceIP: ATTACKER_IP,
    allowReason: victimPod.actor.allowReason,
  });
  const ns = victimPod.namespace;
  const discovery = crb('system:discovery', 'system:discovery', group('system:authenticated'));
  const tokenStep = step(
    'stolen-token',
    `The token of a ${victimPod.workload.name} pod is used from a new IP and user agent`,
    {
      technique: 'T1550.001',
      techniqueName: 'Use Alternate Authentication Material: Application Access Token',
      tactic: 'Defense Evasion, Lateral Movement',
    },
    stolen,
    ['get', 'list'],
    ['api', 'apis', 'pods', 'configmaps'],
    [ns],
  );
  const allowed =
    (actor: Actor, verb: string, ref: Ref | undefined, uri: string, reason?: string) => (o: number) =>
      engine.emit(
        {
          actor,
          verb,
          uri,
          ...(ref === undefined ? {} : { ref }),
          latencyUs: verb === 'list' ? latency.etcdList(c, 30) : latency.get(c),
          ...(reason === undefined ? {} : { authz: { decision: 'allow' as const, reason } }),
        },
        o,
      );
  sequence(at(0.35), tokenStep, [
    allowed(stolen, 'get', undefined, '/api?timeout=32s', discovery),
    allowed(stolen, 'get', undefined, '/apis?timeout=32s', discovery),
    allowed(stolen, 'list', core('pods', ns), `${refPath(core('pods', ns))}?limit=500`),
    allowed(stolen, 'list', core('configmaps', ns), `${refPath(core('configmaps', ns))}?limit=500`),
  ]);

  // 3. What can this token do? `kubectl auth can-i --list` and trial and error.
  const enumStep = step(
    'permission-enumeration',
    'Permission enumeration: selfsubjectrulesreviews and many denied requests',
    { technique: 'T1069', techniqueName: 'Permission Groups Discovery', tactic: 'Discovery' },
    stolen,
    ['create', 'list', 'get'],
    [
      'selfsubjectrulesreviews',
      'selfsubjectaccessreviews',
      'nodes',
      'clusterrolebindings',
      'namespaces',
      'pods',
    ],
    ['web', 'default', 'kube-system'],
  );
  const basicUser = crb('system:basic-user', 'system:basic-user', group('system:authenticated'));
  const review = (resource: string) => (o: number) => {
    const ref = grouped('authorization.k8s.io', 'v1', resource);
    engine.emit(
      {
        actor: stolen,
        verb: 'create',
        uri: refPath(ref),
        ref,
        latencyUs: latency.review(c),
        authz: { decision: 'allow', reason: basicUser },
      },
      o,
    );
  };
  sequence(at(0.38), enumStep, [
    review('selfsubjectrulesreviews'),
    review('selfsubjectrulesreviews'),
    review('selfsubjectrulesreviews'),
    review('selfsubjectaccessreviews'),
    review('selfsubjectaccessreviews'),
    denied(stolen, 'list', core('nodes'), '?limit=500'),
    denied(stolen, 'list', grouped('rbac.authorization.k8s.io', 'v1', 'clusterrolebindings'), '?limit=500'),
    denied(stolen, 'list', grouped('rbac.authorization.k8s.io', 'v1', 'clusterroles'), '?limit=500'),
    denied(stolen, 'list', core('namespaces'), '?limit=500'),
    denied(stolen, 'list', core('pods'), '?limit=500'),
    denied(stolen, 'create', core('pods', 'kube-system')),
    denied(stolen, 'list', grouped('apps', 'v1', 'deployments', 'kube-system'), '?limit=500'),
    denied(stolen, 'get', core('configmaps', 'kube-system', 'kubeadm-config')),
    denied(stolen, 'create', grouped('rbac.authorization.k8s.io', 'v1', 'clusterrolebindings')),
    denied(stolen, 'list', core('serviceaccounts', 'kube-system'), '?limit=500'),
  ]);

  // 4. A leftover ClusterRoleBinding lets the storefront SA read every secret.
  const secretReader = crb('storefront-secrets', 'secret-reader', stolen.subject);
  const harvest = step(
    'secrets-across-namespaces',
    'Secrets listed across all namespaces',
    {
      technique: 'T1552.007',
      techniqueName: 'Unsecured Credentials: Container API',
      tactic: 'Credential Access',
    },
    stolen,
    ['list'],
    ['secrets'],
    [...NAMESPACES],
  );
  sequence(at(0.42), harvest, [
    allowed(stolen, 'list', core('secrets'), `${refPath(core('secrets'))}?limit=500`, secretReader),
    ...NAMESPACES.map((n) =>
      allowed(stolen, 'list', core('secrets', n), `${refPath(core('secrets', n))}?limit=500`, secretReader),
    ),
  ]);

  // In argocd's namespace lies a legacy token of argocd-manager, bound to a wildcard ClusterRole.
  const admin = makeActor({
    username: 'system:serviceaccount:kube-system:argocd-manager',
    uid: prng.uuid(),
    groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
    userAgent: ATTACKER_KUBECTL,
    sourceIP: ATTACKER_IP,
    allowReason: crb(
      'argocd-manager-role-binding',
      'argocd-manager-role',
      sa('kube-system', 'argocd-manager'),
    ),
  });

  // 5. Exec into a payments pod to read its token and environment.
  const target = cluster.pods.find((p) => p.workload.name === 'payments-api') ?? prng.pick(cluster.pods);
  const execStep = step(
    'exec',
    `Exec into ${target.namespace}/${target.name}`,
    { technique: 'T1609', techniqueName: 'Container Administration Command', tactic: 'Execution' },
    admin,
    ['create'],
    ['pods/exec'],
    [target.namespace],
  );
  k.at(at(0.5), execStep, () => {
    execInto(
      c,
      admin,
      target,
      ['sh', '-c', 'cat /var/run/secrets/kubernetes.io/serviceaccount/token; env'],
      40_000_000,
    );
  });

  // 6. A privileged pod with the node's root filesystem mounted, then a shell on the host.
  const node = prng.pick(cluster.nodes);
  const podName = `node-debugger-${prng.suffix(5)}`;
  const privStep = step(
    'privileged-pod',
    'A privileged pod with hostPath / is created and exec-ed into (T1610 Deploy Container to escape)',
    { technique: 'T1611', techniqueName: 'Escape to Host', tactic: 'Privilege Escalation' },
    admin,
    ['create', 'get'],
    ['pods', 'pods/exec'],
    ['kube-system'],
  );
  k.at(at(0.55), privStep, () => {
    const pods = core('pods', 'kube-system');
    const rv = c.nextRv();
    const body = privilegedPodJson('kube-system', podName, node.name);
    engine.emit({
      actor: admin,
      verb: 'create',
      uri: `${refPath(pods)}?fieldManager=kubectl-create&fieldValidation=Strict`,
      ref: pods,
      latencyUs: latency.write(c),
      requestObject: body,
      responseObject: body.replace(
        '"metadata":{',
        `"metadata":{"uid":"${prng.uuid()}","resourceVersion":"${rv}",`,
      ),
      annotations: { 'pod-security.kubernetes.io/enforce-policy': 'privileged:latest' },
    });
    const ref = core('pods', 'kube-system', podName);
    engine.emit({ actor: admin, verb: 'get', uri: refPath(ref), ref, latencyUs: latency.get(c) }, 2_000_000);
    const execRef = core('pods', 'kube-system', podName, 'exec');
    engine.emit(
      {
        actor: admin,
        verb: 'create',
        uri: `${refPath(execRef)}?command=chroot&command=%2Fhost&command=bash&container=shell&stdin=true&stdout=true&tty=true`,
        ref: execRef,
        code: 101,
        latencyUs: 90_000_000,
        longRunning: true,
      },
      5_000_000,
    );
  });

  // 7. Persistence: a service account bound to cluster-admin, and a token for it.
  const backdoor = { kind: 'ServiceAccount' as const, name: 'node-debugger', namespace: 'kube-system' };
  const crbStep = step(
    'cluster-admin-binding',
    'A ClusterRoleBinding grants cluster-admin to a new service account',
    {
      technique: 'T1098.006',
      techniqueName: 'Account Manipulation: Additional Container Cluster Roles',
      tactic: 'Persistence, Privilege Escalation',
    },
    admin,
    ['create'],
    ['serviceaccounts', 'clusterrolebindings', 'serviceaccounts/token'],
    ['kube-system'],
  );
  k.at(at(0.6), crbStep, () => {
    const sas = core('serviceaccounts', 'kube-system');
    const saBody = JSON.stringify({
      kind: 'ServiceAccount',
      apiVersion: 'v1',
      metadata: { name: backdoor.name, namespace: 'kube-system' },
    });
    engine.emit({
      actor: admin,
      verb: 'create',
      uri: refPath(sas),
      ref: sas,
      latencyUs: latency.write(c),
      requestObject: saBody,
      responseObject: saBody,
    });
    const crbs = grouped('rbac.authorization.k8s.io', 'v1', 'clusterrolebindings');
    const name = 'system:node-debugger';
    engine.emit(
      {
        actor: admin,
        verb: 'create',
        uri: `${refPath(crbs)}?fieldManager=kubectl-create&fieldValidation=Strict`,
        ref: crbs,
        latencyUs: latency.write(c),
        requestObject: clusterRoleBindingJson(name, 'cluster-admin', backdoor),
        responseObject: clusterRoleBindingJson(name, 'cluster-admin', backdoor, prng.uuid(), c.nextRv()),
      },
      4_000_000,
    );
    const token = core('serviceaccounts', 'kube-system', backdoor.name, 'token');
    engine.emit(
      { actor: admin, verb: 'create', uri: refPath(token), ref: token, latencyUs: latency.write(c) },
      9_000_000,
    );
  });

  // 8. Cover tracks: delete the events that recorded the pod and the exec.
  const cleanupNamespaces = ['kube-system', target.namespace, ns, 'default'];
  const cleanStep = step(
    'events-deleted',
    'Events deleted in several namespaces',
    { technique: 'T1070', techniqueName: 'Indicator Removal', tactic: 'Defense Evasion' },
    admin,
    ['deletecollection'],
    ['events'],
    cleanupNamespaces,
  );
  sequence(
    at(0.65),
    cleanStep,
    cleanupNamespaces.map((n) => (o: number) => {
      const ref = core('events', n);
      c.nextRv();
      engine.emit(
        {
          actor: admin,
          verb: 'deletecollection',
          uri: refPath(ref),
          ref,
          latencyUs: latency.etcdList(c, 200),
        },
        o,
      );
    }),
  );
}
