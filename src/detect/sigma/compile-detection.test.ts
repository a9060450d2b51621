import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { required } from '../engine.js';
import type { Rule } from '../rule.js';
import { completeTestEvent, runEvents } from '../rule-tests.js';
import { parseWildcards, translateRegex } from './compile-detection.js';
import { loadSigmaText } from './load-sigma.js';

/** A Kubernetes audit Sigma rule with this detection, loaded; it must load without problems. */
function rule(detection: Record<string, unknown>): Rule {
  const text = stringify({
    title: 'Test Rule',
    id: '00000000-0000-4000-8000-000000000001',
    logsource: { product: 'kubernetes', service: 'audit' },
    detection,
    level: 'medium',
  });
  const { rules, diagnostics } = loadSigmaText(text, 'inline.yml');
  expect(diagnostics).toEqual([]);
  expect(rules).toHaveLength(1);
  return rules[0] as Rule;
}

/** Does one field test (`selection: {key: value}`) match the event? */
function matches(key: string, value: unknown, event: Record<string, unknown>): boolean {
  return fires(rule({ selection: { [key]: value }, condition: 'selection' }), event);
}

function fires(r: Rule, event: Record<string, unknown>): boolean {
  return runEvents(r, [completeTestEvent(event, 0)]).length > 0;
}

const pod = (over: Record<string, unknown> = {}) => ({
  verb: 'create',
  requestURI: '/api/v1/namespaces/default/pods',
  objectRef: { resource: 'pods', namespace: 'default', name: 'web-1', apiVersion: 'v1' },
  ...over,
});

describe('plain values', () => {
  it('match the whole value, case-insensitively', () => {
    expect(matches('objectRef.namespace', 'DEFAULT', pod())).toBe(true);
    expect(matches('objectRef.namespace', 'defaul', pod())).toBe(false);
    expect(matches('user.username', 'Test-User', pod())).toBe(true);
  });

  it('cased makes them case-sensitive', () => {
    expect(matches('user.username|cased', 'Test-User', pod())).toBe(false);
    expect(matches('user.username|cased', 'test-user', pod())).toBe(true);
  });

  it('a list of values is OR', () => {
    expect(matches('verb', ['delete', 'create'], pod())).toBe(true);
    expect(matches('verb', ['delete', 'patch'], pod())).toBe(false);
  });

  it('verb and resource compare against their lowercase form, so the engine can dispatch on them', () => {
    const r = rule({
      selection: { verb: ['CREATE', 'Patch'], 'objectRef.resource': 'Pods' },
      condition: 'selection',
    });
    expect(fires(r, pod())).toBe(true);
    expect(required(r.match, ['verb'])).toEqual(new Set(['create', 'patch']));
    expect(required(r.match, ['objectRef', 'resource'])).toEqual(new Set(['pods']));
  });

  it('match inside a list field: any element', () => {
    const e = pod({ user: { username: 'alice', groups: ['dev', 'system:authenticated'] } });
    expect(matches('user.groups', 'DEV', e)).toBe(true);
    expect(matches('user.groups', 'ops', e)).toBe(false);
  });
});

