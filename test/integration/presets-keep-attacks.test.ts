/**
 * Every audit policy kaudit generates keeps the evidence of every attack the simulator stages, at
 * the level its detection needs: the simulator's attack traffic is passed through each preset as
 * kube-apiserver would (dropped at None, bodies cut to the level, omitted stages left out), and the
 * built-in rules must still detect every step with the step's ATT&CK technique.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { builtinRules } from '../../src/detect/builtin.js';
import { DetectionEngine } from '../../src/detect/engine.js';
import type { AuditEvent } from '../../src/model/event.js';
import { readAuditEvents } from '../../src/model/read-events.js';
import { evaluatePolicy } from '../../src/policy/evaluate.js';
import { getPreset, presetToPolicy } from '../../src/policy/generate.js';
import { attributesFromEvent } from '../../src/policy/request-attributes.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

interface Step {
  id: string;
  auditIDs: string[];
  expect: { kind: string; technique: string };
}

const PRESETS = ['recommended', 'minimal', 'seed', 'gke'];
/**
 * The minimal preset promises no bodies at all (no secret can reach the log), so what only a
 * request body shows (a privileged pod spec) cannot be detected under it; its events are kept.
 */
const NEEDS_BODIES: Record<string, string[]> = { minimal: ['attack/privileged-pod'] };
/** The seed preset reproduces the Datadog page's example as printed, including its drop of /version. */
const AS_PUBLISHED: Record<string, RegExp> = { seed: /^\/version/ };
const events: AuditEvent[] = [];
let steps: Step[] = [];

beforeAll(async () => {
  const dir = tempDir('kaudit-presets-attack-');
  const log = join(dir, 'audit.log');
  // Every stage and full bodies: what the most verbose policy would write, before a preset cuts it.
  const s = await runCli([
    'simulate',
    '--out',
    log,
    '--scenario',
    'normal,attack',
    '--duration',
    '30m',
    '--rate',
    '3',
    '--seed',
    '5',
  ]);
  expect(s.code, s.stderr).toBe(0);
  for await (const { event } of readAuditEvents(log)) events.push(event);
  steps = (JSON.parse(readFileSync(`${log}.truth.json`, 'utf8')) as { steps: Step[] }).steps.filter(
    (x) => x.expect.kind === 'attack',
  );
}, 120_000);

/** What kube-apiserver would write of the event under the policy, or undefined. */
function underPolicy(e: AuditEvent, policy: ReturnType<typeof presetToPolicy>): AuditEvent | undefined {
  const d = evaluatePolicy(policy, attributesFromEvent(e));
  if (d.level === 'None' || d.omitStages.includes(e.stage)) return undefined;
  const out: AuditEvent = { ...e, level: d.level };
  if (d.level === 'Metadata' || d.level === 'Request') delete out.responseObject;
  if (d.level === 'Metadata') delete out.requestObject;
  return out;
}

describe('generated policies keep attack evidence', () => {
  for (const name of PRESETS) {
    it(`${name}: every attack step is still detected with its technique`, () => {
      const policy = presetToPolicy(getPreset(name));
      const engine = new DetectionEngine(builtinRules());
      const alerts = events.flatMap((e) => {
        const kept = underPolicy(e, policy);
        return kept === undefined ? [] : engine.process(kept, { cluster: 'c' });
      });
      expect(steps.length).toBeGreaterThanOrEqual(8);
      const missed = steps.filter((step) => {
        const ids = new Set(step.auditIDs);
        return !alerts.some(
          (a) =>
            (ids.has(a.auditID) || (a.auditIDs ?? []).some((id) => ids.has(id))) &&
            a.rule.technique.includes(step.expect.technique),
        );
      });
      expect(missed.map((m) => m.id)).toEqual(NEEDS_BODIES[name] ?? []);
      // and every event of every step is still in the log, but for what every preset drops on purpose:
      // health checks (load balancers probe them anonymously all day) and an authenticated client's
      // discovery requests (every kubectl call starts with them)
      const dropped = (e: AuditEvent | undefined) =>
        e !== undefined &&
        (/^\/(healthz|livez|readyz)/.test(e.requestURI) ||
          AS_PUBLISHED[name]?.test(e.requestURI) === true ||
          (e.user.username !== 'system:anonymous' && /^\/(api|apis)(\?|$)/.test(e.requestURI)));
      const kept = new Set(events.filter((e) => underPolicy(e, policy) !== undefined).map((e) => e.auditID));
      const lost = steps.flatMap((step) =>
        step.auditIDs
          .filter((id) => !kept.has(id) && !dropped(events.find((x) => x.auditID === id)))
          .map((id) => {
            const e = events.find((x) => x.auditID === id);
            return `${step.id}: ${e?.user.username} ${e?.verb} ${e?.requestURI}`;
          }),
      );
      expect(lost).toEqual([]);
    });
  }
});
