import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { FIXTURES, THIRD_PARTY } from '../../../test/helpers/cli.js';
import type { Diagnostic } from '../../model/errors.js';
import type { AuditEvent } from '../../model/event.js';
import { Simulation } from '../../simulate/generator.js';
import { DetectionEngine } from '../engine.js';
import type { Rule } from '../rule.js';
import { completeTestEvent, readRuleTests, runEvents, runRuleTests } from '../rule-tests.js';
import { attackTags } from './attack-tags.js';
import { loadSigmaFiles, loadSigmaText, MAX_SIGMA_FILE_BYTES } from './load-sigma.js';

const SIGMA = join(THIRD_PARTY, 'sigma');
const SIGMAHQ_K8S = join(SIGMA, 'rules/application/kubernetes/audit');
const SIGMA_FIXTURES = join(FIXTURES, 'sigma');

const errors = (ds: readonly Diagnostic[]) => ds.filter((d) => d.severity === 'error');

describe("SigmaHQ's Kubernetes audit rules", () => {
  const files = readdirSync(SIGMAHQ_K8S)
    .filter((f) => f.endsWith('.yml'))
    .sort();
  const loaded = loadSigmaFiles([SIGMA]);

  it('all load without errors, one kaudit rule per file', () => {
    expect(errors(loaded.diagnostics)).toEqual([]);
    expect(files.length).toBeGreaterThanOrEqual(16);
    expect(loaded.rules.map((r) => basename(r.file ?? '')).sort()).toEqual(files);
  });

  it('the GCP and Azure rules beside them are skipped with a warning naming the file and why', () => {
    const skipped = loaded.diagnostics.filter((d) => d.code === 'KAUDIT_SIGMA_SKIPPED');
    const cloud = ['cloud/gcp/audit', 'cloud/azure/activity_logs'].flatMap((dir) =>
      readdirSync(join(SIGMA, 'rules', dir)).map((f) => join(SIGMA, 'rules', dir, f)),
    );
    expect(cloud.length).toBeGreaterThan(0);
    expect(skipped.map((d) => d.file).sort()).toEqual(cloud.sort());
    for (const d of skipped) {
      expect(d.severity).toBe('warning');
      expect(d.line).toBeGreaterThan(0);
      expect(d.message).toMatch(
        /skipped: its logsource \{product: (gcp|azure), .*\} is not Kubernetes audit/,
      );
    }
    expect(loaded.diagnostics.length).toBe(skipped.length);
  });

  it('metadata: the Sigma id, level as severity, ATT&CK ids from tags, peer equivalent', () => {
    const admission = loaded.rules.find((r) => r.id === 'eed82177-38f5-4299-8a76-098d50d225ab');
    expect(admission).toMatchObject({
      title: 'Kubernetes Admission Controller Modification',
      severity: 'medium',
      source: 'sigma',
      kind: 'match',
      // attack.privilege-escalation, initial-access, persistence, stealth, credential-access
      tactic: ['TA0004', 'TA0001', 'TA0003', 'TA0005', 'TA0006'],
      technique: ['T1078', 'T1552', 'T1552.007'],
      equivalents: ['sigma:eed82177-38f5-4299-8a76-098d50d225ab'],
      references: ['https://kubernetes.io/docs/reference/config-api/apiserver-audit.v1/', expect.any(String)],
    });
    expect(admission?.falsePositives).toHaveLength(2);
    expect(admission?.description).toMatch(/^Detects when a modification/);
    expect(admission?.description).not.toMatch(/\n$/);
    const byId = (id: string) => loaded.rules.find((r) => r.id === id);
    expect(byId('40967487-139b-4811-81d9-c9767a92aa5a')?.severity).toBe('low');
    expect(byId('a80d927d-ac6e-443f-a867-e8d6e3897318')?.technique).toEqual(['T1036.005']);
  });

  for (const file of files) {
    const name = basename(file, '.yml');
    it(`${name} fires on its test event and not on the near miss`, () => {
      const rule = loaded.rules.find((r) => basename(r.file ?? '') === file);
      expect(rule).toBeDefined();
      const testFile = join(SIGMA_FIXTURES, 'events', `${name}.yaml`);
      expect(existsSync(testFile)).toBe(true);
      const { tests, diagnostics } = readRuleTests(testFile);
      expect(diagnostics).toEqual([]);
      expect(tests?.positive.length).toBeGreaterThan(0);
      expect(tests?.negative.length).toBeGreaterThan(0);
      const results = runRuleTests(rule as Rule, tests ?? { positive: [], negative: [] });
      expect(results.filter((r) => !r.passed).map((r) => `${r.kind}: ${r.name}`)).toEqual([]);
      const alert = results.find((r) => r.kind === 'positive')?.alerts[0];
      expect(alert?.rule).toMatchObject({ source: 'sigma', equivalents: [`sigma:${rule?.id}`] });
      expect(alert?.message.startsWith(`${rule?.title}: `)).toBe(true);
    });
  }

  it("stay quiet on the simulator's normal traffic, but for the rules that flag routine operations", () => {
    // These fire by design on what a healthy cluster does all day; each reason is the rule's own
    // false-positive note or the audit event it cannot tell apart.
    const exempt: Record<string, string> = {
      // "Kubernetes Secrets Enumeration": kubelets list the secrets of their pods' namespaces and
      // controllers (cert-manager, ingress-nginx) list secrets to watch them.
      'eeb3e9e1-b685-44e4-9232-6bb701f925b5': 'list secrets is how kubelets and controllers read secrets',
      // "New Kubernetes Service Account Created": objectRef.resource is serviceaccounts for the
      // token subresource too, and kubelets request a token (TokenRequest) for every pod.
      'e31bae15-83ed-473e-bf31-faf4f8a17d36': 'kubelet TokenRequests are create serviceaccounts/token',
      // "Kubernetes Secrets Modified or Deleted": cert-manager renews certificates into secrets.
      '58d31a75-a4f8-4c40-985b-373d58162ca2': 'controllers update secrets (certificate renewal)',
      // "Potential Sidecar Injection Into Running Deployment": any patch of a Deployment, which is
      // how GitOps controllers, CI deployers and kubectl apply/rollout roll out changes.
      'ad9012a6-e518-4432-9890-f3b82b8fc71f': 'every Deployment rollout is a patch',
      // "Potential Remote Command Execution In Pod Container": the normal traffic has engineers
      // running kubectl exec to debug, the rule's own false positive.
      'a1b0ca4e-7835-413e-8471-3ff2b8a66be6': 'engineers debug with kubectl exec',
    };
    const engine = new DetectionEngine(loaded.rules);
    let events = 0;
    for (const e of new Simulation({ seed: 7, count: 5000, scenarios: ['normal'] })) {
      engine.process(JSON.parse(e.line) as AuditEvent, { cluster: 'sim' });
      events++;
    }
    expect(events).toBe(5000);
    const fired = new Map(engine.alertCounts());
    const unexpected = [...fired.keys()].filter((id) => exempt[id] === undefined);
    expect(unexpected).toEqual([]);
    // An exemption that no longer fires is stale: drop it.
    expect(Object.keys(exempt).filter((id) => !fired.has(id))).toEqual([]);
  });
});