describe('wildcards', () => {
  it('* is any run of characters, ? exactly one', () => {
    expect(matches('objectRef.name', 'web-?', pod())).toBe(true);
    expect(matches('objectRef.name', 'web-?', pod({ objectRef: { resource: 'pods', name: 'web-12' } }))).toBe(
      false,
    );
    expect(matches('objectRef.name', 'W*1', pod())).toBe(true);
    expect(matches('requestURI', '/api/*/pods', pod())).toBe(true);
    expect(matches('requestURI', '/api/*/secrets', pod())).toBe(false);
  });

  it('a value of only * means the field is there', () => {
    expect(matches('objectRef.name', '*', pod())).toBe(true);
    expect(matches('objectRef.subresource', '*', pod())).toBe(false);
  });

  it('a backslash escapes a wildcard, and itself before one', () => {
    const literal = pod({ requestURI: '/api*' });
    expect(matches('requestURI', '/api\\*', literal)).toBe(true);
    expect(matches('requestURI', '/api\\*', pod({ requestURI: '/apis' }))).toBe(false);
    expect(matches('requestURI', '/api\\?', pod({ requestURI: '/api?' }))).toBe(true);
    expect(matches('requestURI', '/api\\?', pod({ requestURI: '/apis' }))).toBe(false);
    // `\\*`: a backslash, then a wildcard.
    expect(matches('userAgent', 'C:\\\\*', pod({ userAgent: 'C:\\Windows' }))).toBe(true);
    // A backslash before anything else is a plain backslash.
    expect(matches('userAgent', 'C:\\Windows', pod({ userAgent: 'C:\\Windows' }))).toBe(true);
  });

  it('parseWildcards follows the escaping rules of the specification', () => {
    const STAR = parseWildcards('*')[0];
    const ONE = parseWildcards('?')[0];
    expect(parseWildcards('a\\*b')).toEqual(['a*b']);
    expect(parseWildcards('a\\\\*')).toEqual(['a\\', STAR]);
    expect(parseWildcards('a\\\\\\*')).toEqual(['a\\*']);
    expect(parseWildcards('a\\b')).toEqual(['a\\b']);
    expect(parseWildcards('a**?')).toEqual(['a', STAR, ONE]);
  });
});

/**
 * The obvious twin of the compiled string tests: Sigma's wildcard matching by backtracking over
 * the parsed pattern, case folded.
 */
function naiveMatch(
  pattern: string,
  mode: 'equals' | 'contains' | 'startswith' | 'endswith',
  text: string,
): boolean {
  type Part = ReturnType<typeof parseWildcards>[number];
  const STAR = parseWildcards('*')[0] as Part;
  const ONE = parseWildcards('?')[0] as Part;
  let parts = parseWildcards(pattern);
  if (mode === 'contains' || mode === 'endswith') parts = [STAR, ...parts];
  if (mode === 'contains' || mode === 'startswith') parts = [...parts, STAR];
  const s = text.toLowerCase();
  const from = (i: number, j: number): boolean => {
    if (i === parts.length) return j === s.length;
    const p = parts[i];
    if (p === STAR) {
      for (let k = j; k <= s.length; k++) if (from(i + 1, k)) return true;
      return false;
    }
    if (p === ONE) return j < s.length && from(i + 1, j + 1);
    const lit = String(p).toLowerCase();
    return s.startsWith(lit, j) && from(i + 1, j + lit.length);
  };
  return from(0, 0);
}

describe('string matching against its obvious twin', () => {
  it('plain values and contains/startswith/endswith agree with backtracking (random patterns)', () => {
    const chars = fc.constantFrom('a', 'B', 'b', '.', '/', '*', '?', '\\', '(', '1');
    const text = fc.array(chars, { maxLength: 8 }).map((c) => c.join(''));
    const mode = fc.constantFrom(
      'equals' as const,
      'contains' as const,
      'startswith' as const,
      'endswith' as const,
    );
    fc.assert(
      fc.property(text, mode, fc.array(text, { minLength: 1, maxLength: 4 }), (pattern, m, values) => {
        const key = m === 'equals' ? 'userAgent' : `userAgent|${m}`;
        const r = rule({ selection: { [key]: pattern }, condition: 'selection' });
        for (const v of values)
          expect(fires(r, pod({ userAgent: v })), `${key}: ${pattern} on ${v}`).toBe(
            naiveMatch(pattern, m, v),
          );
      }),
      { seed: 18, numRuns: 300 },
    );
  });
});

