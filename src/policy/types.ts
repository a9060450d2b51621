import type { Level, Stage } from '../model/event.js';

/** One `resources[]` entry of a rule (audit.k8s.io/v1 GroupResources). */
export interface GroupResources {
  /** `""` is the core group; `"*"` any group (Kubernetes 1.36+). */
  group?: string;
  resources?: string[];
  resourceNames?: string[];
}

/** audit.k8s.io/v1 PolicyRule. `level` stays a string so an invalid value can be reported, not lost. */
export interface PolicyRule {
  level: string;
  users?: string[];
  userGroups?: string[];
  verbs?: string[];
  resources?: GroupResources[];
  namespaces?: string[];
  nonResourceURLs?: string[];
  omitStages?: string[];
  omitManagedFields?: boolean;
}

/** audit.k8s.io/v1 Policy, as decoded from a file. */
export interface Policy {
  apiVersion?: string;
  kind?: string;
  metadata?: Record<string, unknown>;
  rules: PolicyRule[];
  omitStages?: string[];
  omitManagedFields?: boolean;
}

/** The request attributes kube-apiserver hands to the policy checker (authorizer.Attributes). */
export interface RequestAttributes {
  user: { username: string; groups: string[] } | null;
  verb: string;
  namespace: string;
  apiGroup: string;
  apiVersion: string;
  resource: string;
  subresource: string;
  name: string;
  resourceRequest: boolean;
  path: string;
}

/** What the checker decides for one request (kube-apiserver RequestAuditConfig plus the rule index). */
export interface AuditDecision {
  level: Level;
  omitStages: Stage[];
  omitManagedFields: boolean;
  /** Index of the first matching rule, or null when none matched. */
  rule: number | null;
}
