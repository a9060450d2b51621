/** Verbs of requests for API resources. */
export const RESOURCE_VERBS = [
  'get',
  'list',
  'watch',
  'create',
  'update',
  'patch',
  'delete',
  'deletecollection',
] as const;

export const WRITE_VERBS = ['create', 'update', 'patch', 'delete', 'deletecollection'] as const;

/** Verbs kube-apiserver puts on requests: resource verbs, and lower-cased HTTP methods for non-resource URLs. */
export const REQUEST_VERBS = [...RESOURCE_VERBS, 'proxy', 'post', 'put', 'head', 'options'] as const;

/** RBAC-only verbs: authorizers check them, but no request ever carries them, so an audit rule never matches. */
export const AUTHORIZATION_ONLY_VERBS = [
  'impersonate',
  'bind',
  'escalate',
  'use',
  'approve',
  'sign',
  'attest',
] as const;

/** Built-in resources by API group (Kubernetes 1.36). Groups not listed (CRDs) are never judged. */
export const BUILTIN_RESOURCES: Readonly<Record<string, readonly string[]>> = {
  '': [
    'bindings',
    'componentstatuses',
    'configmaps',
    'endpoints',
    'events',
    'limitranges',
    'namespaces',
    'nodes',
    'persistentvolumeclaims',
    'persistentvolumes',
    'pods',
    'podtemplates',
    'replicationcontrollers',
    'resourcequotas',
    'secrets',
    'serviceaccounts',
    'services',
  ],
  'admissionregistration.k8s.io': [
    'mutatingwebhookconfigurations',
    'validatingwebhookconfigurations',
    'validatingadmissionpolicies',
    'validatingadmissionpolicybindings',
    'mutatingadmissionpolicies',
    'mutatingadmissionpolicybindings',
  ],
  'apiextensions.k8s.io': ['customresourcedefinitions'],
  'apiregistration.k8s.io': ['apiservices'],
  apps: ['controllerrevisions', 'daemonsets', 'deployments', 'replicasets', 'statefulsets'],
  'authentication.k8s.io': ['tokenreviews', 'selfsubjectreviews'],
  'authorization.k8s.io': [
    'localsubjectaccessreviews',
    'selfsubjectaccessreviews',
    'selfsubjectrulesreviews',
    'subjectaccessreviews',
  ],
  autoscaling: ['horizontalpodautoscalers'],
  batch: ['cronjobs', 'jobs'],
  'certificates.k8s.io': ['certificatesigningrequests', 'clustertrustbundles', 'podcertificaterequests'],
  'coordination.k8s.io': ['leases', 'leasecandidates'],
  'discovery.k8s.io': ['endpointslices'],
  'events.k8s.io': ['events'],
  'flowcontrol.apiserver.k8s.io': ['flowschemas', 'prioritylevelconfigurations'],
  'networking.k8s.io': ['ingressclasses', 'ingresses', 'networkpolicies', 'ipaddresses', 'servicecidrs'],
  'node.k8s.io': ['runtimeclasses'],
  policy: ['poddisruptionbudgets', 'evictions'],
  'rbac.authorization.k8s.io': ['clusterrolebindings', 'clusterroles', 'rolebindings', 'roles'],
  'resource.k8s.io': ['deviceclasses', 'resourceclaims', 'resourceclaimtemplates', 'resourceslices'],
  'scheduling.k8s.io': ['priorityclasses'],
  'storage.k8s.io': [
    'csidrivers',
    'csinodes',
    'csistoragecapacities',
    'storageclasses',
    'volumeattachments',
    'volumeattributesclasses',
  ],
  'metrics.k8s.io': ['nodes', 'pods'],
};

export const BUILTIN_SUBRESOURCES = [
  'status',
  'scale',
  'log',
  'exec',
  'attach',
  'portforward',
  'proxy',
  'binding',
  'eviction',
  'ephemeralcontainers',
  'resize',
  'token',
  'finalize',
  'approval',
] as const;

/** Resources (and subresources) that only serve create, so they are never listed or watched. */
export const CREATE_ONLY_RESOURCES = new Set([
  'tokenreviews',
  'selfsubjectreviews',
  'subjectaccessreviews',
  'localsubjectaccessreviews',
  'selfsubjectaccessreviews',
  'selfsubjectrulesreviews',
  'bindings',
  'pods/binding',
  'pods/eviction',
  'serviceaccounts/token',
]);

/** Resources whose bodies hold credentials or secret data. */
export const SENSITIVE_RESOURCES: readonly {
  group: string;
  resource: string;
  subresource: string;
  label: string;
  /** The verbs the resource serves; undefined for all. */
  verbs?: readonly string[];
}[] = [
  { group: '', resource: 'secrets', subresource: '', label: 'secrets' },
  { group: '', resource: 'configmaps', subresource: '', label: 'configmaps' },
  {
    group: 'authentication.k8s.io',
    resource: 'tokenreviews',
    subresource: '',
    label: 'tokenreviews',
    verbs: ['create'],
  },
  {
    group: '',
    resource: 'serviceaccounts',
    subresource: 'token',
    label: 'serviceaccounts/token',
    verbs: ['create'],
  },
];

/** Edit distance counting a swap of neighbours as one edit ("lsit" is one away from "list"), for "did you mean". */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => d[i]?.[j] ?? 0;
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] ?? [];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1);
      row[j] = best;
    }
  }
  return at(a.length, b.length);
}

/** The closest candidate within a small distance, or undefined. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const max = word.length <= 4 ? 1 : 2;
  let best: string | undefined;
  let bestDist = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c);
    if (d < bestDist && d <= max) {
      best = c;
      bestDist = d;
    }
  }
  return best;
}
