import type { Actor, Node } from '../cluster.js';
import { makeActor } from '../cluster.js';
import type { SimContext } from '../context.js';
import type { Failure, Ref } from '../engine.js';
import type { Expectation, ScenarioName, StepRecord, TruthClient } from '../truth.js';

/** What a scenario needs to place its steps in the simulated window and record their truth. */
export interface ScenarioKit {
  readonly c: SimContext;
  /** Start of the planned window, epoch µs. */
  readonly startUs: number;
  /** Length of the planned window, µs. */
  readonly windowUs: number;
  /** Opens a truth step. */
  step(scenario: Exclude<ScenarioName, 'normal'>, id: string, title: string, expect: Expectation): StepRecord;
  /** Runs `fn` at time `atUs` with every request it emits attributed to `step`. */
  at(atUs: number, step: StepRecord, fn: (nowUs: number) => void): void;
}

export function client(a: Actor): TruthClient {
  return { username: a.username, userAgent: a.userAgent, sourceIP: a.sourceIP };
}

/** The message kube-apiserver returns when RBAC denies a request. */
export function forbidden(actor: Actor, verb: string, ref: Ref): Failure {
  const group = ref.apiGroup ?? '';
  const resource = ref.subresource === undefined ? ref.resource : `${ref.resource}/${ref.subresource}`;
  const scope = ref.namespace === undefined ? 'at the cluster scope' : `in the namespace "${ref.namespace}"`;
  const what = ref.name === undefined ? resource : `${resource} "${ref.name}"`;
  return {
    code: 403,
    reason: 'Forbidden',
    message: `${what} is forbidden: User "${actor.username}" cannot ${verb} resource "${resource}" in API group "${group}" ${scope}`,
    details: ref.name === undefined ? { kind: ref.resource } : { name: ref.name, kind: ref.resource },
  };
}

/** The 403 for a non-resource URL such as /api. */
export function forbiddenPath(actor: Actor, verb: string, path: string): Failure {
  return {
    code: 403,
    reason: 'Forbidden',
    message: `forbidden: User "${actor.username}" cannot ${verb} path "${path}"`,
    details: {},
  };
}

export const DENY = { decision: 'forbid', reason: '' } as const;

/** A service account used from inside a pod that is not part of the base workloads. */
export function podServiceAccount(
  c: SimContext,
  namespace: string,
  name: string,
  userAgent: string,
  node: Node,
  allowReason: string,
): Actor {
  const { prng } = c;
  return makeActor({
    username: `system:serviceaccount:${namespace}:${name}`,
    uid: prng.uuid(),
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
    extra: {
      'authentication.kubernetes.io/credential-id': [`JTI=${prng.uuid()}`],
      'authentication.kubernetes.io/node-name': [node.name],
      'authentication.kubernetes.io/node-uid': [node.uid],
      'authentication.kubernetes.io/pod-name': [`${name}-${prng.suffix(10)}-${prng.suffix(5)}`],
      'authentication.kubernetes.io/pod-uid': [prng.uuid()],
    },
    userAgent,
    sourceIP: `10.244.${c.cluster.nodes.indexOf(node)}.${prng.range(2, 250)}`,
    allowReason,
  });
}

/** `n` evenly spread times in [from, to), at least one. */
export function spread(from: number, to: number, n: number): number[] {
  const count = Math.max(1, Math.floor(n));
  const gap = (to - from) / count;
  return Array.from({ length: count }, (_, i) => from + i * gap);
}
