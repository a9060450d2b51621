import type { Preset } from './preset.js';

/** The smallest useful policy: who did what, when, and with what result, for every request. */
export const minimal: Preset = {
  name: 'minimal',
  description: 'Minimal audit policy: metadata of every request except health checks, one event per request.',
  omitStages: ['RequestReceived'],
  rules: [
    {
      comment: 'Health and readiness probes are not activity.',
      rule: { level: 'None', nonResourceURLs: ['/healthz*', '/livez*', '/readyz*'] },
    },
    {
      comment: 'Everything else: metadata only, no bodies, so no secret ever reaches the log.',
      rule: { level: 'Metadata' },
    },
  ],
};