describe('modifiers', () => {
  it('contains, startswith, endswith: case-insensitive, wildcards still work', () => {
    const e = pod({ userAgent: 'kubectl/v1.30.2 (linux/amd64) kubernetes/3968350' });
    expect(matches('userAgent|contains', 'LINUX', e)).toBe(true);
    expect(matches('userAgent|contains', 'darwin', e)).toBe(false);
    expect(matches('userAgent|startswith', 'KubeCtl/', e)).toBe(true);
    expect(matches('userAgent|startswith', 'v1.30', e)).toBe(false);
    expect(matches('userAgent|endswith', '3968350', e)).toBe(true);
    expect(matches('userAgent|endswith', 'kubernetes', e)).toBe(false);
    expect(matches('userAgent|contains', 'v1.*(linux', e)).toBe(true);
    expect(matches('userAgent|contains|cased', 'LINUX', e)).toBe(false);
  });

  it('contains on a list field looks inside each element', () => {
    const e = pod({ user: { username: 'alice', groups: ['platform-admins'] } });
    expect(matches('user.groups|contains', 'admin', e)).toBe(true);
    expect(matches('user.groups|contains', 'root', e)).toBe(false);
  });

  it('all turns a list of values into AND', () => {
    const e = pod({ requestURI: '/api/v1/namespaces/x/pods/y/exec?command=sh&command=-c' });
    expect(matches('requestURI|contains|all', ['/exec', 'command=sh'], e)).toBe(true);
    expect(matches('requestURI|contains|all', ['/exec', 'command=bash'], e)).toBe(false);
    expect(matches('requestURI|contains', ['/exec', 'command=bash'], e)).toBe(true);
  });

  it('re is case-sensitive unless i or a leading (?i)', () => {
    const e = pod({ userAgent: 'Mozilla/5.0' });
    expect(matches('userAgent|re', '^Mozilla/\\d', e)).toBe(true);
    expect(matches('userAgent|re', '^mozilla', e)).toBe(false);
    expect(matches('userAgent|re|i', '^mozilla', e)).toBe(true);
    expect(matches('userAgent|re', '(?i)^mozilla', e)).toBe(true);
    expect(matches('userAgent|re|ignorecase', '^mozilla', e)).toBe(true);
    // Unanchored, as regular expressions are.
    expect(matches('userAgent|re', 'zilla', e)).toBe(true);
  });

  it('re sub-modifiers m and s', () => {
    const e = pod({ responseStatus: { code: 500, message: 'first line\nsecond line' } });
    expect(matches('responseStatus.message|re', 'line.second', e)).toBe(false);
    expect(matches('responseStatus.message|re|s', 'line.second', e)).toBe(true);
    expect(matches('responseStatus.message|re', '^second', e)).toBe(false);
    expect(matches('responseStatus.message|re|m', '^second', e)).toBe(true);
    expect(matches('responseStatus.message|re|m', 'line$', e)).toBe(true);
  });

  it('translateRegex: flags, Python named groups, PCRE classes', () => {
    expect(translateRegex('(?is)a.b', { i: false, m: false, s: false })).toEqual({
      source: 'a[\\s\\S]b',
      ignoreCase: true,
    });
    expect(translateRegex('[.]x.', { i: false, m: false, s: true })).toEqual({
      source: '[.]x[\\s\\S]',
      ignoreCase: false,
    });
    expect(translateRegex('(?P<n>a)', { i: false, m: false, s: false })).toMatchObject({ source: '(?<n>a)' });
    expect(translateRegex('[]a]', { i: false, m: false, s: false })).toMatchObject({ source: '[\\]a]' });
    expect(translateRegex('(', { i: false, m: false, s: false })).toHaveProperty('error');
  });

  it('cidr matches any source IP in the ranges, IPv4 and IPv6', () => {
    expect(matches('sourceIPs|cidr', '10.0.0.0/8', pod({ sourceIPs: ['10.1.2.3'] }))).toBe(true);
    expect(matches('sourceIPs|cidr', '10.0.0.0/8', pod({ sourceIPs: ['192.168.1.1'] }))).toBe(false);
    expect(matches('sourceIPs|cidr', ['192.168.0.0/16', 'fd00::/8'], pod({ sourceIPs: ['fd12::1'] }))).toBe(
      true,
    );
  });

  it('exists: true and false', () => {
    expect(matches('objectRef.subresource|exists', true, pod())).toBe(false);
    expect(matches('objectRef.subresource|exists', false, pod())).toBe(true);
    expect(matches('objectRef.name|exists', true, pod())).toBe(true);
  });

  it('gt, gte, lt, lte compare numbers', () => {
    const e = pod({ responseStatus: { code: 503 } });
    expect(matches('responseStatus.code|gte', 500, e)).toBe(true);
    expect(matches('responseStatus.code|gt', 503, e)).toBe(false);
    expect(matches('responseStatus.code|lt', '504', e)).toBe(true);
    expect(matches('responseStatus.code|lte', 499, e)).toBe(false);
  });

  it('neq: the field differs from every value', () => {
    expect(matches('verb|neq', 'get', pod())).toBe(true);
    expect(matches('verb|neq', ['get', 'create'], pod())).toBe(false);
  });
});

