import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseKubeVersion, policyFeatures } from './kube-version.js';
import { lintPolicy, ruleCovers } from './lint.js';
import { lintPolicyText } from './lint-file.js';
import type { Policy } from './types.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SHARED_POLICIES = `${REPO}test/fixtures/third-party/policies/`;
const FIXTURES = `${REPO}test/fixtures/policy/`;

type Finding = `${string} ${string}`;
function findings(
  file: string,
  opts: { version?: string; fragment?: boolean } = {},
): Record<string, Finding[]> {
  const results = lintPolicyText(readFileSync(file, 'utf8'), {
    file,
    features: policyFeatures(opts.version ? parseKubeVersion(opts.version) : undefined),
    fragment: opts.fragment ?? false,
  });
  return Object.fromEntries(
    results.map((r) => [
      r.entry ?? '',
      r.diagnostics.map((d): Finding => `${d.code} ${d.path ?? ''}`).sort(),
    ]),
  );
}

const V1BETA1 = 'KAUDIT_POLICY_API_VERSION apiVersion';
const sorted = (xs: Finding[]) => [...xs].sort();

/*
 * What each real policy in test/fixtures/third-party/policies should report, and why.
 * Positions are checked separately below; here the finding and the rule it points at.
 */
const EXPECTED: Record<
  string,
  { version?: string; fragment?: boolean; findings: Record<string, Finding[]> }
> = {
  // Logs pods at RequestResponse with list/watch bodies; "pods" misses exec/attach/portforward, which fall to the
  // core-group Request rule; secrets at Request (rules[5]) and configmaps in kube-system at Request leak data;
  // serviceaccounts/token creates reach the core-group Request rule.
  'aks-engine/audit-policy.rendered-ge-1.16.yaml': {
    findings: {
      '': sorted([
        'KAUDIT_LINT_LIST_BODIES rules[0]',
        'KAUDIT_LINT_PODS_SUBRESOURCES rules[0].resources[0].resources',
        'KAUDIT_LINT_SENSITIVE_BODY rules[4]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[5]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[6]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[6]',
      ]),
    },
  },
  // Only audits four users on purpose; everyone else goes unaudited.
  'audit2rbac-demo-policy.yaml': { findings: { '': ['KAUDIT_LINT_NO_CATCH_ALL rules[0]'] } },
  // As the Kubernetes docs example, plus "deployments" listed under the core group (it lives in apps), plus
  // configmaps at RequestResponse everywhere outside kube-system.
  'falcosecurity-plugins-k8saudit-audit-policy.yaml': {
    findings: {
      '': sorted([
        'KAUDIT_LINT_LIST_BODIES rules[0]',
        'KAUDIT_LINT_PODS_SUBRESOURCES rules[0].resources[0].resources',
        'KAUDIT_LINT_WRONG_GROUP rules[0].resources[0].resources[1]',
        'KAUDIT_LINT_LIST_BODIES rules[1]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[6]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[7]',
        'KAUDIT_LINT_LIST_BODIES rules[7]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[9]',
      ]),
    },
  },
  // The GCE and kubespray policies are careful: sensitive resources at Metadata first, reads at Request before
  // the RequestResponse default, RequestReceived omitted in every logging rule, catch-all last.
  'gce-create-master-audit-policy.rendered.yaml': { findings: { '': [] } },
  'kubespray/apiserver-audit-policy.rendered-default.yaml': { findings: { '': [] } },
  'kubernetes-docs-audit-policy.yaml': {
    findings: {
      '': sorted([
        'KAUDIT_LINT_LIST_BODIES rules[0]',
        'KAUDIT_LINT_PODS_SUBRESOURCES rules[0].resources[0].resources',
        'KAUDIT_LINT_SENSITIVE_BODY rules[5]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[7]',
      ]),
    },
  },
  // OpenShift's policies are audit.k8s.io/v1beta1, which kube-apiserver 1.24+ refuses.
  'openshift-library-go/default.yaml': { findings: { '': [V1BETA1] } },
  'openshift-library-go/secure-oauth-storage-default.yaml': { findings: { '': [V1BETA1] } },
  // ...and the "write/all request bodies" profiles log configmaps, tokenreviews and token requests in full.
  'openshift-library-go/writerequestbodies.yaml': {
    findings: {
      '': sorted([
        V1BETA1,
        'KAUDIT_LINT_SENSITIVE_BODY rules[5]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[5]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[5]',
      ]),
    },
  },
  'openshift-library-go/allrequestbodies.yaml': {
    findings: {
      '': sorted([
        V1BETA1,
        'KAUDIT_LINT_SENSITIVE_BODY rules[5]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[5]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[5]',
        'KAUDIT_LINT_LIST_BODIES rules[5]',
      ]),
    },
  },
  'openshift-library-go/secure-oauth-storage-writerequestbodies.yaml': {
    findings: {
      '': sorted([
        V1BETA1,
        'KAUDIT_LINT_SENSITIVE_BODY rules[4]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[4]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[4]',
      ]),
    },
  },
  'openshift-library-go/secure-oauth-storage-allrequestbodies.yaml': {
    findings: {
      '': sorted([
        V1BETA1,
        'KAUDIT_LINT_SENSITIVE_BODY rules[4]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[4]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[4]',
        'KAUDIT_LINT_LIST_BODIES rules[4]',
      ]),
    },
  },
  // A base policy that a template extends: no catch-all on its own.
  'openshift-library-go/fragments-current/base-policy.yaml': {
    findings: { '': ['KAUDIT_LINT_NO_CATCH_ALL rules[1]'] },
  },
  // Bare rule lists, checked with --fragment as the rules of a Policy without policy-wide omitStages.
  'openshift-library-go/fragments-current/writerequestbodies-rules.yaml': {
    fragment: true,
    findings: {
      '': sorted([
        'KAUDIT_LINT_REQUEST_RECEIVED rules[0]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[2]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[2]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[2]',
      ]),
    },
  },
  'openshift-library-go/fragments-current/allrequestbodies-rules.yaml': {
    fragment: true,
    findings: {
      '': sorted([
        'KAUDIT_LINT_REQUEST_RECEIVED rules[0]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[2]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[2]',
        'KAUDIT_LINT_SENSITIVE_BODY rules[2]',
        'KAUDIT_LINT_LIST_BODIES rules[2]',
      ]),
    },
  },
};

