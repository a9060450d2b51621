/**
 * Risky permissions: the privilege-escalation and takeover paths of rbac-police's policy library
 * (PaloAltoNetworks/rbac-police lib/*.rego) and KubiScan's risky roles (cyberark/KubiScan
 * risky_roles.yaml), written as questions to the authorizer instead of patterns over rule text:
 * "may this subject do all of these requests?". Asking the authorizer makes wildcards, `*\/sub`
 * forms, aggregated roles and group bindings count exactly as kube-apiserver counts them.
 * A probe with no name is only allowed by a rule without resourceNames (an unrestricted grant).
 */
import type { AuthzRequest } from './evaluation.js';

export type RiskSeverity = 'critical' | 'high' | 'medium' | 'low';

export interface Probe {
  verb: string;
  apiGroup: string;
  resource: string;
  subresource?: string;
  name?: string;
}

/** Where the permission must hold: cluster-wide, in kube-system, or in any namespace. */
export type RiskScope = 'cluster' | 'privileged-namespace' | 'any-namespace';

export interface RiskPolicy {
  id: string;
  severity: RiskSeverity;
  title: string;
  scope: RiskScope;
  /** Every group must be allowed (AND); within a group one probe is enough (OR). */
  requires: Probe[][];
  /** Where the idea comes from. */
  source: string;
}

/** rbac-police builtins.rego privileged_namespaces. */
export const PRIVILEGED_NAMESPACES = ['kube-system'];

// A verb, group and resource no real request uses: only `*` in a rule allows it.
const ANY = 'kaudit-probe-any';

const p = (verb: string, apiGroup: string, resource: string, extra: Partial<Probe> = {}): Probe => ({
  verb,
  apiGroup,
  resource,
  ...extra,
});
const writes = (apiGroup: string, resource: string, extra: Partial<Probe> = {}) =>
  ['update', 'patch'].map((v) => p(v, apiGroup, resource, extra));
const WORKLOADS: [string, string][] = [
  ['apps', 'deployments'],
  ['apps', 'daemonsets'],
  ['apps', 'statefulsets'],
  ['apps', 'replicasets'],
  ['batch', 'jobs'],
  ['batch', 'cronjobs'],
  ['', 'replicationcontrollers'],
];
const createWorkload = [
  p('create', '', 'pods'),
  ...WORKLOADS.flatMap(([g, r]) => [p('create', g, r), ...writes(g, r)]),
];
const RBAC = 'rbac.authorization.k8s.io';