describe('special values', () => {
  it('null means the field is absent', () => {
    const clusterScoped = { verb: 'create', objectRef: { resource: 'namespaces', name: 'x' } };
    expect(matches('objectRef.namespace', null, clusterScoped)).toBe(true);
    expect(matches('objectRef.namespace', null, pod())).toBe(false);
  });

  it('numbers compare as numbers, and match their text too', () => {
    const denied = pod({ responseStatus: { code: 403 } });
    expect(matches('responseStatus.code', 403, denied)).toBe(true);
    expect(matches('responseStatus.code', '403', denied)).toBe(true);
    expect(matches('responseStatus.code', [401, 404], denied)).toBe(false);
    expect(matches('responseStatus.code', 40, denied)).toBe(false);
  });

  it('true/false match booleans, quoted or not', () => {
    const e = pod({ requestObject: { spec: { hostNetwork: true } } });
    expect(matches('requestObject.spec.hostNetwork', true, e)).toBe(true);
    expect(matches('requestObject.spec.hostNetwork', 'true', e)).toBe(true);
    expect(matches('requestObject.spec.hostNetwork', 'false', e)).toBe(false);
    expect(matches('requestObject.spec.hostNetwork', false, e)).toBe(false);
  });

  it('an empty string matches an empty value only', () => {
    expect(matches('userAgent', '', pod({ userAgent: '' }))).toBe(true);
    expect(matches('userAgent', '', pod({ userAgent: 'curl/8' }))).toBe(false);
  });
});

