import type { Preset } from './preset.js';

/**
 * The example policy of the page kaudit grew from (Datadog's Kubernetes audit logs integration page,
 * Japanese edition), as data. One correction: the page nests `verbs` inside the pods `resources` entry,
 * where kube-apiserver drops it, so the rule logged every verb on pods; here `verbs` sits on the rule,
 * as the page's prose (create, patch, update, delete) intends.
 */
export const seed: Preset = {
  name: 'seed',
  description:
    "The example policy of Datadog's Kubernetes audit logs page, with its misplaced pods `verbs` moved onto the rule\n" +
    '(kube-apiserver ignores a `verbs` field inside a resources entry).',
  rules: [
    {
      comment: 'Do not log health checks, logs, metrics, swagger and version requests.',
      rule: { level: 'None', nonResourceURLs: ['/healthz*', '/logs', '/metrics', '/swagger*', '/version'] },
    },
    {
      comment: 'Token reviews carry tokens in their spec and status: metadata only.',
      rule: {
        level: 'Metadata',
        omitStages: ['RequestReceived'],
        resources: [{ group: 'authentication.k8s.io', resources: ['tokenreviews'] }],
      },
    },
    {
      comment: 'Extended auditing of delegated authorization checks.',
      rule: {
        level: 'RequestResponse',
        omitStages: ['RequestReceived'],
        resources: [{ group: 'authorization.k8s.io', resources: ['subjectaccessreviews'] }],
      },
    },
    {
      comment: 'Pod changes in full. (The page put `verbs` inside the resources entry, where it is ignored.)',
      rule: {
        level: 'RequestResponse',
        omitStages: ['RequestReceived'],
        verbs: ['create', 'patch', 'update', 'delete'],
        resources: [{ group: '', resources: ['pods'] }],
      },
    },
    {
      comment: 'Everything else at Metadata.',
      rule: { level: 'Metadata', omitStages: ['RequestReceived'] },
    },
  ],
};