describe('lint of the real policies in test/fixtures/third-party/policies', () => {
  it.each(Object.entries(EXPECTED))('%s', (file, want) => {
    const opts: { version?: string; fragment?: boolean } = {};
    if (want.version) opts.version = want.version;
    if (want.fragment) opts.fragment = true;
    expect(findings(`${SHARED_POLICIES}${file}`, opts)).toEqual(want.findings);
  });

  it('loads the OpenShift v1beta1 policies when checked against Kubernetes 1.23', () => {
    expect(findings(`${SHARED_POLICIES}openshift-library-go/default.yaml`, { version: '1.23' })).toEqual({
      '': [],
    });
  });

  it('loads each policy of the OpenShift ConfigMap, positioned in the ConfigMap file', () => {
    const got = findings(`${SHARED_POLICIES}openshift-library-go/audit-policies-cm.yaml`, {
      version: '1.23',
    });
    expect(Object.keys(got)).toEqual([
      'default.yaml',
      'writerequestbodies.yaml',
      'allrequestbodies.yaml',
      'secure-oauth-storage-default.yaml',
      'secure-oauth-storage-writerequestbodies.yaml',
      'secure-oauth-storage-allrequestbodies.yaml',
    ]);
    expect(got['default.yaml']).toEqual([]);
    expect(got['allrequestbodies.yaml']).toContain('KAUDIT_LINT_LIST_BODIES rules[5]');
    const [cm] = lintPolicyText(
      readFileSync(`${SHARED_POLICIES}openshift-library-go/audit-policies-cm.yaml`, 'utf8'),
      {
        file: 'cm.yaml',
      },
    );
    // `apiVersion: audit.k8s.io/v1beta1` of the first entry sits on line 8, indented by 4.
    expect(cm?.diagnostics[0]).toMatchObject({
      file: 'cm.yaml#default.yaml',
      line: 8,
      column: 5,
      code: 'KAUDIT_POLICY_API_VERSION',
    });
  });

  it('refuses a bare rule list unless --fragment', () => {
    const got = findings(
      `${SHARED_POLICIES}openshift-library-go/fragments-current/allrequestbodies-rules.yaml`,
    );
    expect(got).toEqual({ '': ['KAUDIT_POLICY_FRAGMENT '] });
  });

  it('reads YAML 1.1 as kube-apiserver does: an unquoted "no" is not a namespace name', () => {
    const [r] = lintPolicyText(
      'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  namespaces: [no]\n- level: Metadata\n',
    );
    expect(r?.diagnostics[0]).toMatchObject({
      severity: 'error',
      code: 'KAUDIT_POLICY_TYPE',
      path: 'rules[0].namespaces[0]',
      line: 5,
      column: 16,
    });
  });

  it('drops a field written in the wrong case, as kube-apiserver does, and says so', () => {
    const [r] = lintPolicyText('apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- Level: None\n');
    expect(r?.diagnostics.map((d) => [d.severity, d.code, d.path, d.hint])).toEqual([
      [
        'warning',
        'KAUDIT_POLICY_UNKNOWN_FIELD',
        'rules[0].Level',
        'field names are case-sensitive: did you mean "level"?',
      ],
      [
        'error',
        'KAUDIT_POLICY_LEVEL_REQUIRED',
        'rules[0].level',
        'one of None, Metadata, Request, RequestResponse',
      ],
    ]);
  });

  it('reads only the first YAML document, as kube-apiserver does', () => {
    const [r, ...more] = lintPolicyText(
      'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n---\nrules: []\n',
    );
    expect(more).toEqual([]);
    expect(r?.diagnostics.map((d) => `${d.code} ${d.line}`)).toEqual([
      'KAUDIT_LINT_REQUEST_RECEIVED 4',
      'KAUDIT_POLICY_MULTIPLE_DOCUMENTS 5',
    ]);
  });

  it('only informs about token requests at Request: their request body holds no token', () => {
    const [r] = lintPolicyText(readFileSync(`${SHARED_POLICIES}kubernetes-docs-audit-policy.yaml`, 'utf8'));
    const token = r?.diagnostics.filter(
      (d) => d.code === 'KAUDIT_LINT_SENSITIVE_BODY' && d.message.includes('serviceaccounts/token'),
    );
    expect(token?.map((d) => [d.severity, d.path])).toEqual([['info', 'rules[7]']]);
  });

  it('points at the line and column of each finding', () => {
    const [r] = lintPolicyText(
      readFileSync(`${SHARED_POLICIES}falcosecurity-plugins-k8saudit-audit-policy.yaml`, 'utf8'),
      {
        file: 'falco.yaml',
      },
    );
    expect(r?.diagnostics.find((d) => d.code === 'KAUDIT_LINT_WRONG_GROUP')).toMatchObject({
      line: 13,
      column: 27,
    });
  });
});