describe('attackTags', () => {
  it('techniques, sub-techniques and tactics by name (old and new names)', () => {
    expect(
      attackTags([
        'attack.t1609',
        'attack.T1552.007',
        'attack.execution',
        'attack.defense_evasion',
        'attack.stealth',
        'attack.defense-impairment',
        'attack.g0007',
        'cve.2021-25741',
      ]),
    ).toEqual({ tactic: ['TA0002', 'TA0005', 'TA0112'], technique: ['T1609', 'T1552.007'] });
  });
});

describe('correlation rules', () => {
  const dir = join(SIGMA_FIXTURES, 'correlation');
  const loaded = loadSigmaFiles([dir]);
  const rule = (id: string) => {
    const r = loaded.rules.find((x) => x.id === id);
    expect(r).toBeDefined();
    return r as Rule;
  };
  const minute = 60_000;
  const t0 = Date.parse('2026-01-15T09:00:00Z');
  /** Events at the given minutes after t0. */
  const events = (list: [number, Record<string, unknown>][]) =>
    list.map(([min, e], i) => {
      const time = new Date(t0 + min * minute).toISOString();
      return completeTestEvent({ requestReceivedTimestamp: time, ...e }, i);
    });
  const as = (username: string, e: Record<string, unknown>) => ({ user: { username }, ...e });
  const denied = (username: string) =>
    as(username, {
      verb: 'get',
      objectRef: { resource: 'secrets', namespace: 'kube-system', name: 'x' },
      responseStatus: { code: 403 },
      annotations: { 'authorization.k8s.io/decision': 'forbid' },
    });
  const secretRead = (username: string, namespace: string) =>
    as(username, { verb: 'get', objectRef: { resource: 'secrets', namespace, name: 'db' } });
  const bind = (username: string) =>
    as(username, {
      verb: 'create',
      objectRef: { resource: 'clusterrolebindings', apiGroup: 'rbac.authorization.k8s.io', name: 'b' },
      responseStatus: { code: 201 },
    });
  const deploy = (username: string) =>
    as(username, {
      verb: 'patch',
      objectRef: { resource: 'deployments', apiGroup: 'apps', namespace: 'web', name: 'w' },
    });
  const exec = (username: string) =>
    as(username, {
      verb: 'create',
      objectRef: { resource: 'pods', subresource: 'exec', namespace: 'web', name: 'w-1' },
      responseStatus: { code: 101 },
    });

  it('load across files, referring to rules by id or name', () => {
    expect(loaded.diagnostics).toEqual([]);
    expect(rule('5f1d2c3b-0a9e-4b7c-8d6e-1f2a3b4c5d6e')).toMatchObject({
      kind: 'threshold',
      threshold: { groupBy: [['user', 'username']], windowMs: 10 * minute, count: 5 },
      severity: 'medium',
      technique: ['T1613'],
      equivalents: ['sigma:5f1d2c3b-0a9e-4b7c-8d6e-1f2a3b4c5d6e'],
    });
    expect(rule('6a2e3d4c-1b0f-4c8d-9e7f-2a3b4c5d6e7f').threshold).toEqual({
      groupBy: [['subject']],
      windowMs: 10 * minute,
      count: 3,
      distinct: ['objectRef', 'namespace'],
    });
    expect(rule('7b3f4e5d-2c1a-4d9e-8f0a-3b4c5d6e7f8a')).toMatchObject({
      kind: 'sequence',
      sequence: { by: [['subject']], windowMs: 15 * minute, ordered: false },
    });
    expect(rule('8c4a5f6e-3d2b-4e0f-9a1b-4c5d6e7f8a9b')).toMatchObject({
      kind: 'sequence',
      severity: 'critical',
      sequence: { by: [['user', 'username']], windowMs: 10 * minute, ordered: true },
    });
  });

  it('referenced rules raise no alerts of their own, unless a correlation says generate: true', () => {
    const ids = loaded.rules.map((r) => r.id);
    // refused_request, secret_read, deployment_change: referred to without generate.
    expect(ids).not.toContain('0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d');
    expect(ids).not.toContain('1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e');
    expect(ids).not.toContain('3d4e5f6a-7b8c-4d9e-8f1a-2b3c4d5e6f7a');
    // rbac_binding_change (its id written in upper case) and pod_exec: mr_bind_then_exec generates them.
    expect(ids).toContain('2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f');
    expect(ids).toContain('4e5f6a7b-8c9d-4e0f-9a2b-3c4d5e6f7a8b');
    expect(ids).toHaveLength(6);
  });

  it('event_count fires at the fifth refusal of one user within ten minutes', () => {
    const r = rule('5f1d2c3b-0a9e-4b7c-8d6e-1f2a3b4c5d6e');
    const five = events([0, 1, 2, 3, 4].map((m) => [m, denied('mallory')]));
    const alerts = runEvents(r, five);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.auditIDs).toEqual(five.map((e) => e.auditID));
    expect(alerts[0]?.message).toBe('Many Requests Refused For One User: user.username=mallory');
    expect(runEvents(r, events([0, 1, 2, 3].map((m) => [m, denied('mallory')])))).toEqual([]);
    // Five refusals, but of two users; and five of one user spread over more than ten minutes.
    expect(runEvents(r, events([0, 1, 2, 3, 4].map((m) => [m, denied(m % 2 === 0 ? 'a' : 'b')])))).toEqual(
      [],
    );
    expect(runEvents(r, events([0, 3, 6, 9, 12].map((m) => [m, denied('mallory')])))).toEqual([]);
    // Allowed requests do not count.
    expect(runEvents(r, events([0, 1, 2, 3, 4].map((m) => [m, secretRead('mallory', 'x')])))).toEqual([]);
  });

  it('value_count fires when one subject reads secrets in a third namespace (gt: 2)', () => {
    const r = rule('6a2e3d4c-1b0f-4c8d-9e7f-2a3b4c5d6e7f');
    const three = events([
      [0, secretRead('eve', 'a')],
      [1, secretRead('eve', 'a')],
      [2, secretRead('eve', 'b')],
      [3, secretRead('eve', 'c')],
    ]);
    expect(runEvents(r, three)).toHaveLength(1);
    const two = events([0, 1, 2, 3, 4, 5].map((m) => [m, secretRead('eve', m % 2 === 0 ? 'a' : 'b')]));
    expect(runEvents(r, two)).toEqual([]);
    const spread = events([
      [0, secretRead('eve', 'a')],
      [1, secretRead('frank', 'b')],
      [2, secretRead('eve', 'c')],
    ]);
    expect(runEvents(r, spread)).toEqual([]);
  });

  it('temporal fires when both rules matched within the window, in either order, for one subject', () => {
    const r = rule('7b3f4e5d-2c1a-4d9e-8f0a-3b4c5d6e7f8a');
    expect(
      runEvents(
        r,
        events([
          [0, deploy('eve')],
          [5, bind('eve')],
        ]),
      ),
    ).toHaveLength(1);
    expect(
      runEvents(
        r,
        events([
          [0, bind('eve')],
          [14, deploy('eve')],
        ]),
      ),
    ).toHaveLength(1);
    expect(
      runEvents(
        r,
        events([
          [0, bind('eve')],
          [5, deploy('frank')],
        ]),
      ),
    ).toEqual([]);
    expect(
      runEvents(
        r,
        events([
          [0, bind('eve')],
          [16, deploy('eve')],
        ]),
      ),
    ).toEqual([]);
    expect(
      runEvents(
        r,
        events([
          [0, bind('eve')],
          [1, bind('eve')],
        ]),
      ),
    ).toEqual([]);
  });

  it('temporal_ordered fires only in the order of its rules', () => {
    const r = rule('8c4a5f6e-3d2b-4e0f-9a1b-4c5d6e7f8a9b');
    const inOrder = events([
      [0, bind('eve')],
      [3, exec('eve')],
    ]);
    const alerts = runEvents(r, inOrder);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.auditIDs).toEqual(inOrder.map((e) => e.auditID));
    expect(
      runEvents(
        r,
        events([
          [0, exec('eve')],
          [3, bind('eve')],
        ]),
      ),
    ).toEqual([]);
    expect(
      runEvents(
        r,
        events([
          [0, bind('eve')],
          [11, exec('eve')],
        ]),
      ),
    ).toEqual([]);
  });

  it('a correlation and the rules it generates all alert through one engine', () => {
    const engine = new DetectionEngine(loaded.rules);
    const alerts = events([
      [0, bind('eve')],
      [3, exec('eve')],
    ]).flatMap((e) => engine.process(e, { cluster: 'c' }));
    expect(alerts.map((a) => a.rule.title)).toEqual([
      'Role Binding Created Or Changed',
      'Exec Into A Pod',
      'Role Bound Then Exec Into A Pod',
    ]);
  });
});

