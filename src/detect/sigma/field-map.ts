/**
 * Sigma field names -> kaudit field paths. Sigma's Kubernetes audit rules name most fields as the
 * audit.k8s.io/v1 Event does (`verb`, `objectRef.resource`, `user.username`), which are dotted
 * paths here as they are. A few SigmaHQ rules use other forms; this table is the one place that
 * says what each of them means.
 */
import { parsePath } from '../fields.js';

/** One field test after mapping: the kaudit path and the value to test there. */
export interface MappedTest {
  path: string[];
  value: unknown;
}

interface FieldForm {
  /** The field name as Sigma rules write it. */
  sigma: string;
  /** The kaudit path it reads. */
  path: string;
  /** Values that read another field instead (undefined: the value is tested on `path` as is). */
  value?: (v: unknown) => MappedTest | undefined;
}

const DECISIONS: Readonly<Record<string, string>> = { allow: 'allow', deny: 'forbid' };

export const SIGMA_FIELD_FORMS: readonly FieldForm[] = [
  // SigmaHQ kubernetes_audit_rbac_permisions_listing.yml and kubernetes_audit_sidecar_injection.yml
  // write the API group without its `objectRef.` prefix.
  { sigma: 'apiGroup', path: 'objectRef.apiGroup' },
  // SigmaHQ kubernetes_audit_hostpath_mount.yml: `hostPath: '*'` asks for a pod with a hostPath
  // volume, in whatever workload carries the pod spec.
  { sigma: 'hostPath', path: 'podSpec.volumes.hostPath.path' },
  // SigmaHQ kubernetes_audit_privileged_pod_creation.yml: `capabilities: '*'` asks for a container
  // (of any kind: init, ephemeral) that adds Linux capabilities.
  { sigma: 'capabilities', path: 'containers.securityContext.capabilities.add' },
  // SigmaHQ kubernetes_audit_potential_enumeration_activity.yml tests `responseStatus.code: 'ALLOW'`:
  // a status code is a number, so ALLOW and DENY can only mean the authorization decision, which
  // kube-apiserver records in the `authorization.k8s.io/decision` annotation as allow or forbid.
  {
    sigma: 'responseStatus.code',
    path: 'responseStatus.code',
    value: (v) => {
      const d = typeof v === 'string' ? DECISIONS[v.toLowerCase()] : undefined;
      return d === undefined ? undefined : { path: ['decision'], value: d };
    },
  },
];

const BY_NAME = new Map(SIGMA_FIELD_FORMS.map((f) => [f.sigma, f]));

/**
 * The kaudit path of a Sigma field name; undefined when it is not a field path. Annotation keys
 * hold dots (`authorization.k8s.io/decision`), so `annotations.<key>` takes the rest as one key.
 */
export function mapSigmaField(name: string): string[] | undefined {
  const form = BY_NAME.get(name);
  if (form !== undefined) return parsePath(form.path);
  if (name.startsWith('annotations.') && !name.includes('[') && name.length > 'annotations.'.length)
    return ['annotations', name.slice('annotations.'.length)];
  return parsePath(name);
}

/** Where a value of a Sigma field is tested: usually the mapped field, for a few forms another. */
export function mapSigmaValue(name: string, path: string[], value: unknown): MappedTest {
  return BY_NAME.get(name)?.value?.(value) ?? { path, value };
}