describe('lint of our fixtures', () => {
  it('reports the misplaced verbs of the seed page example, which kube-apiserver silently drops', () => {
    const got = findings(`${FIXTURES}seed-page-verbatim.yaml`)[''];
    expect(got).toContain('KAUDIT_POLICY_UNKNOWN_FIELD rules[3].resources[0].verbs');
    // With the verbs dropped, every read of pods (lists included) is logged with its response.
    expect(got).toContain('KAUDIT_LINT_LIST_BODIES rules[3]');
  });

  it('finds shadowed rules, fake wildcards, RBAC-only verbs and typos', () => {
    expect(findings(`${FIXTURES}shadowed-and-typos.yaml`)['']).toEqual(
      sorted([
        'KAUDIT_LINT_SHADOWED rules[1]',
        'KAUDIT_LINT_UNKNOWN_VERB rules[2].verbs[0]',
        'KAUDIT_LINT_NOT_A_WILDCARD rules[2].verbs[1]',
        'KAUDIT_LINT_UNKNOWN_VERB rules[2].verbs[2]',
        'KAUDIT_LINT_UNKNOWN_RESOURCE rules[2].resources[0].resources[0]',
        'KAUDIT_LINT_UNKNOWN_RESOURCE rules[2].resources[0].resources[1]',
        'KAUDIT_LINT_UNKNOWN_RESOURCE rules[2].resources[1].resources[0]',
      ]),
    );
  });

  it('suggests the verb or resource that was meant', () => {
    const [r] = lintPolicyText(readFileSync(`${FIXTURES}shadowed-and-typos.yaml`, 'utf8'));
    const hints = Object.fromEntries((r?.diagnostics ?? []).map((d) => [d.path, d.hint]));
    expect(hints['rules[2].verbs[0]']).toBe('did you mean "list"?');
    expect(hints['rules[2].resources[0].resources[0]']).toBe('did you mean "secrets"?');
    expect(hints['rules[2].resources[0].resources[1]']).toBe('did you mean "pods/exec"?');
  });

  it('reports every validation error at once, each with its position', () => {
    const [r] = lintPolicyText(readFileSync(`${FIXTURES}invalid-many.yaml`, 'utf8'), {
      file: 'invalid-many.yaml',
    });
    const errors = (r?.diagnostics ?? []).filter((d) => d.severity === 'error');
    expect(errors.map((d) => `${d.line}:${d.column} ${d.path}`)).toEqual([
      '3:14 omitStages[0]',
      '7:5 rules[0].nonResourceURLs',
      '8:5 rules[1].level',
      '11:9 rules[2].resources[0].group',
      '14:9 rules[2].resources[1].resourceNames',
    ]);
  });

  it('lints each policy of a ConfigMap separately', () => {
    expect(findings(`${FIXTURES}configmap-two-policies.yaml`)).toEqual({
      'good.yaml': ['KAUDIT_LINT_REQUEST_RECEIVED rules[0]'],
      'bad.yaml': sorted([
        'KAUDIT_POLICY_LEVEL rules[0].level',
        'KAUDIT_POLICY_NONRESOURCE_URL rules[0].nonResourceURLs[0]',
        'KAUDIT_LINT_NO_CATCH_ALL rules[0]',
      ]),
    });
  });
});

