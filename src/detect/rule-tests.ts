/**
 * Rule tests: events that must raise an alert of a rule (positive) and near misses that must not
 * (negative), in YAML (docs/detect.md). Test events may leave out what every event has; the
 * defaults below fill it, so a test shows only what it is about.
 */
import { readFileSync } from 'node:fs';
import type { Diagnostic } from '../model/errors.js';
import type { AuditEvent } from '../model/event.js';
import { readYaml } from '../model/yaml-input.js';
import { type Alert, DetectionEngine } from './engine.js';
import type { Rule } from './rule.js';

export interface RuleTestCase {
  name: string;
  events: Record<string, unknown>[];
}

export interface RuleTestFile {
  positive: RuleTestCase[];
  negative: RuleTestCase[];
}

export interface RuleTestResult {
  rule: string;
  kind: 'positive' | 'negative';
  name: string;
  passed: boolean;
  alerts: Alert[];
}

const BASE_TIME_MS = Date.parse('2026-01-15T09:00:00Z');

/** A full audit event from a test event: the defaults, then what the test gives. */
export function completeTestEvent(e: Record<string, unknown>, index: number, prefix = 'test'): AuditEvent {
  const time = new Date(BASE_TIME_MS + index * 1000).toISOString();
  const status = (e.responseStatus as { code?: number } | undefined) ?? { code: 200 };
  const out: Record<string, unknown> = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: `${prefix}-${String(index).padStart(4, '0')}`,
    stage: 'ResponseComplete',
    requestURI: '/',
    requestReceivedTimestamp: time,
    stageTimestamp: time,
    user: { username: 'test-user' },
    sourceIPs: ['10.0.0.1'],
    responseStatus: status,
    ...e,
  };
  // A request the test says succeeded was allowed; a refused one says why in its own annotations.
  if (e.annotations === undefined && typeof status.code === 'number' && status.code < 400)
    out.annotations = { 'authorization.k8s.io/decision': 'allow' };
  if (e.stageTimestamp === undefined && e.requestReceivedTimestamp !== undefined)
    out.stageTimestamp = e.requestReceivedTimestamp;
  return out as unknown as AuditEvent;
}

/** Parses a rule test file; problems name the file, line and field. */
export function readRuleTests(file: string): { tests?: RuleTestFile; diagnostics: Diagnostic[] } {
  const input = readYaml(readFileSync(file, 'utf8'), file);
  if (input.diagnostics.length > 0) return { diagnostics: input.diagnostics };
  const diagnostics: Diagnostic[] = [];
  const v = (input.value ?? {}) as Record<string, unknown>;
  const cases = (kind: 'positive' | 'negative'): RuleTestCase[] => {
    const list = v[kind] ?? [];
    if (!Array.isArray(list)) {
      diagnostics.push({
        severity: 'error',
        code: 'KAUDIT_RULE_TEST_INVALID',
        file,
        path: kind,
        message: 'must be a list of cases',
        ...input.locate([kind]),
      });
      return [];
    }
    return list.flatMap((c: unknown, i) => {
      const cc = c as { name?: unknown; events?: unknown };
      if (
        typeof cc?.name !== 'string' ||
        !Array.isArray(cc.events) ||
        cc.events.some((e) => typeof e !== 'object' || e === null)
      ) {
        diagnostics.push({
          severity: 'error',
          code: 'KAUDIT_RULE_TEST_INVALID',
          file,
          path: `${kind}[${i}]`,
          message: 'a case needs a name and a list of events (mappings)',
          ...input.locate([kind, i]),
        });
        return [];
      }
      return [{ name: cc.name, events: cc.events as Record<string, unknown>[] }];
    });
  };
  for (const key of Object.keys(v))
    if (key !== 'positive' && key !== 'negative')
      diagnostics.push({
        severity: 'error',
        code: 'KAUDIT_RULE_TEST_INVALID',
        file,
        path: key,
        message: `unknown key "${key}"; allowed: positive, negative`,
        ...input.locate([key]),
      });
  const tests = { positive: cases('positive'), negative: cases('negative') };
  return diagnostics.length > 0 ? { diagnostics } : { tests, diagnostics };
}

/** Runs each case on a fresh engine holding only this rule. */
export function runRuleTests(rule: Rule, tests: RuleTestFile): RuleTestResult[] {
  const results: RuleTestResult[] = [];
  for (const kind of ['positive', 'negative'] as const) {
    for (const c of tests[kind]) {
      const alerts = runEvents(
        rule,
        c.events.map((e, i) => completeTestEvent(e, i)),
      );
      const fired = alerts.some((a) => a.rule.id === rule.id);
      results.push({
        rule: rule.id,
        kind,
        name: c.name,
        passed: kind === 'positive' ? fired : !fired,
        alerts,
      });
    }
  }
  return results;
}

/** The alerts of one rule over events, in order. */
export function runEvents(rule: Rule, events: readonly AuditEvent[], cluster = 'test'): Alert[] {
  const engine = new DetectionEngine([rule]);
  return events.flatMap((e) => engine.process(e, { cluster }));
}