describe('diagnostics', () => {
  const load = (file: string) => loadSigmaFiles([join(SIGMA_FIXTURES, 'invalid', file)]);
  const shape = (d: Diagnostic) => ({
    severity: d.severity,
    code: d.code,
    line: d.line,
    path: d.path,
    message: d.message,
  });

  it('malformed YAML: an error with the file and line', () => {
    // Written at test time: the formatter of the repository refuses a broken YAML file.
    const dir = mkdtempSync(join(tmpdir(), 'kaudit-sigma-'));
    try {
      const file = join(dir, 'broken.yml');
      writeFileSync(
        file,
        [
          'title: Broken YAML',
          'logsource:',
          '    product: kubernetes',
          '    service: audit',
          'detection:',
          '    selection:',
          '        verb: [create, delete',
          '    condition: selection',
          '',
        ].join('\n'),
      );
      const { rules, diagnostics } = loadSigmaFiles([dir]);
      expect(rules).toEqual([]);
      expect(diagnostics).toEqual([
        {
          severity: 'error',
          code: 'KAUDIT_SIGMA_INVALID',
          file,
          line: 8,
          column: 5,
          message: expect.stringContaining('Flow sequence'),
        },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('unsupported parts: an error with the reason at their line; the good rule beside them loads', () => {
    const { rules, diagnostics } = load('unsupported_parts.yml');
    expect(rules.map((r) => r.title)).toEqual(['A Good Rule In The Same File']);
    expect(diagnostics.map(shape)).toEqual([
      {
        severity: 'error',
        code: 'KAUDIT_SIGMA_UNSUPPORTED',
        line: 9,
        path: 'detection.selection.requestObject|base64offset|contains',
        message: expect.stringContaining('the "base64offset" modifier is not supported'),
      },
      {
        severity: 'error',
        code: 'KAUDIT_SIGMA_UNSUPPORTED',
        line: 11,
        path: 'detection.keywords',
        message: expect.stringContaining('keyword search (values without a field) is not supported'),
      },
      {
        severity: 'error',
        code: 'KAUDIT_SIGMA_UNSUPPORTED',
        line: 35,
        path: 'detection.condition',
        message: expect.stringContaining('pipe aggregations'),
      },
    ]);
    for (const d of diagnostics)
      expect(d.file).toBe(join(SIGMA_FIXTURES, 'invalid', 'unsupported_parts.yml'));
  });

  it('malformed rules: every problem at once, with the allowed values', () => {
    const { rules, diagnostics } = load('malformed_rules.yml');
    expect(rules).toEqual([]);
    expect(diagnostics.map(shape)).toEqual([
      {
        severity: 'error',
        code: 'KAUDIT_SIGMA_INVALID',
        line: 10,
        path: 'level',
        message: 'must be informational or low or medium or high or critical, got "severe"',
      },
      {
        severity: 'error',
        code: 'KAUDIT_SIGMA_INVALID',
        line: 9,
        path: 'detection.condition',
        message:
          '"selection and not filter": "filter" is not a search identifier of this detection (it has selection)',
      },
      { severity: 'error', code: 'KAUDIT_SIGMA_INVALID', line: 12, path: 'title', message: 'is required' },
      {
        severity: 'error',
        code: 'KAUDIT_SIGMA_INVALID',
        line: 18,
        path: 'detection.selection.sourceIPs|cidr',
        message: '"10.0.0.0/33" is not an IP address or CIDR',
      },
      {
        severity: 'error',
        code: 'KAUDIT_SIGMA_UNSUPPORTED',
        line: 19,
        path: 'detection.selection.verb|unknownmod',
        message: 'unknown modifier "unknownmod"',
      },
    ]);
  });

  it('unsupported correlations: conditions other than gte/gt, aliases, missing rules', () => {
    const { rules, diagnostics } = load('unsupported_correlation.yml');
    // The base rule is referred to, by correlations that did not load: it stands alone.
    expect(rules.map((r) => r.title)).toEqual(['Some Request']);
    expect(diagnostics.map(shape)).toEqual([
      {
        severity: 'error',
        code: 'KAUDIT_SIGMA_UNSUPPORTED',
        line: 11,
        path: 'correlation.condition',
        message: 'condition lt is not supported: only gte or gt (one of them)',
      },
      {
        severity: 'error',
        code: 'KAUDIT_SIGMA_UNSUPPORTED',
        line: 24,
        path: 'correlation.aliases',
        message: expect.stringContaining('field name aliases are not supported'),
      },
      {
        severity: 'error',
        code: 'KAUDIT_SIGMA_INVALID',
        line: 19,
        path: 'correlation.rules[1]',
        message: 'rule "missing_rule" is not among the loaded Sigma rules (by id or name)',
      },
    ]);
  });

  it('an unknown key in a correlation is refused with the keys allowed there', () => {
    const text = `title: R
name: r
logsource: {product: kubernetes, service: audit}
detection: {sel: {verb: get}, condition: sel}
---
title: Old Draft
correlation:
    type: temporal
    rules: [r, r]
    timespan: 5m
    ordered: true
`;
    const { rules, diagnostics } = loadSigmaText(text, 'draft.yml');
    expect(rules.map((r) => r.title)).toEqual(['R']);
    expect(diagnostics).toMatchObject([
      {
        code: 'KAUDIT_SIGMA_INVALID',
        line: 11,
        path: 'correlation.ordered',
        message: 'unknown key "ordered"',
        hint: 'allowed here: type, rules, group-by, timespan, condition, generate, aliases',
      },
    ]);
  });

  it('loadSigmaText: a correlation finds its rules only in the same text', () => {
    const text = `title: Many Exec
id: 11111111-2222-4333-8444-555555555555
correlation:
    type: event_count
    rules: [pod_exec]
    group-by: [subject]
    timespan: 5m
    condition: {gte: 3}
`;
    const { rules, diagnostics } = loadSigmaText(text, 'mr.yml');
    expect(rules).toEqual([]);
    expect(diagnostics.map(shape)).toEqual([
      {
        severity: 'error',
        code: 'KAUDIT_SIGMA_INVALID',
        line: 5,
        path: 'correlation.rules[0]',
        message: 'rule "pod_exec" is not among the loaded Sigma rules (by id or name)',
      },
    ]);
  });

  it('a correlation over a skipped rule is skipped too; a temporal needs two rules', () => {
    const text = `title: Azure Thing
name: azure_thing
logsource: {product: azure, service: activitylogs}
detection:
    sel: {operationName: X}
    condition: sel
---
title: Many Azure Things
correlation:
    type: event_count
    rules: azure_thing
    timespan: 1h
    condition: {gte: 2}
---
title: Lonely Temporal
correlation:
    type: temporal
    rules: [azure_thing]
    timespan: 1h
`;
    const { rules, diagnostics } = loadSigmaText(text, 'mixed.yml');
    expect(rules).toEqual([]);
    expect(diagnostics.map((d) => [d.severity, d.code, d.line, d.path])).toEqual([
      ['warning', 'KAUDIT_SIGMA_SKIPPED', 3, 'logsource'],
      ['warning', 'KAUDIT_SIGMA_SKIPPED', 11, 'correlation.rules'],
      ['warning', 'KAUDIT_SIGMA_SKIPPED', 18, 'correlation.rules[0]'],
      ['error', 'KAUDIT_SIGMA_INVALID', 18, 'correlation.rules'],
    ]);
  });

  it('deprecated and unsupported rules are skipped; a skipped rule is not checked further', () => {
    const text = `title: Old Rule
status: deprecated
logsource: {product: kubernetes, service: audit}
detection:
    sel: {verb: delete}
    condition: sel
---
title: Azure Rule With A Typo
level: severe
logsource: {product: azure, service: activitylogs}
detection:
    sel|base64: x
    condition: sel
`;
    const { rules, diagnostics } = loadSigmaText(text, 'skips.yml');
    expect(rules).toEqual([]);
    expect(diagnostics.map(shape)).toEqual([
      {
        severity: 'warning',
        code: 'KAUDIT_SIGMA_SKIPPED',
        line: 2,
        path: 'status',
        message: 'rule "Old Rule" skipped: its status is deprecated',
      },
      {
        severity: 'warning',
        code: 'KAUDIT_SIGMA_SKIPPED',
        line: 10,
        path: 'logsource',
        message:
          'rule "Azure Rule With A Typo" skipped: its logsource {product: azure, service: activitylogs} is not Kubernetes audit',
      },
    ]);
  });

  it('other unsupported Sigma: filters, Sigma 1 collections, timeframe, windash', () => {
    const text = `title: A Filter
logsource: {product: kubernetes, service: audit}
filter:
    rules: [x]
    selection: {user.username: admin}
    condition: not selection
---
action: global
title: Sigma 1
---
title: Timeframe
logsource: {product: kubernetes, service: audit}
detection:
    sel: {verb: create}
    timeframe: 5m
    condition: sel
---
title: Windash
logsource: {product: kubernetes, service: audit}
detection:
    sel: {requestURI|windash|contains: '-it'}
    condition: sel
`;
    const { rules, diagnostics } = loadSigmaText(text, 'other.yml');
    expect(rules).toEqual([]);
    expect(diagnostics.map((d) => [d.code, d.line, d.path])).toEqual([
      ['KAUDIT_SIGMA_UNSUPPORTED', 4, 'filter'],
      ['KAUDIT_SIGMA_UNSUPPORTED', 8, 'action'],
      ['KAUDIT_SIGMA_UNSUPPORTED', 15, 'detection.timeframe'],
      ['KAUDIT_SIGMA_UNSUPPORTED', 21, 'detection.sel.requestURI|windash|contains'],
    ]);
  });

  it('rules without an id get one from their name or file; duplicate ids are refused', () => {
    const rule = (extra: string) => `title: T
${extra}
logsource: {product: kubernetes, service: audit}
detection:
    sel: {verb: create}
    condition: sel
`;
    const { rules, diagnostics } = loadSigmaText(
      [
        rule('name: My_Rule'),
        rule(''),
        rule('id: 9F0E1D2C-3B4A-4596-8877-665544332211'),
        rule('id: 9f0e1d2c-3b4a-4596-8877-665544332211'),
      ].join('---\n'),
      '/rules/Team Rules.yml',
    );
    expect(rules.map((r) => r.id)).toEqual([
      'my_rule',
      'team-rules-2',
      '9f0e1d2c-3b4a-4596-8877-665544332211',
      '9f0e1d2c-3b4a-4596-8877-665544332211',
    ]);
    expect(rules[0]?.equivalents).toEqual([]);
    expect(diagnostics.map((d) => d.code)).toEqual(['KAUDIT_RULE_DUPLICATE']);
  });

  it('random detections and correlations never throw: each loads and runs, or is reported', () => {
    const key = fc
      .tuple(
        fc.constantFrom('verb', 'objectRef.resource', 'hostPath', 'responseStatus.code', 'a..b', ''),
        fc.array(
          fc.constantFrom('contains', 'all', 're', 'i', 'cidr', 'exists', 'gt', 'neq', 'base64', 'x'),
          {
            maxLength: 3,
          },
        ),
      )
      .map(([f, mods]) => [f, ...mods].join('|'));
    const scalar = fc.oneof(
      fc.constantFrom('*', '\\*', '(', '10.0.0.0/8', 'ALLOW', '', 'a?b', '[]]'),
      fc.string({ maxLength: 6 }),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
    );
    const selection = fc.oneof(
      fc.dictionary(key, fc.oneof(scalar, fc.array(scalar, { maxLength: 3 })), { maxKeys: 3 }),
      fc.array(fc.dictionary(key, scalar, { maxKeys: 2 }), { maxLength: 2 }),
      scalar,
    );
    const condition = fc.oneof(
      fc.constantFrom('sel', 'sel and not filter', '1 of sel*', 'all of them', 'sel |', '(sel', 'x of them'),
      fc.string({ maxLength: 12 }),
      fc.array(fc.constantFrom('sel', 'filter'), { maxLength: 2 }),
    );
    const detection = fc.record({ sel: selection, filter: selection, condition });
    const correlation = fc.record(
      {
        type: fc.constantFrom('event_count', 'value_count', 'temporal', 'temporal_ordered', 'other'),
        rules: fc.oneof(fc.constant(['base']), fc.constant(['base', 'base']), fc.string({ maxLength: 4 })),
        'group-by': fc.oneof(fc.constant(['subject']), fc.constant('..')),
        timespan: fc.constantFrom('5m', '1h', 'soon'),
        condition: fc.dictionary(
          fc.constantFrom('gte', 'gt', 'lt', 'field'),
          fc.oneof(fc.integer(), fc.string()),
        ),
        generate: fc.boolean(),
      },
      { requiredKeys: [] },
    );
    const base = { title: 'Base', name: 'base', logsource: { product: 'kubernetes', service: 'audit' } };
    const event = completeTestEvent({ verb: 'create', objectRef: { resource: 'pods' } }, 0);
    fc.assert(
      fc.property(detection, correlation, (d, c) => {
        const text = [
          stringify({ ...base, detection: d }),
          stringify({ title: 'Corr', correlation: c }),
        ].join('---\n');
        const { rules, diagnostics } = loadSigmaText(text, 'random.yml');
        expect(rules.length + diagnostics.length).toBeGreaterThan(0);
        new DetectionEngine(rules).process(event, { cluster: 'c' });
      }),
      { seed: 31, numRuns: 400 },
    );
  });

  it('a file too big to be rules is refused unread', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kaudit-sigma-'));
    try {
      const file = join(dir, 'audit.yml');
      writeFileSync(file, Buffer.alloc(MAX_SIGMA_FILE_BYTES + 1, 0x20));
      const { rules, diagnostics } = loadSigmaFiles([dir]);
      expect(rules).toEqual([]);
      expect(diagnostics).toMatchObject([{ severity: 'error', code: 'KAUDIT_RULE_UNREADABLE', file }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a directory that does not exist is reported, not thrown', () => {
    const { rules, diagnostics } = loadSigmaFiles([join(SIGMA_FIXTURES, 'no-such-dir')]);
    expect(rules).toEqual([]);
    expect(diagnostics.map((d) => d.code)).toEqual(['KAUDIT_RULE_UNREADABLE']);
  });
});