describe('ruleCovers', () => {
  const f = policyFeatures();
  it('knows pods/* covers pods and its subresources, but pods does not cover pods/log', () => {
    expect(
      ruleCovers(
        { level: 'None', resources: [{ resources: ['pods/*'] }] },
        { level: 'None', resources: [{ resources: ['pods', 'pods/log'] }] },
        f,
      ),
    ).toBe(true);
    expect(
      ruleCovers(
        { level: 'None', resources: [{ resources: ['pods'] }] },
        { level: 'None', resources: [{ resources: ['pods/log'] }] },
        f,
      ),
    ).toBe(false);
    expect(
      ruleCovers(
        { level: 'None', resources: [{ resources: ['*/scale'] }] },
        { level: 'None', resources: [{ group: 'apps', resources: ['deployments/scale'] }] },
        f,
      ),
    ).toBe(false);
    expect(
      ruleCovers(
        { level: 'None', resources: [{ group: 'apps', resources: ['*/scale'] }] },
        { level: 'None', resources: [{ group: 'apps', resources: ['deployments/scale'] }] },
        f,
      ),
    ).toBe(true);
  });
  it('knows "*/*" matches nothing, so it covers nothing', () => {
    const starStar = { level: 'None', resources: [{ resources: ['*/*'] }] };
    expect(ruleCovers(starStar, { level: 'None', resources: [{ resources: ['pods/*'] }] }, f)).toBe(false);
    expect(ruleCovers(starStar, { level: 'None', resources: [{ resources: ['pods/log'] }] }, f)).toBe(false);
  });

  it('treats group "*" as every group only from Kubernetes 1.36', () => {
    const star = { level: 'None', resources: [{ group: '*' }] };
    const apps = { level: 'None', resources: [{ group: 'apps', resources: ['deployments'] }] };
    expect(ruleCovers(star, apps, f)).toBe(true);
    expect(ruleCovers(star, apps, policyFeatures(parseKubeVersion('1.35')))).toBe(false);
  });
  it('knows a URL prefix covers longer prefixes, and resource rules never cover URL rules', () => {
    expect(
      ruleCovers(
        { level: 'None', nonResourceURLs: ['/healthz*'] },
        { level: 'None', nonResourceURLs: ['/healthz/etcd', '/healthz/x*'] },
        f,
      ),
    ).toBe(true);
    expect(
      ruleCovers(
        { level: 'None', nonResourceURLs: ['/healthz'] },
        { level: 'None', nonResourceURLs: ['/healthz*'] },
        f,
      ),
    ).toBe(false);
    expect(
      ruleCovers({ level: 'None', namespaces: ['default'] }, { level: 'None', nonResourceURLs: ['/x'] }, f),
    ).toBe(false);
    expect(ruleCovers({ level: 'None', verbs: ['get'] }, { level: 'None' }, f)).toBe(false);
  });
  it('finds a rule shadowed by several earlier rules together', () => {
    const policy: Policy = {
      omitStages: ['RequestReceived'],
      rules: [
        { level: 'None', verbs: ['get'], resources: [{ resources: ['pods/*'] }] },
        { level: 'Metadata', verbs: ['list', 'watch'] },
        { level: 'Request', verbs: ['get', 'list'], resources: [{ resources: ['pods', 'pods/log'] }] },
        { level: 'Request', verbs: ['get', 'create'], resources: [{ resources: ['pods'] }] },
        { level: 'Metadata' },
      ],
    };
    const shadowed = lintPolicy(policy).filter((d) => d.code === 'KAUDIT_LINT_SHADOWED');
    expect(shadowed.map((d) => [d.path, d.message])).toEqual([
      [
        'rules[2]',
        'rules[2] can never match: between them rules[0], rules[1] come first and match every request it would',
      ],
    ]);
  });

  it('does not call a rule shadowed when the earlier rule restricts names', () => {
    const policy: Policy = {
      rules: [
        { level: 'None', resources: [{ resources: ['configmaps'], resourceNames: ['leader'] }] },
        { level: 'Metadata', resources: [{ resources: ['configmaps'] }] },
        { level: 'Metadata' },
      ],
      omitStages: ['RequestReceived'],
    };
    expect(lintPolicy(policy)).toEqual([]);
  });
});

