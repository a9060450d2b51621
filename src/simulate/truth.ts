import { renameSync, writeFileSync } from 'node:fs';
import type { Subject } from './cluster.js';
import type { StepSink } from './engine.js';

/** Scenario names accepted by `--scenario`; `normal` is the background traffic. */
export const SCENARIOS = ['normal', 'denials', 'slow', 'attack', 'changes'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export const TRUTH_SCHEMA = 'kaudit.dev/simulate-truth/v1';

/** Who sent a step's requests, as the events show it. */
export interface TruthClient {
  username: string;
  userAgent: string;
  sourceIP: string;
}

/** An RBAC policy rule, as in rbac.authorization.k8s.io/v1. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** The Role (or ClusterRole) and binding that would make a denied request succeed. */
export interface RbacFix {
  role: { kind: 'Role' | 'ClusterRole'; name: string; namespace?: string; rules: PolicyRule[] };
  binding: {
    kind: 'RoleBinding' | 'ClusterRoleBinding';
    name: string;
    namespace?: string;
    subjects: Subject[];
  };
}

export interface DenialExpectation {
  kind: 'denial';
  /** `rbac`: 403 by the authorizer; `pod-security`: 403 by admission after RBAC allowed; `unauthenticated`: 401. */
  cause: 'rbac' | 'pod-security' | 'unauthenticated';
  code: 401 | 403;
  client: TruthClient;
  /** The RBAC subject to bind, absent for 401s. */
  subject?: Subject;
  verbs: string[];
  resource: string;
  /** "" for the core group. */
  apiGroup: string;
  /** Absent when the request was cluster-scoped. */
  namespace?: string;
  /** For `rbac`: the rule that fixes it. */
  fix?: RbacFix;
  /** For `pod-security`: the enforced level and what the pod violates. */
  podSecurity?: { enforce: string; violations: string[] };
  /** For `unauthenticated`: what is wrong with the credential. */
  note?: string;
}

export interface SlowExpectation {
  kind: 'slow';
  cause: 'unpaginated-list' | 'etcd-latency' | 'apf-throttling';
  /** The client responsible; absent for `etcd-latency`, which slows every writer. */
  client?: TruthClient;
  verbs: string[];
  resources: string[];
  /** Cluster-wide unless set. */
  namespace?: string;
  /** Requests slower than this many ms are the symptom (0 for throttling, which shows as 429). */
  minLatencyMs: number;
  /** HTTP code of the throttled requests. */
  code?: 429;
  advice: string;
}

export interface AttackExpectation {
  kind: 'attack';
  /** MITRE ATT&CK technique id, e.g. T1613. */
  technique: string;
  techniqueName: string;
  tactic: string;
  client: TruthClient;
  verbs: string[];
  resources: string[];
  namespaces: string[];
}

export interface ChangeExpectation {
  kind: 'change';
  client: TruthClient;
  verb: string;
  resource: string;
  apiGroup: string;
  namespace?: string;
  name: string;
  summary: string;
  /** The auditID of the request that made the change; the others are its consequences. */
  primaryAuditID?: string;
}

export type Expectation = DenialExpectation | SlowExpectation | AttackExpectation | ChangeExpectation;

export interface TruthStep {
  /** Stable id: `<scenario>/<step>`. */
  id: string;
  scenario: Exclude<ScenarioName, 'normal'>;
  title: string;
  /** stageTimestamp of the step's first and last written event (absent if none was written). */
  first?: string;
  last?: string;
  /** Every request of the step that has at least one event in the output, in output order. */
  auditIDs: string[];
  expect: Expectation;
}

export interface Truth {
  schema: typeof TRUTH_SCHEMA;
  seed: number;
  scenarios: ScenarioName[];
  start: string;
  end: string;
  events: number;
  steps: TruthStep[];
}

/** A step under construction; the engine appends auditIDs as their events are written. */
export interface StepRecord extends StepSink {
  readonly id: string;
  readonly scenario: Exclude<ScenarioName, 'normal'>;
  readonly title: string;
  expect: Expectation;
}

/** Writes the truth file atomically, so a reader never sees half of it (follow mode rewrites it). */
export function writeTruth(path: string, truth: Truth): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(truth, null, 2)}\n`);
  renameSync(tmp, path);
}
