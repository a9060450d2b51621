import type { PolicyRule } from '../types.js';

/** A rule of a generated policy, with the comment printed above it. */
export interface PresetRule {
  comment: string;
  rule: PolicyRule;
}

/** A policy kaudit can generate: data plus the comments that explain it. */
export interface Preset {
  name: string;
  /** Printed at the top of the file. */
  description: string;
  omitStages?: string[];
  omitManagedFields?: boolean;
  rules: PresetRule[];
}

/**
 * Discovery endpoints probed from outside: kept for anonymous requests (MITRE ATT&CK T1613) by the
 * presets that drop them for everyone else.
 */
export const ANONYMOUS_PROBE_URLS = [
  '/version',
  '/api',
  '/api/*',
  '/apis',
  '/apis/*',
  '/openapi*',
  '/metrics',
  '/swagger*',
];

/** Events in both API groups; their deletion is kept (ATT&CK T1070) where events are dropped. */
export const EVENT_RESOURCES = [
  { group: '', resources: ['events'] },
  { group: 'events.k8s.io', resources: ['events'] },
];
