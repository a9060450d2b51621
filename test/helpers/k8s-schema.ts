/**
 * Checks Kubernetes objects against the API's schemas, as kubectl's server-side strict field
 * validation would. kubernetes-models' validators (JSON Schema compiled from the OpenAPI spec) check
 * types, enums and required fields but let unknown fields through, so a typo'd field such as
 * `readOnlyRootFilesytem` would pass them and be dropped silently by a real API server.
 * unknownFieldProblems() closes that gap with the TypeScript interfaces the same package generates
 * from the same spec: each object becomes an object literal typed with its kind's interface, and
 * tsc's excess-property check names every field the interface does not have.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { REPO_ROOT } from './cli.js';

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
} & Record<string, unknown>;

const MODELS: Record<string, new (o: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/Pod': Pod,
  'apps/v1/DaemonSet': DaemonSet,
  'apps/v1/Deployment': Deployment,
};

/** Throws with the schema's errors when the object's types, enums or required fields are wrong. */
export function validateSchema(o: K8sObject): void {
  const Model = MODELS[`${o.apiVersion}/${o.kind}`];
  if (Model === undefined) throw new Error(`no schema for ${o.apiVersion} ${o.kind}: add it to MODELS`);
  new Model(o as never).validate();
}

/** The object without null fields: the API server reads `field: null` as unset (kubeadm writes `creationTimestamp: null`). */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, withoutNulls(v)]),
  );
}

/**
 * Every field of the objects that their kind's schema does not define, and every value of the
 * wrong type, as `label: message` lines; empty when all are clean. `label` names the object in
 * the messages (a file, or kind and name).
 */
export function unknownFieldProblems(objects: readonly { label: string; object: K8sObject }[]): string[] {
  for (const { object } of objects)
    if (MODELS[`${object.apiVersion}/${object.kind}`] === undefined)
      throw new Error(`no schema for ${object.apiVersion} ${object.kind}: add it to MODELS`);
  // Under node_modules so that the check file resolves kubernetes-models like the repo does.
  const cacheDir = join(REPO_ROOT, 'node_modules/.cache');
  mkdirSync(cacheDir, { recursive: true });
  const dir = mkdtempSync(join(cacheDir, 'k8s-fields-'));
  try {
    const kinds = [...new Set(objects.map(({ object }) => `${object.apiVersion}/${object.kind}`))];
    // A kind's key (`apps/v1/DaemonSet`) is also the path of its module in kubernetes-models.
    const imports = kinds.map(
      (k, i) => `import type { I${k.split('/').at(-1)} as T${i} } from 'kubernetes-models/${k}';`,
    );
    // One object per line, so that a diagnostic's line number names its object.
    const lines = objects.map(
      ({ object }, i) =>
        `export const o${i}: T${kinds.indexOf(`${object.apiVersion}/${object.kind}`)} = ${JSON.stringify(withoutNulls(object))};`,
    );
    writeFileSync(join(dir, 'check.ts'), `${[...imports, ...lines].join('\n')}\n`);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          skipLibCheck: true,
          types: [],
        },
        files: ['check.ts'],
      }),
    );
    const tsc = spawnSync(join(REPO_ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], {
      cwd: dir,
      encoding: 'utf8',
    });
    if (tsc.error !== undefined) throw tsc.error;
    if (tsc.status === 0) return [];
    const problems = [];
    for (const line of tsc.stdout.split('\n')) {
      const m = /^check\.ts\((\d+),\d+\): error TS\d+: (.*)$/.exec(line);
      if (m === null) continue;
      const index = Number(m[1]) - 1 - imports.length;
      problems.push(`${objects[index]?.label ?? 'imports'}: ${m[2]}`);
    }
    if (problems.length === 0)
      throw new Error(`tsc failed without a diagnostic:\n${tsc.stdout}${tsc.stderr}`);
    return problems;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
