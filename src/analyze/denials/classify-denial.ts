/**
 * Why a request was refused: by the authorizer (`rbac`), by admission after the authorizer allowed
 * it (`admission`: PodSecurity, a validating webhook or policy, ResourceQuota, LimitRange,
 * NamespaceLifecycle), by authentication (`authentication`, 401) or otherwise (`other`: 429 from
 * API Priority and Fairness, 409 conflicts ...). The messages matched are kube-apiserver's own.
 */
import type { RequestRecord } from '../request-record.js';

export type DenialClass = 'rbac' | 'admission' | 'authentication' | 'other';

export type AdmissionKind =
  | 'PodSecurity'
  | 'ValidatingWebhook'
  | 'ValidatingAdmissionPolicy'
  | 'ResourceQuota'
  | 'LimitRange'
  | 'NamespaceLifecycle'
  | 'unknown';

export interface DenialClassification {
  class: DenialClass;
  /** For `admission`: which admission step refused, and its name when the message gives one (webhook, policy, quota, PodSecurity level). */
  admission?: { kind: AdmissionKind; name?: string };
}

const POD_SECURITY_ANNOTATION_PREFIX = 'pod-security.kubernetes.io/';

interface AdmissionPattern {
  kind: AdmissionKind;
  re: RegExp;
}

// Messages written by the admission plugins (see each file named):
const ADMISSION_PATTERNS: readonly AdmissionPattern[] = [
  // pod-security-admission admission.go: `pods "x" is forbidden: violates PodSecurity "restricted:latest": ...`
  { kind: 'PodSecurity', re: /violates PodSecurity "([^"]+)"/ },
  // apiserver webhook/errors: `admission webhook "name" denied the request: ...`
  { kind: 'ValidatingWebhook', re: /admission webhook "([^"]+)" denied the request/ },
  // apiserver validatingadmissionpolicy: `ValidatingAdmissionPolicy 'p' with binding 'b' denied request: ...`
  {
    kind: 'ValidatingAdmissionPolicy',
    re: /ValidatingAdmissionPolicy '([^']+)'(?: with binding '[^']+')? denied request/,
  },
  // plugin/pkg/admission/resourcequota: `exceeded quota: compute-resources, requested: ...`
  { kind: 'ResourceQuota', re: /exceeded quota: ([^,\s]+)/ },
  // plugin/pkg/admission/limitranger: `maximum cpu usage per Container is 1, but limit is 2` and kin
  {
    kind: 'LimitRange',
    re: /(?:maximum|minimum) \S+ usage per (?:Container|Pod|PersistentVolumeClaim)|limit to request ratio per|must be less than or equal to \S+ limit/,
  },
  // plugin/pkg/admission/namespace/lifecycle: `unable to create new content in namespace x because it is being terminated`
  {
    kind: 'NamespaceLifecycle',
    re: /unable to create new content in namespace (\S+) because it is being terminated|namespaces? "([^"]+)" not found/,
  },
];

function admissionOf(r: RequestRecord): { kind: AdmissionKind; name?: string } | undefined {
  for (const p of ADMISSION_PATTERNS) {
    const m = p.re.exec(r.message);
    if (m) {
      const name = m[1] ?? m[2];
      return name === undefined ? { kind: p.kind } : { kind: p.kind, name };
    }
  }
  // PodSecurity writes its annotations on every pod it evaluates; with a 403 and no other cause it is the one.
  if (
    r.code === 403 &&
    Object.keys(r.annotations).some((k) => k.startsWith(POD_SECURITY_ANNOTATION_PREFIX))
  ) {
    const level = r.annotations[`${POD_SECURITY_ANNOTATION_PREFIX}enforce-policy`];
    return level === undefined ? { kind: 'PodSecurity' } : { kind: 'PodSecurity', name: level };
  }
  return undefined;
}

/** A request the apiserver refused: denied by authn/authz/admission, throttled, or in conflict. */
export function isDenied(r: RequestRecord): boolean {
  if (r.decision === 'forbid') return true;
  if (r.code === null) return false;
  if (r.code === 401 || r.code === 403 || r.code === 409 || r.code === 429) return true;
  // A webhook or policy may refuse with another 4xx (422 Invalid, 400).
  return r.code >= 400 && r.code < 500 && r.code !== 404 && admissionOf(r) !== undefined;
}

export function classifyDenial(r: RequestRecord): DenialClassification {
  if (r.code === 401) return { class: 'authentication' };
  if (r.decision === 'forbid') return { class: 'rbac' };
  const admission = admissionOf(r);
  if (admission) return { class: 'admission', admission };
  // The authorizer allowed it (the annotation says so) and admission still refused: a plugin we do not know.
  if (r.code === 403 && r.decision === 'allow') return { class: 'admission', admission: { kind: 'unknown' } };
  return { class: 'other' };
}
