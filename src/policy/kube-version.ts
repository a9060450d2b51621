import { UserError } from '../model/errors.js';

/** A Kubernetes minor version, e.g. `{ major: 1, minor: 36 }`. */
export interface KubeVersion {
  major: number;
  minor: number;
}

/** The newest Kubernetes version whose audit-policy behaviour kaudit knows. */
export const NEWEST_KUBERNETES_VERSION: KubeVersion = { major: 1, minor: 36 };
/** v1 of audit.k8s.io appeared in 1.12; older servers are out of scope. */
export const OLDEST_KUBERNETES_VERSION: KubeVersion = { major: 1, minor: 12 };

/** Parses `1.36`, `v1.36` or `1.36.2` (the patch is ignored). */
export function parseKubeVersion(text: string): KubeVersion {
  const m = /^v?(\d+)\.(\d+)(?:\.\d+)?$/.exec(text.trim());
  const major = Number(m?.[1]);
  const minor = Number(m?.[2]);
  if (!m || major !== 1) {
    throw new UserError(
      'KAUDIT_BAD_KUBERNETES_VERSION',
      `--kubernetes-version ${JSON.stringify(text)} is not a version like 1.36`,
      {
        hint: `use a version between ${formatKubeVersion(OLDEST_KUBERNETES_VERSION)} and ${formatKubeVersion(NEWEST_KUBERNETES_VERSION)}`,
      },
    );
  }
  const v = { major, minor };
  if (
    compareKubeVersion(v, OLDEST_KUBERNETES_VERSION) < 0 ||
    compareKubeVersion(v, NEWEST_KUBERNETES_VERSION) > 0
  ) {
    throw new UserError(
      'KAUDIT_BAD_KUBERNETES_VERSION',
      `--kubernetes-version ${text} is outside the versions kaudit knows`,
      {
        hint: `use a version between ${formatKubeVersion(OLDEST_KUBERNETES_VERSION)} and ${formatKubeVersion(NEWEST_KUBERNETES_VERSION)}`,
      },
    );
  }
  return v;
}

export function formatKubeVersion(v: KubeVersion): string {
  return `${v.major}.${v.minor}`;
}

export function compareKubeVersion(a: KubeVersion, b: KubeVersion): number {
  return a.major - b.major || a.minor - b.minor;
}

/** Version-dependent behaviour of kube-apiserver's policy loader and checker. */
export interface PolicyFeatures {
  /** 1.36: `group: "*"` in resources[] matches every API group and passes validation. */
  groupWildcard: boolean;
  /** 1.24: audit.k8s.io/v1alpha1 and v1beta1 were removed; only v1 loads. */
  v1Only: boolean;
  /** 1.23: omitManagedFields on the policy and on rules. */
  omitManagedFields: boolean;
}

export function policyFeatures(v: KubeVersion = NEWEST_KUBERNETES_VERSION): PolicyFeatures {
  const atLeast = (minor: number) => compareKubeVersion(v, { major: 1, minor }) >= 0;
  return { groupWildcard: atLeast(36), v1Only: atLeast(24), omitManagedFields: atLeast(23) };
}