describe('SigmaHQ field forms', () => {
  it('apiGroup is objectRef.apiGroup', () => {
    const e = pod({ objectRef: { resource: 'deployments', apiGroup: 'apps' } });
    expect(matches('apiGroup', 'apps', e)).toBe(true);
    expect(matches('apiGroup', 'batch', e)).toBe(false);
  });

  it('hostPath reads hostPath volumes of the pod spec of any workload', () => {
    const deployment = {
      verb: 'create',
      objectRef: { resource: 'deployments', apiGroup: 'apps' },
      requestObject: {
        kind: 'Deployment',
        spec: {
          template: {
            spec: {
              volumes: [
                { name: 'a', emptyDir: {} },
                { name: 'b', hostPath: { path: '/etc' } },
              ],
            },
          },
        },
      },
    };
    expect(matches('hostPath', '*', deployment)).toBe(true);
    expect(matches('hostPath|startswith', '/etc', deployment)).toBe(true);
    expect(matches('hostPath', '/var/run/docker.sock', deployment)).toBe(false);
    expect(
      matches('hostPath', '*', pod({ requestObject: { spec: { volumes: [{ name: 'a', emptyDir: {} }] } } })),
    ).toBe(false);
  });

  it('capabilities reads added capabilities of every container kind', () => {
    const e = pod({
      requestObject: {
        spec: {
          containers: [{ name: 'app', securityContext: { capabilities: { drop: ['ALL'] } } }],
          initContainers: [
            { name: 'init', securityContext: { capabilities: { add: ['NET_ADMIN', 'SYS_ADMIN'] } } },
          ],
        },
      },
    });
    expect(matches('capabilities', '*', e)).toBe(true);
    expect(matches('capabilities', 'sys_admin', e)).toBe(true);
    expect(matches('capabilities', 'SYS_PTRACE', e)).toBe(false);
    expect(matches('capabilities', '*', pod())).toBe(false);
  });

  it("responseStatus.code: 'ALLOW'/'DENY' is the authorization decision", () => {
    const allowed = pod({ annotations: { 'authorization.k8s.io/decision': 'allow' } });
    const refused = pod({
      responseStatus: { code: 403 },
      annotations: { 'authorization.k8s.io/decision': 'forbid' },
    });
    expect(matches('responseStatus.code', 'ALLOW', allowed)).toBe(true);
    expect(matches('responseStatus.code', 'ALLOW', refused)).toBe(false);
    expect(matches('responseStatus.code', 'DENY', refused)).toBe(true);
    expect(
      matches('responseStatus.code', ['DENY', 401], pod({ responseStatus: { code: 401 }, annotations: {} })),
    ).toBe(true);
  });

  it('annotations.<key> takes the whole rest as the key, dots and all', () => {
    const e = pod({ annotations: { 'pod-security.kubernetes.io/enforce-policy': 'restricted:latest' } });
    expect(matches('annotations.pod-security.kubernetes.io/enforce-policy|startswith', 'restricted', e)).toBe(
      true,
    );
    expect(matches('annotations["pod-security.kubernetes.io/enforce-policy"]', 'baseline:latest', e)).toBe(
      false,
    );
  });
});

describe('selections and conditions', () => {
  const exec = pod({ objectRef: { resource: 'pods', subresource: 'exec', namespace: 'kube-system' } });

  it('a map is AND, a list of maps is OR', () => {
    const and = rule({ sel: { verb: 'create', 'objectRef.subresource': 'exec' }, condition: 'sel' });
    expect(fires(and, exec)).toBe(true);
    expect(fires(and, pod())).toBe(false);
    const or = rule({ sel: [{ verb: 'delete' }, { 'objectRef.subresource': 'exec' }], condition: 'sel' });
    expect(fires(or, exec)).toBe(true);
    expect(fires(or, pod())).toBe(false);
  });

  it('and, or, not with parentheses', () => {
    const r = rule({
      sel_exec: { 'objectRef.subresource': 'exec' },
      sel_attach: { 'objectRef.subresource': 'attach' },
      filter_system: { 'objectRef.namespace': 'kube-system' },
      condition: '(sel_exec or sel_attach) and not filter_system',
    });
    expect(fires(r, exec)).toBe(false);
    expect(fires(r, pod({ objectRef: { resource: 'pods', subresource: 'attach', namespace: 'web' } }))).toBe(
      true,
    );
    expect(fires(r, pod())).toBe(false);
  });

  it('1 of / all of a pattern, and them', () => {
    const detection = {
      selection_verb: { verb: 'create' },
      selection_exec: { 'objectRef.subresource': 'exec' },
      _extra: { verb: 'delete' },
    };
    const one = rule({ ...detection, condition: '1 of selection_*' });
    const all = rule({ ...detection, condition: 'all of selection_*' });
    const allThem = rule({ ...detection, condition: 'all of them' });
    expect(fires(one, pod())).toBe(true);
    expect(fires(all, pod())).toBe(false);
    expect(fires(all, exec)).toBe(true);
    // `them` leaves out `_extra`, which would never hold together with verb: create.
    expect(fires(allThem, exec)).toBe(true);
  });

  it('a list of conditions is OR', () => {
    const r = rule({ a: { verb: 'delete' }, b: { 'objectRef.subresource': 'exec' }, condition: ['a', 'b'] });
    expect(fires(r, exec)).toBe(true);
    expect(fires(r, pod())).toBe(false);
  });
});
