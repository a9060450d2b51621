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
