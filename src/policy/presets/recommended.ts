import { ANONYMOUS_PROBE_URLS, EVENT_RESOURCES, type Preset } from './preset.js';

const READS = ['get', 'list', 'watch'];

/**
 * kaudit's own policy: a full trail of who did what, bodies of writes, no secrets in the log, and none of
 * the high-volume machine chatter that makes audit logs expensive. docs/policy.md explains each rule.
 */
export const recommended: Preset = {
  name: 'recommended',
  description:
    "kaudit's recommended audit policy: every request is recorded with its metadata, writes keep their request\n" +
    'bodies, RBAC and admission changes keep their responses, secret-like resources never have a body logged,\n' +
    'and high-volume low-value traffic (health checks, events, leases, kube-proxy and kubelet reads) is dropped.',
  omitStages: ['RequestReceived'],
  omitManagedFields: true,
  rules: [
    {
      comment:
        'Anonymous requests to discovery endpoints are probes from outside (MITRE ATT&CK T1613): keep them, before discovery is dropped below. Health checks stay dropped: load balancers probe them anonymously all day.',
      rule: {
        level: 'Metadata',
        userGroups: ['system:unauthenticated'],
        nonResourceURLs: ANONYMOUS_PROBE_URLS,
      },
    },
    {
      comment:
        'Health, readiness, metrics, version and discovery endpoints: polled constantly, never a security event.',
      rule: {
        level: 'None',
        nonResourceURLs: [
          '/healthz*',
          '/livez*',
          '/readyz*',
          '/metrics',
          '/version',
          '/openapi*',
          '/api',
          '/api/*',
          '/apis',
          '/apis/*',
        ],
      },
    },
    {
      comment:
        'Deleting events hides what happened (MITRE ATT&CK T1070): keep who deleted them, before events are dropped below.',
      rule: {
        level: 'Metadata',
        verbs: ['delete', 'deletecollection'],
        resources: EVENT_RESOURCES,
      },
    },
    {
      comment: 'Events are written by every controller and kubelet; they are their own log.',
      rule: {
        level: 'None',
        resources: [
          { group: '', resources: ['events'] },
          { group: 'events.k8s.io', resources: ['events'] },
        ],
      },
    },
    {
      comment: 'Node heartbeats: kubelets renew their lease every 10 seconds.',
      rule: {
        level: 'None',
        userGroups: ['system:nodes'],
        verbs: ['get', 'update'],
        resources: [{ group: 'coordination.k8s.io', resources: ['leases'] }],
      },
    },
    {
      comment: 'Leader election of the control plane renews a lease every few seconds.',
      rule: {
        level: 'None',
        users: ['system:kube-controller-manager', 'system:kube-scheduler', 'system:cloud-controller-manager'],
        verbs: ['get', 'update'],
        resources: [{ group: 'coordination.k8s.io', resources: ['leases'] }],
      },
    },
    {
      comment: 'kube-proxy watches every Service and EndpointSlice on every node.',
      rule: {
        level: 'None',
        users: ['system:kube-proxy'],
        verbs: READS,
        resources: [
          { group: '', resources: ['services', 'endpoints'] },
          { group: 'discovery.k8s.io', resources: ['endpointslices'] },
        ],
      },
    },
    {
      comment: 'Kubelets read their own Node object all the time.',
      rule: {
        level: 'None',
        userGroups: ['system:nodes'],
        verbs: ['get'],
        resources: [{ group: '', resources: ['nodes', 'nodes/status'] }],
      },
    },
    {
      comment:
        'Secrets, ConfigMaps, token requests and token reviews carry credentials in their bodies: metadata only,\n' +
        'for every verb. This rule must stay above every rule that logs bodies.',
      rule: {
        level: 'Metadata',
        resources: [
          { group: '', resources: ['secrets', 'configmaps', 'serviceaccounts/token'] },
          { group: 'authentication.k8s.io', resources: ['tokenreviews'] },
        ],
      },
    },
    {
      comment: 'Reads have no request body and their responses can be huge (lists): metadata only.',
      rule: { level: 'Metadata', verbs: READS },
    },
    {
      comment: 'Changes to who may do what, and to admission control: the full change and its result.',
      rule: {
        level: 'RequestResponse',
        verbs: ['create', 'update', 'patch', 'delete', 'deletecollection'],
        resources: [
          { group: 'rbac.authorization.k8s.io' },
          { group: 'admissionregistration.k8s.io' },
          { group: 'apiextensions.k8s.io', resources: ['customresourcedefinitions'] },
        ],
      },
    },
    {
      comment: 'Every other write: the request body shows what was changed (managedFields are omitted).',
      rule: { level: 'Request', verbs: ['create', 'update', 'patch', 'delete', 'deletecollection'] },
    },
    {
      comment: 'Anything else (exec, attach, port-forward, proxy, other verbs): who, what and the outcome.',
      rule: { level: 'Metadata' },
    },
  ],
};