export const RISK_POLICIES: readonly RiskPolicy[] = [
  {
    id: 'cluster-admin',
    severity: 'critical',
    title: 'Every verb on every resource cluster-wide (cluster-admin equivalent)',
    scope: 'cluster',
    requires: [[p(ANY, ANY, ANY)]],
    source: 'rbac-police cluster_admin.rego; KubiScan risky-any-verb',
  },
  {
    id: 'secrets-read-cluster-wide',
    severity: 'critical',
    title: 'Read every secret in the cluster',
    scope: 'cluster',
    requires: [[p('list', '', 'secrets'), p('get', '', 'secrets'), p('watch', '', 'secrets')]],
    source: 'KubiScan risky-list-secrets / risky-get-secrets; rbac-police retrieve_token_secrets.rego',
  },
  {
    id: 'retrieve-token-secrets',
    severity: 'critical',
    title: 'Read secrets (service account tokens) in kube-system',
    scope: 'privileged-namespace',
    requires: [[p('list', '', 'secrets'), p('get', '', 'secrets'), p('watch', '', 'secrets')]],
    source: 'rbac-police retrieve_token_secrets.rego',
  },
  {
    id: 'issue-token-secrets',
    severity: 'critical',
    title: 'Create or modify secrets in kube-system (mint a service account token secret)',
    scope: 'privileged-namespace',
    requires: [[p('create', '', 'secrets'), ...writes('', 'secrets')]],
    source: 'rbac-police issue_token_secrets.rego',
  },
  {
    id: 'token-request',
    severity: 'critical',
    title: 'Request tokens for service accounts in kube-system (serviceaccounts/token)',
    scope: 'privileged-namespace',
    requires: [[p('create', '', 'serviceaccounts', { subresource: 'token' })]],
    source: 'rbac-police token_request.rego',
  },
  {
    id: 'assign-sa',
    severity: 'critical',
    title: 'Create pods or pod controllers in kube-system (run as a powerful service account)',
    scope: 'privileged-namespace',
    requires: [createWorkload],
    source: 'rbac-police assign_sa.rego; KubiScan risky-create-pod',
  },
  {
    id: 'bind-roles',
    severity: 'critical',
    title: 'Create bindings to any role (bind): grant oneself any permission',
    scope: 'cluster',
    requires: [
      [
        p('create', RBAC, 'rolebindings'),
        p('create', RBAC, 'clusterrolebindings'),
        ...writes(RBAC, 'rolebindings'),
        ...writes(RBAC, 'clusterrolebindings'),
      ],
      [p('bind', RBAC, 'clusterroles'), p('bind', RBAC, 'roles')],
    ],
    source:
      'rbac-police bind_roles.rego; KubiScan risky-create-rolebinding-clusterrole (kube-apiserver checks `bind` on the role: pkg/registry/rbac/rolebinding/policybased)',
  },
  {
    id: 'escalate-roles',
    severity: 'critical',
    title: 'Edit roles beyond one’s own permissions (escalate)',
    scope: 'cluster',
    requires: [
      [p('escalate', RBAC, 'clusterroles'), p('escalate', RBAC, 'roles')],
      [
        p('create', RBAC, 'clusterroles'),
        p('create', RBAC, 'roles'),
        ...writes(RBAC, 'clusterroles'),
        ...writes(RBAC, 'roles'),
      ],
    ],
    source: 'rbac-police escalate_roles.rego; KubiScan risky-any-verb-clusterroles',
  },
  {
    id: 'impersonate',
    severity: 'critical',
    title: 'Impersonate users, groups (system:masters) or service accounts',
    scope: 'cluster',
    requires: [
      [
        p('impersonate', '', 'users'),
        p('impersonate', '', 'groups', { name: 'system:masters' }),
        p('impersonate', '', 'serviceaccounts'),
        p('impersonate', 'authentication.k8s.io', 'userextras', { subresource: 'scopes' }),
      ],
    ],
    source: 'rbac-police impersonate.rego; KubiScan risky-impersonate-groups',
  },
  {
    id: 'approve-csrs',
    severity: 'critical',
    title: 'Create and approve certificate signing requests for the kube-apiserver client signer',
    scope: 'cluster',
    requires: [
      [p('create', 'certificates.k8s.io', 'certificatesigningrequests')],
      writes('certificates.k8s.io', 'certificatesigningrequests', { subresource: 'approval' }),
      [
        p('approve', 'certificates.k8s.io', 'signers', { name: 'kubernetes.io/kube-apiserver-client' }),
        p('approve', 'certificates.k8s.io', 'signers', { name: 'kubernetes.io/*' }),
      ],
    ],
    source: 'rbac-police approve_csrs.rego',
  },
  {
    id: 'eks-modify-aws-auth',
    severity: 'critical',
    title: 'Modify the aws-auth ConfigMap (EKS identity mapping)',
    scope: 'privileged-namespace',
    requires: [writes('', 'configmaps', { name: 'aws-auth' })],
    source: 'rbac-police eks_modify_aws_auth.rego',
  },
  {
    id: 'delete-anything',
    severity: 'critical',
    title: 'Delete any resource cluster-wide',
    scope: 'cluster',
    requires: [[p('delete', ANY, ANY), p('deletecollection', ANY, ANY)]],
    source: 'KubiScan risky-any-resource-delete',
  },
  {
    id: 'control-webhooks',
    severity: 'high',
    title: 'Create or modify admission webhooks (intercept or alter every request)',
    scope: 'cluster',
    requires: [
      [
        p('create', 'admissionregistration.k8s.io', 'mutatingwebhookconfigurations'),
        p('create', 'admissionregistration.k8s.io', 'validatingwebhookconfigurations'),
        ...writes('admissionregistration.k8s.io', 'mutatingwebhookconfigurations'),
        ...writes('admissionregistration.k8s.io', 'validatingwebhookconfigurations'),
      ],
    ],
    source: 'rbac-police control_webhooks.rego',
  },
  {
    id: 'nodes-proxy',
    severity: 'high',
    title: 'Use nodes/proxy (the kubelet API: run commands in any pod on the node)',
    scope: 'cluster',
    requires: [
      [p('create', '', 'nodes', { subresource: 'proxy' }), p('get', '', 'nodes', { subresource: 'proxy' })],
    ],
    source: 'rbac-police nodes_proxy.rego',
  },
  {
    id: 'pods-exec-privileged',
    severity: 'high',
    title: 'Exec into or attach to pods in kube-system',
    scope: 'privileged-namespace',
    requires: [
      [
        p('create', '', 'pods', { subresource: 'exec' }),
        p('create', '', 'pods', { subresource: 'attach' }),
        p('get', '', 'pods', { subresource: 'exec' }),
      ],
    ],
    source: 'rbac-police pods_exec.rego',
  },
  {
    id: 'modify-pods-privileged',
    severity: 'high',
    title: 'Modify pods in kube-system (swap a container image)',
    scope: 'privileged-namespace',
    requires: [writes('', 'pods')],
    source: 'rbac-police modify_pods.rego',
  },
  {
    id: 'pods-ephemeral-containers',
    severity: 'high',
    title: 'Add ephemeral containers to pods (run code in an existing pod)',
    scope: 'any-namespace',
    requires: [writes('', 'pods', { subresource: 'ephemeralcontainers' })],
    source: 'rbac-police pods_ephemeral_ctrs.rego',
  },
  {
    id: 'steal-pods',
    severity: 'high',
    title:
      'Evict pods in kube-system and make nodes unschedulable (move powerful pods onto a compromised node)',
    scope: 'privileged-namespace',
    requires: [
      [p('delete', '', 'pods'), p('create', '', 'pods', { subresource: 'eviction' })],
      [...writes('', 'nodes'), ...writes('', 'nodes', { subresource: 'status' })],
    ],
    source: 'rbac-police steal_pods.rego',
  },
  {
    id: 'pods-exec-attach',
    severity: 'high',
    title: 'Exec into or attach to pods',
    scope: 'any-namespace',
    requires: [
      [p('create', '', 'pods', { subresource: 'exec' }), p('create', '', 'pods', { subresource: 'attach' })],
      [p('get', '', 'pods')],
    ],
    source: 'KubiScan risky-exec-pods / risky-attach-pods',
  },
  {
    id: 'create-workloads',
    severity: 'high',
    title: 'Create pods or pod controllers (run arbitrary containers)',
    scope: 'any-namespace',
    requires: [createWorkload],
    source: 'KubiScan risky-create-pod / risky-create-deployments ...',
  },
  {
    id: 'rce-weak-namespace',
    severity: 'medium',
    title: 'Modify pods or exec into pods (run code in existing pods)',
    scope: 'any-namespace',
    requires: [[...writes('', 'pods'), p('create', '', 'pods', { subresource: 'exec' })]],
    source: 'rbac-police rce_weak_ns.rego',
  },
  {
    id: 'list-secrets',
    severity: 'medium',
    title: 'List secrets in a namespace',
    scope: 'any-namespace',
    requires: [[p('list', '', 'secrets'), p('watch', '', 'secrets')]],
    source: 'rbac-police list_secrets.rego; KubiScan risky-list-secrets',
  },
  {
    id: 'modify-service-status',
    severity: 'medium',
    title: 'Modify services/status (CVE-2020-8554: intercept traffic via LoadBalancer IPs)',
    scope: 'any-namespace',
    requires: [writes('', 'services', { subresource: 'status' })],
    source: 'rbac-police modify_service_status_cve_2020_8554.rego',
  },
  {
    id: 'obtain-token-weak-namespace',
    severity: 'low',
    title: 'Read secrets, request service account tokens or run pods in a namespace (obtain its tokens)',
    scope: 'any-namespace',
    requires: [
      [
        p('get', '', 'secrets'),
        p('list', '', 'secrets'),
        p('create', '', 'serviceaccounts', { subresource: 'token' }),
        p('create', '', 'pods'),
      ],
    ],
    source: 'rbac-police obtain_token_weak_ns.rego',
  },
  {
    id: 'modify-node-status',
    severity: 'low',
    title: 'Modify nodes/status (lie about node capacity and labels)',
    scope: 'cluster',
    requires: [writes('', 'nodes', { subresource: 'status' })],
    source: 'rbac-police modify_node_status.rego',
  },
  {
    id: 'modify-pod-status',
    severity: 'low',
    title: 'Modify pods/status (hide or fake pod state)',
    scope: 'any-namespace',
    requires: [writes('', 'pods', { subresource: 'status' })],
    source: 'rbac-police modify_pod_status.rego',
  },
  {
    id: 'add-to-rolebindings',
    severity: 'low',
    title: 'Get and patch role bindings (add subjects to existing bindings)',
    scope: 'any-namespace',
    requires: [[p('get', RBAC, 'rolebindings')], [p('patch', RBAC, 'rolebindings')]],
    source: 'KubiScan risky-add-rolebinding',
  },
];

export function probeRequest(
  probe: Probe,
  user: string,
  groups: readonly string[],
  namespace: string,
): AuthzRequest {
  return {
    user,
    groups,
    verb: probe.verb,
    resourceRequest: true,
    apiGroup: probe.apiGroup,
    resource: probe.resource,
    subresource: probe.subresource ?? '',
    namespace,
    name: probe.name ?? '',
    path: '',
  };
}

/** Whether a logged request used the permission a probe asks about (its name aside: a named use of an unrestricted grant still counts). */
export function requestUsesProbe(req: AuthzRequest, probe: Probe): boolean {
  const matches = (want: string, got: string) => want === ANY || want === got;
  return (
    req.resourceRequest &&
    matches(probe.verb, req.verb) &&
    matches(probe.apiGroup, req.apiGroup) &&
    matches(probe.resource, req.resource) &&
    (probe.subresource ?? '') === req.subresource
  );
}
