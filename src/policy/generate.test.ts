import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../model/event.js';
import { evaluatePolicy } from './evaluate.js';
import { getPreset, PRESETS, presetToPolicy, renderPolicyYaml } from './generate.js';
import { lintPolicyText } from './lint-file.js';
import { loadPolicyText } from './load.js';
import { attributesFromRecord } from './request-attributes.js';
import { tunePreset } from './tune.js';
import type { RequestAttributes } from './types.js';

const lintCodes = (name: string) =>
  lintPolicyText(renderPolicyYaml(getPreset(name)))[0]?.diagnostics.map((d) => `${d.code} ${d.path}`) ?? [
    'not loaded',
  ];

const GOLDEN = fileURLToPath(new URL('../../test/fixtures/policy/golden/', import.meta.url));

/** Compares with a golden file; KAUDIT_UPDATE_GOLDEN=1 rewrites it. */
function expectGolden(name: string, actual: string): void {
  const file = `${GOLDEN}${name}`;
  if (process.env.KAUDIT_UPDATE_GOLDEN === '1') writeFileSync(file, actual);
  expect(actual).toBe(readFileSync(file, 'utf8'));
}

describe('presets', () => {
  it.each(Object.keys(PRESETS))('%s prints as its golden file', (name) => {
    expectGolden(`preset-${name}.yaml`, renderPolicyYaml(getPreset(name)));
  });

  it.each(Object.keys(PRESETS))('%s renders to YAML that loads back to the same policy', (name) => {
    const preset = getPreset(name);
    const [loaded] = loadPolicyText(renderPolicyYaml(preset));
    expect(loaded?.diagnostics).toEqual([]);
    expect(loaded?.policy).toEqual(presetToPolicy(preset));
  });

  it('comments every rule with its index', () => {
    const yaml = renderPolicyYaml(getPreset('recommended'));
    expect(yaml).toMatch(/^# kaudit's recommended audit policy/);
    expect(yaml).toContain('# rules[8]: Secrets, ConfigMaps, token requests and token reviews');
    expect(yaml).toContain('    verbs: [get, list, watch]\n');
    expect(yaml).not.toContain('*a1');
    expect(yaml.indexOf('omitStages: [RequestReceived]')).toBeLessThan(yaml.indexOf('rules:'));
  });

  it('recommended, gke and minimal lint clean', () => {
    expect(lintCodes('recommended')).toEqual([]);
    expect(lintCodes('gke')).toEqual([]);
    expect(lintCodes('minimal')).toEqual([]);
  });

  it('seed keeps what the page shows, including pods subresources falling to Metadata', () => {
    expect(lintCodes('seed')).toEqual(['KAUDIT_LINT_PODS_SUBRESOURCES rules[3].resources[0].resources']);
    const policy = presetToPolicy(getPreset('seed'));
    const attrs = (verb: string) => byAlice({ verb, namespace: 'default', resource: 'pods', name: 'p' });
    expect(evaluatePolicy(policy, attrs('create')).rule).toBe(3);
    expect(evaluatePolicy(policy, attrs('list')).rule).toBe(4);
  });

  it('recommended keeps secret bodies out and write bodies in', () => {
    const policy = presetToPolicy(getPreset('recommended'));
    const secretUpdate = byAlice({
      verb: 'update',
      namespace: 'a',
      resource: 'secrets',
      name: 's',
    });
    expect(evaluatePolicy(policy, secretUpdate).level).toBe('Metadata');
    const deploymentPatch = byAlice({
      verb: 'patch',
      namespace: 'a',
      apiGroup: 'apps',
      resource: 'deployments',
      name: 'd',
    });
    expect(evaluatePolicy(policy, deploymentPatch)).toMatchObject({
      level: 'Request',
      omitManagedFields: true,
    });
  });
});

/** A request by a user with no groups, so only resource rules decide. */
function byAlice(request: Record<string, unknown>): RequestAttributes {
  return attributesFromRecord({ user: { username: 'alice', groups: [] }, ...request });
}

function event(
  i: number,
  user: string,
  verb: string,
  resource: string,
  code = 200,
  apiGroup?: string,
): { event: AuditEvent; bytes: number } {
  const e: AuditEvent = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: `a${i}`,
    stage: 'ResponseComplete',
    requestURI: `/x/${i}`,
    verb,
    user: { username: user, groups: ['system:authenticated'] },
    objectRef: { resource, namespace: 'kube-system', ...(apiGroup ? { apiGroup } : {}) },
    responseStatus: { code },
    requestReceivedTimestamp: '2026-01-01T00:00:00Z',
    stageTimestamp: '2026-01-01T00:00:01Z',
  };
  return { event: e, bytes: JSON.stringify(e).length };
}

describe('tunePreset', () => {
  it('drops the heaviest system reads, never writes or denied reads', async () => {
    const log = [
      ...Array.from({ length: 500 }, (_, i) =>
        event(i, 'system:serviceaccount:kube-system:noisy', 'list', 'pods'),
      ),
      ...Array.from({ length: 300 }, (_, i) =>
        event(1000 + i, 'system:serviceaccount:kube-system:writer', 'update', 'configmaps'),
      ),
      ...Array.from({ length: 300 }, (_, i) =>
        event(2000 + i, 'system:serviceaccount:kube-system:probe', 'get', 'nodes', i === 7 ? 403 : 200),
      ),
      ...Array.from({ length: 200 }, (_, i) => event(3000 + i, 'alice', 'get', 'pods')),
      ...Array.from({ length: 5 }, (_, i) =>
        event(4000 + i, 'system:kube-scheduler', 'get', 'deployments', 200, 'apps'),
      ),
    ];
    const { preset, noisy } = await tunePreset(getPreset('recommended'), log);
    expect(noisy.map((n) => `${n.user} ${n.verbs.join(',')} ${n.resource}`)).toEqual([
      'system:serviceaccount:kube-system:noisy list pods',
    ]);
    const policy = presetToPolicy(preset);
    const decide = (e: { event: AuditEvent }) =>
      evaluatePolicy(
        policy,
        attributesFromRecord({
          user: e.event.user,
          verb: e.event.verb,
          namespace: 'kube-system',
          resource: e.event.objectRef?.resource,
          apiGroup: e.event.objectRef?.apiGroup,
        }),
      ).level;
    expect(decide(log[0] as { event: AuditEvent })).toBe('None');
    expect(decide(log[500] as { event: AuditEvent })).not.toBe('None');
    expect(decide(log[800] as { event: AuditEvent })).not.toBe('None');
    expect(renderPolicyYaml(preset)).toContain(
      '# rules[0]: Tuned: system:serviceaccount:kube-system:noisy list pods made 500 events',
    );
  });
});