describe('lintPolicy on large policies', () => {
  function largePolicy(n: number, extra: Policy['rules'] = []): Policy {
    const rules: Policy['rules'] = [];
    for (let i = 0; i < n; i++) {
      rules.push({
        level: 'Metadata',
        users: [`user-${i}`],
        verbs: ['get', 'list'],
        resources: [{ group: '', resources: ['services', 'configmaps'] }],
        namespaces: [`ns-${i}`],
      });
    }
    for (let i = 0; i < n; i++) {
      rules.push({ level: 'Request', verbs: ['get'], resources: [{ group: `g${i}.example.com` }] });
    }
    return {
      apiVersion: 'audit.k8s.io/v1',
      kind: 'Policy',
      rules: [...rules, ...extra, { level: 'Metadata' }],
    };
  }

  /** Reads of rule fields while linting: the work done, counted without a clock. */
  function fieldReads(policy: Policy): number {
    let reads = 0;
    const rules = policy.rules.map(
      (r) =>
        new Proxy(r, {
          get(target, key, receiver) {
            reads++;
            return Reflect.get(target, key, receiver);
          },
        }),
    );
    lintPolicy({ ...policy, rules });
    return reads;
  }

  // One rule per user and namespace, then one per API group: each rule is compared with the earlier
  // ones that could cover it, not with all of them (pair by pair, a 1 MB policy took 15 s).
  it('does work linear in the number of rules', () => {
    const small = fieldReads(largePolicy(500));
    const large = fieldReads(largePolicy(2000));
    expect(large / small).toBeLessThan(6);
  });

  it('still finds the shadowed rules among 6000', () => {
    const policy = largePolicy(3000, [
      {
        level: 'Metadata',
        users: ['user-5'],
        verbs: ['get'],
        resources: [{ group: '', resources: ['services'] }],
        namespaces: ['ns-5'],
      },
      { level: 'None', verbs: ['get'], resources: [{ group: 'g1.example.com', resources: ['x'] }] },
    ]);
    const shadowed = lintPolicy(policy)
      .filter((d) => d.code === 'KAUDIT_LINT_SHADOWED')
      .map((d) => d.message);
    expect(shadowed).toEqual([
      'rules[6000] can never match: rules[5] comes first and matches every request it would',
      'rules[6001] can never match: rules[3001] comes first and matches every request it would',
    ]);
  });
});
