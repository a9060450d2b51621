/** A detection rule after loading: the YAML format (docs/detect.md) checked and normalised. */
import type { Condition } from './condition.js';

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const RULE_KINDS = ['match', 'threshold', 'new_term', 'sequence'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

export type RuleSource = 'builtin' | 'sigma' | 'user';

/** Requests a rule leaves alone; users extend these for every rule in their config. */
export interface Allowlist {
  /** The subject (impersonated user, else user) or the authenticated user. */
  subjects: string[];
  groups: string[];
  namespaces: string[];
  /** Image references; a trailing `/*` or `:*` makes a prefix (a registry, a repository). */
  images: string[];
  /** User-agent prefixes. */
  userAgents: string[];
  sourceCidrs: string[];
}

export const ALLOW_KINDS = [
  'subjects',
  'groups',
  'namespaces',
  'images',
  'userAgents',
  'sourceCidrs',
] as const;

export function emptyAllowlist(): Allowlist {
  return { subjects: [], groups: [], namespaces: [], images: [], userAgents: [], sourceCidrs: [] };
}

export interface Threshold {
  groupBy: string[][];
  windowMs: number;
  count: number;
  /** Count distinct values of this field instead of events. */
  distinct?: string[];
}

export interface NewTerm {
  key: string[][];
  value: string[][];
  learnMs: number;
}

export interface Sequence {
  by: string[][];
  windowMs: number;
  steps: Condition[];
  /** false: the steps may happen in any order within the window (Sigma's `temporal`). */
  ordered: boolean;
}

export interface Rule {
  id: string;
  title: string;
  description: string;
  severity: Severity;
  tactic: string[];
  technique: string[];
  tags: string[];
  references: string[];
  falsePositives: string[];
  equivalents: string[];
  kind: RuleKind;
  /** Which events the rule looks at (every kind but sequence). */
  match?: Condition;
  threshold?: Threshold;
  newTerm?: NewTerm;
  sequence?: Sequence;
  allow: Allowlist;
  /** `{field.path}` placeholders are filled from the event that raised the alert. */
  message: string;
  source: RuleSource;
  /** Where it was loaded from, for messages. */
  file?: string;
}

/** `30s`, `10m`, `1h`, `7d` (also combined, `1h30m`) in ms; undefined when not a duration. */
export function parseDuration(text: string): number | undefined {
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * (unit[m[2] as string] as number);
    matched = re.lastIndex;
  }
  return matched === text.length && text !== '' && total > 0 ? total : undefined;
}
