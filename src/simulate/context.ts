import type { Cluster } from './cluster.js';
import type { Engine, Ref } from './engine.js';
import type { Prng } from './prng.js';

/** What every traffic source and scenario works with. */
export interface SimContext {
  readonly engine: Engine;
  readonly prng: Prng;
  readonly cluster: Cluster;
  /** The next etcd resourceVersion; writes advance it. */
  nextRv(): number;
  /** The current resourceVersion, as a watch or a consistent list would see it. */
  currentRv(): number;
}

/** The request path of `ref`, as kube-apiserver's request-info resolver would parse it back. */
export function refPath(ref: Ref): string {
  const base =
    ref.apiGroup === undefined ? `/api/${ref.apiVersion}` : `/apis/${ref.apiGroup}/${ref.apiVersion}`;
  if (ref.resource === 'namespaces') {
    return ref.name === undefined ? `${base}/namespaces` : `${base}/namespaces/${ref.name}`;
  }
  let p = base;
  if (ref.namespace !== undefined) p += `/namespaces/${ref.namespace}`;
  p += `/${ref.resource}`;
  if (ref.name !== undefined) p += `/${ref.name}`;
  if (ref.subresource !== undefined) p += `/${ref.subresource}`;
  return p;
}

/** A core-group (v1) reference. Objects keep one shape (absent fields are undefined) for speed. */
export function core(resource: string, namespace?: string, name?: string, subresource?: string): Ref {
  return { resource, namespace, name, apiGroup: undefined, apiVersion: 'v1', subresource };
}

/** A reference in a named API group. */
export function grouped(
  apiGroup: string,
  apiVersion: string,
  resource: string,
  namespace?: string,
  name?: string,
  subresource?: string,
): Ref {
  return { resource, namespace, name, apiGroup, apiVersion, subresource };
}

/** Latencies (µs) drawn per kind of work, log-normal around medians seen on healthy clusters. */
export const latency = {
  /** A GET served from the watch cache or a single etcd read. */
  get: (c: SimContext): number => c.prng.logNormal(1_300, 0.6),
  /** A LIST with resourceVersion=0, served from the watch cache. */
  cachedList: (c: SimContext, items: number): number => c.prng.logNormal(1_500 + items * 25, 0.6),
  /** A consistent LIST that goes to etcd. */
  etcdList: (c: SimContext, items: number): number => c.prng.logNormal(8_000 + items * 150, 0.5),
  /** create/update/patch: admission plus one etcd transaction. */
  write: (c: SimContext): number => c.prng.logNormal(6_000, 0.5),
  delete: (c: SimContext): number => c.prng.logNormal(8_000, 0.5),
  /** TokenReview, SubjectAccessReview: no storage. */
  review: (c: SimContext): number => c.prng.logNormal(900, 0.5),
};

/** `timeout=7m32s&timeoutSeconds=452` as client-go reflectors send (5 to 10 minutes). */
export function watchTimeout(c: SimContext): { seconds: number; query: string } {
  const seconds = c.prng.range(300, 599);
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  return { seconds, query: `timeout=${m}m${s}s&timeoutSeconds=${seconds}` };
}
