import { configMapJson, deploymentApplyJson, deploymentJson, podJson } from '../bodies.js';
import type { Actor, Workload } from '../cluster.js';
import { core, grouped, latency, refPath } from '../context.js';
import { client, type ScenarioKit } from './kit.js';

/** Changes an operator would want in a change log: rollouts, configuration edits, a namespace deletion. */
export function scheduleChanges(k: ScenarioKit): void {
  const { c, startUs, windowUs } = k;
  const { cluster, engine, prng } = c;
  const at = (f: number): number => startUs + f * windowUs;
  const ctl = cluster.controllers;

  const rollout = (f: number, w: Workload, actor: Actor): void => {
    const [repo] = w.image.split(':');
    const version = `1.${prng.range(20, 40)}.0`;
    const image = `${repo}:${version}`;
    const s = k.step(
      'changes',
      `changes/rollout-${w.namespace}-${w.name}`,
      `Deployment ${w.namespace}/${w.name} rolled out to ${version}`,
      {
        kind: 'change',
        client: client(actor),
        verb: 'patch',
        resource: 'deployments',
        apiGroup: 'apps',
        namespace: w.namespace,
        name: w.name,
        summary: `image ${w.image} -> ${image}`,
      },
    );
    k.at(at(f), s, () => {
      const ref = grouped('apps', 'v1', 'deployments', w.namespace, w.name);
      w.generation += 1;
      const primary = engine.emit({
        actor,
        verb: 'patch',
        uri: `${refPath(ref)}?fieldManager=kubectl-client-side-apply&fieldValidation=Strict`,
        ref,
        latencyUs: latency.write(c),
        requestObject: deploymentApplyJson(w, image),
        responseObject: deploymentJson(w, c.nextRv(), image),
      });
      if (s.expect.kind === 'change') s.expect.primaryAuditID = primary;
      // The deployment controller creates the new ReplicaSet; the ReplicaSet controller swaps pods.
      const rsHash = prng.suffix(10);
      const rss = grouped('apps', 'v1', 'replicasets', w.namespace);
      c.nextRv();
      engine.emit(
        {
          actor: ctl['deployment-controller'],
          verb: 'create',
          uri: refPath(rss),
          ref: rss,
          latencyUs: latency.write(c),
        },
        20_000,
      );
      let offset = 200_000;
      for (const old of w.pods) {
        const pods = core('pods', w.namespace);
        const fresh = { ...old, name: `${w.name}-${rsHash}-${prng.suffix(5)}`, uid: prng.uuid() };
        engine.emit(
          {
            actor: ctl['replicaset-controller'],
            verb: 'create',
            uri: refPath(pods),
            ref: pods,
            latencyUs: latency.write(c),
            requestObject: podJson(old, 0),
            responseObject: podJson(old, c.nextRv(), fresh),
          },
          offset,
        );
        const del = core('pods', w.namespace, old.name);
        engine.emit(
          {
            actor: ctl['replicaset-controller'],
            verb: 'delete',
            uri: refPath(del),
            ref: del,
            latencyUs: latency.delete(c),
            requestObject: '{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}',
            responseObject: podJson(old, c.nextRv()),
          },
          offset + 8_000_000,
        );
        offset += 10_000_000 + prng.int(3_000_000);
      }
    });
  };
  const workloads = cluster.workloads;
  const pickIn = (ns: string): Workload => workloads.find((w) => w.namespace === ns) ?? prng.pick(workloads);
  rollout(0.2, pickIn('checkout'), cluster.ciDeployer);
  rollout(0.62, pickIn('web'), cluster.ciDeployer);

  // `kubectl edit configmap`: a get, then an update with the whole object.
  const edit = (
    f: number,
    actor: Actor,
    namespace: string,
    name: string,
    change: [string, string, string],
  ): void => {
    const [key, before, after] = change;
    const s = k.step(
      'changes',
      `changes/configmap-${namespace}-${name}`,
      `ConfigMap ${namespace}/${name} edited`,
      {
        kind: 'change',
        client: client(actor),
        verb: 'update',
        resource: 'configmaps',
        apiGroup: '',
        namespace,
        name,
        summary: `data.${key}: ${before} -> ${after}`,
      },
    );
    k.at(at(f), s, () => {
      const ref = core('configmaps', namespace, name);
      engine.emit({ actor, verb: 'get', uri: refPath(ref), ref, latencyUs: latency.get(c) });
      const uid = prng.uuid();
      const rv = c.nextRv();
      const primary = engine.emit(
        {
          actor,
          verb: 'update',
          uri: `${refPath(ref)}?fieldManager=kubectl-edit&fieldValidation=Strict`,
          ref,
          latencyUs: latency.write(c),
          requestObject: configMapJson(namespace, name, uid, rv - 1, { [key]: after }),
          responseObject: configMapJson(namespace, name, uid, rv, { [key]: after }),
        },
        45_000_000,
      );
      if (s.expect.kind === 'change') s.expect.primaryAuditID = primary;
    });
  };
  const bob = cluster.humans.find((h) => h.actor.username === 'bob@example.com')?.actor;
  const alice = cluster.humans.find((h) => h.actor.username === 'alice@example.com')?.actor;
  const payments = pickIn('payments');
  if (bob !== undefined)
    edit(0.33, bob, payments.namespace, payments.configMap, ['LOG_LEVEL', 'info', 'debug']);
  if (alice !== undefined) {
    edit(0.47, alice, 'kube-system', 'coredns', [
      'Corefile',
      '.:53 { forward . /etc/resolv.conf }',
      '.:53 { forward . 10.0.0.2 }',
    ]);

    // A preview namespace created by CI, later deleted by a person; the namespace controller empties it.
    const preview = 'feature-x-preview';
    const created = k.step('changes', 'changes/namespace-created', `Namespace ${preview} created`, {
      kind: 'change',
      client: client(cluster.ciDeployer),
      verb: 'create',
      resource: 'namespaces',
      apiGroup: '',
      name: preview,
      summary: `namespace ${preview} created`,
    });
    k.at(at(0.12), created, () => {
      const ref = core('namespaces');
      const body = JSON.stringify({ kind: 'Namespace', apiVersion: 'v1', metadata: { name: preview } });
      const id = engine.emit({
        actor: cluster.ciDeployer,
        verb: 'create',
        uri: refPath(ref),
        ref,
        latencyUs: latency.write(c),
        requestObject: body,
        responseObject: body,
      });
      if (created.expect.kind === 'change') created.expect.primaryAuditID = id;
    });
    const deleted = k.step('changes', 'changes/namespace-deleted', `Namespace ${preview} deleted`, {
      kind: 'change',
      client: client(alice),
      verb: 'delete',
      resource: 'namespaces',
      apiGroup: '',
      name: preview,
      summary: `namespace ${preview} and everything in it deleted`,
    });
    k.at(at(0.75), deleted, () => {
      const ref = core('namespaces', preview, preview);
      const id = engine.emit({
        actor: alice,
        verb: 'delete',
        uri: refPath(ref),
        ref,
        latencyUs: latency.delete(c),
      });
      if (deleted.expect.kind === 'change') deleted.expect.primaryAuditID = id;
      let offset = 100_000;
      const resources: [string | undefined, string, string, string][] = [
        [undefined, 'v1', 'configmaps', 'ConfigMap'],
        [undefined, 'v1', 'secrets', 'Secret'],
        [undefined, 'v1', 'services', 'Service'],
        [undefined, 'v1', 'pods', 'Pod'],
        [undefined, 'v1', 'serviceaccounts', 'ServiceAccount'],
        ['apps', 'v1', 'deployments', 'Deployment'],
        ['apps', 'v1', 'replicasets', 'ReplicaSet'],
        ['discovery.k8s.io', 'v1', 'endpointslices', 'EndpointSlice'],
        ['networking.k8s.io', 'v1', 'ingresses', 'Ingress'],
        ['rbac.authorization.k8s.io', 'v1', 'rolebindings', 'RoleBinding'],
        ['rbac.authorization.k8s.io', 'v1', 'roles', 'Role'],
      ];
      for (const [group, version, resource, kind] of resources) {
        const r = group === undefined ? core(resource, preview) : grouped(group, version, resource, preview);
        const apiVersion = group === undefined ? version : `${group}/${version}`;
        engine.emit(
          {
            actor: ctl['namespace-controller'],
            verb: 'deletecollection',
            uri: refPath(r),
            ref: r,
            latencyUs: latency.delete(c),
            requestObject: '{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}',
            // The namespace was a short-lived preview: what it held is gone by now.
            responseObject: `{"kind":"${kind}List","apiVersion":"${apiVersion}","metadata":{"resourceVersion":"${c.currentRv()}"},"items":[]}`,
          },
          offset,
        );
        offset += 50_000 + prng.int(200_000);
      }
      const fin = core('namespaces', preview, preview, 'finalize');
      engine.emit(
        {
          actor: ctl['namespace-controller'],
          verb: 'update',
          uri: refPath(fin),
          ref: fin,
          latencyUs: latency.write(c),
        },
        offset,
      );
    });
  }
}
