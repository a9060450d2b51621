import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RbacAuthorizer } from '../../src/analyze/rbac/authorize.js';
import { authzRequestOf } from '../../src/analyze/rbac/subjects.js';
import { addRbacObject, emptyRbac, type RbacObject } from '../../src/analyze/rbac/types.js';
import { type RequestRecord, recordFromEvent } from '../../src/analyze/request-record.js';
import { readAuditEvents } from '../../src/model/read-events.js';
import type { DenialExpectation, Truth } from '../../src/simulate/truth.js';
import { runCliSync } from '../helpers/cli.js';

// The simulator's denials scenario, end to end: what the truth file says was denied and why.
const dir = mkdtempSync(join(tmpdir(), 'kaudit-denials-sim-'));
const log = join(dir, 'sim.log');
let truth: Truth;
let report: {
  groups: { class: string; subject: string; admission?: { kind: string }; count: number }[];
  subjects: { subject: string; suspicious: string[]; fix: { objects: RbacObject[] } | null }[];
};
const records = new Map<string, RequestRecord>();

beforeAll(async () => {
  const sim = runCliSync([
    'simulate',
    '--out',
    log,
    '--duration',
    '10m',
    '--seed',
    '3',
    '--scenario',
    'normal,denials',
  ]);
  expect(sim.code).toBe(0);
  truth = JSON.parse(readFileSync(`${log}.truth.json`, 'utf8')) as Truth;
  const r = runCliSync(['report', 'denials', '--from', log, '--json']);
  expect(r.code).toBe(0);
  report = JSON.parse(r.stdout);
  for await (const { event } of readAuditEvents(log)) {
    if (event.stage === 'ResponseComplete') records.set(event.auditID, recordFromEvent(event));
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const steps = (cause: DenialExpectation['cause']) =>
  truth.steps.filter((s) => s.expect.kind === 'denial' && s.expect.cause === cause);

describe('kaudit report denials on the simulator', () => {
  it('every rbac denial of the truth file gets a fix that allows each of its denied requests', () => {
    const rbacSteps = steps('rbac');
    expect(rbacSteps.length).toBeGreaterThan(0);
    for (const step of rbacSteps) {
      const user = (step.expect as DenialExpectation).client.username;
      const s = report.subjects.find((x) => x.subject === user);
      expect(s?.suspicious, user).toEqual([]);
      const set = emptyRbac();
      for (const o of s?.fix?.objects ?? []) addRbacObject(set, o);
      const authz = new RbacAuthorizer(set);
      const denied = step.auditIDs.map((id) => records.get(id)).filter((r) => r !== undefined);
      expect(denied.length).toBeGreaterThan(0);
      for (const r of denied)
        expect(authz.authorize(authzRequestOf(r)).allowed, `${user} ${r.verb} ${r.resource}`).toBe(true);
    }
  });

  it('the PodSecurity rejection is admission, never rbac, with no fix', () => {
    for (const step of steps('pod-security')) {
      const user = (step.expect as DenialExpectation).client.username;
      const groups = report.groups.filter((g) => g.subject === user);
      expect(groups.map((g) => `${g.class}:${g.admission?.kind}`)).toEqual(['admission:PodSecurity']);
      expect(groups[0]?.count).toBe(step.auditIDs.length);
      expect(report.subjects.find((x) => x.subject === user)?.fix).toBeNull();
    }
  });

  it('the revoked token is authentication', () => {
    const step = steps('unauthenticated')[0];
    const auth = report.groups.filter((g) => g.class === 'authentication');
    expect(auth.reduce((n, g) => n + g.count, 0)).toBe(step?.auditIDs.length);
  });
});
