import type { GroupResources } from '../types.js';
import { ANONYMOUS_PROBE_URLS, EVENT_RESOURCES, type Preset } from './preset.js';

// The API groups the GCE/GKE master policy names as "known APIs".
const KNOWN_GROUPS = [
  '',
  'admissionregistration.k8s.io',
  'apiextensions.k8s.io',
  'apiregistration.k8s.io',
  'apps',
  'authentication.k8s.io',
  'authorization.k8s.io',
  'autoscaling',
  'batch',
  'certificates.k8s.io',
  'extensions',
  'metrics.k8s.io',
  'networking.k8s.io',
  'node.k8s.io',
  'policy',
  'rbac.authorization.k8s.io',
  'scheduling.k8s.io',
  'storage.k8s.io',
];
const knownGroups = (): GroupResources[] => KNOWN_GROUPS.map((group) => ({ group }));
const OMIT_RECEIVED = ['RequestReceived'];

/**
 * Modeled on the audit policy kube-up's configure-helper.sh renders for GCE masters
 * (test/fixtures/third-party/policies/gce-create-master-audit-policy.rendered.yaml), which GKE's policy follows.
 */
export const gke: Preset = {
  name: 'gke',
  description:
    'Audit policy modeled on the one Kubernetes renders for GCE masters (and GKE follows): drops known\n' +
    'high-volume system traffic, keeps secret-like resources at Metadata, reads at Request, and logs the\n' +
    'known API groups at RequestResponse.',
  rules: [
    {
      comment: 'kube-proxy watching Services and Endpoints: high volume, low risk.',
      rule: {
        level: 'None',
        users: ['system:kube-proxy'],
        verbs: ['watch'],
        resources: [{ group: '', resources: ['endpoints', 'services', 'services/status'] }],
      },
    },
    {
      comment: 'The ingress controller reading its uid ConfigMap over the insecure port.',
      rule: {
        level: 'None',
        users: ['system:unsecured'],
        namespaces: ['kube-system'],
        verbs: ['get'],
        resources: [{ group: '', resources: ['configmaps'] }],
      },
    },
    {
      comment: 'Kubelets (legacy identity) reading their Node.',
      rule: {
        level: 'None',
        users: ['kubelet'],
        verbs: ['get'],
        resources: [{ group: '', resources: ['nodes', 'nodes/status'] }],
      },
    },
    {
      comment: 'Kubelets reading their Node.',
      rule: {
        level: 'None',
        userGroups: ['system:nodes'],
        verbs: ['get'],
        resources: [{ group: '', resources: ['nodes', 'nodes/status'] }],
      },
    },
    {
      comment: 'Control-plane leader election on Endpoints in kube-system.',
      rule: {
        level: 'None',
        users: [
          'system:kube-controller-manager',
          'system:cloud-controller-manager',
          'system:kube-scheduler',
          'system:serviceaccount:kube-system:endpoint-controller',
        ],
        verbs: ['get', 'update'],
        namespaces: ['kube-system'],
        resources: [{ group: '', resources: ['endpoints'] }],
      },
    },
    {
      comment: 'The API server reading Namespaces for its own bookkeeping.',
      rule: {
        level: 'None',
        users: ['system:apiserver'],
        verbs: ['get'],
        resources: [{ group: '', resources: ['namespaces', 'namespaces/status', 'namespaces/finalize'] }],
      },
    },
    {
      comment: 'The cluster autoscaler keeping its status in kube-system.',
      rule: {
        level: 'None',
        users: ['cluster-autoscaler'],
        verbs: ['get', 'update'],
        namespaces: ['kube-system'],
        resources: [{ group: '', resources: ['configmaps', 'endpoints'] }],
      },
    },
    {
      comment: 'Horizontal pod autoscaling reading metrics.',
      rule: {
        level: 'None',
        users: ['system:kube-controller-manager', 'system:cloud-controller-manager'],
        verbs: ['get', 'list'],
        resources: [{ group: 'metrics.k8s.io' }],
      },
    },
    {
      comment:
        'Anonymous requests to discovery endpoints are probes from outside (MITRE ATT&CK T1613): keep them, before read-only endpoints are dropped below (added by kaudit). Health checks stay dropped: load balancers probe them anonymously all day.',
      rule: {
        level: 'Metadata',
        omitStages: OMIT_RECEIVED,
        userGroups: ['system:unauthenticated'],
        nonResourceURLs: ANONYMOUS_PROBE_URLS,
      },
    },
    {
      comment: 'Read-only endpoints.',
      rule: { level: 'None', nonResourceURLs: ['/healthz*', '/version', '/swagger*'] },
    },
    {
      comment:
        'Deleting events hides what happened (MITRE ATT&CK T1070): keep who deleted them, before events are dropped below (added by kaudit; the GCE policy drops them all).',
      rule: {
        level: 'Metadata',
        omitStages: OMIT_RECEIVED,
        verbs: ['delete', 'deletecollection'],
        resources: EVENT_RESOURCES,
      },
    },
    {
      comment: 'Events: too many, and their own record.',
      rule: { level: 'None', resources: [{ group: '', resources: ['events'] }] },
    },
    {
      comment: 'Status updates from node agents: the request is enough, responses are large.',
      rule: {
        level: 'Request',
        users: [
          'kubelet',
          'system:node-problem-detector',
          'system:serviceaccount:kube-system:node-problem-detector',
        ],
        verbs: ['update', 'patch'],
        resources: [{ group: '', resources: ['nodes/status', 'pods/status'] }],
        omitStages: OMIT_RECEIVED,
      },
    },
    {
      comment: 'Status updates from nodes.',
      rule: {
        level: 'Request',
        userGroups: ['system:nodes'],
        verbs: ['update', 'patch'],
        resources: [{ group: '', resources: ['nodes/status', 'pods/status'] }],
        omitStages: OMIT_RECEIVED,
      },
    },
    {
      comment: 'Namespace deletion removes everything in it: keep the request, not the huge response.',
      rule: {
        level: 'Request',
        users: ['system:serviceaccount:kube-system:namespace-controller'],
        verbs: ['deletecollection'],
        omitStages: OMIT_RECEIVED,
      },
    },
    {
      comment: 'Secret-like resources: metadata only.',
      rule: {
        level: 'Metadata',
        resources: [
          { group: '', resources: ['secrets', 'configmaps', 'serviceaccounts/token'] },
          { group: 'authentication.k8s.io', resources: ['tokenreviews'] },
        ],
        omitStages: OMIT_RECEIVED,
      },
    },
    {
      comment: 'Reads of known APIs: the request only, responses can be large.',
      rule: {
        level: 'Request',
        verbs: ['get', 'list', 'watch'],
        resources: knownGroups(),
        omitStages: OMIT_RECEIVED,
      },
    },
    {
      comment: 'Writes to known APIs: request and response.',
      rule: { level: 'RequestResponse', resources: knownGroups(), omitStages: OMIT_RECEIVED },
    },
    {
      comment: 'Everything else (custom resources, non-resource URLs): metadata.',
      rule: { level: 'Metadata', omitStages: OMIT_RECEIVED },
    },
  ],
};
