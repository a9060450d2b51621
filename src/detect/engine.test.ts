import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../model/event.js';
import { DetectionEngine } from './engine.js';
import { loadRuleText } from './load-rules.js';
import type { Rule } from './rule.js';
import { completeTestEvent } from './rule-tests.js';

function rule(yaml: string): Rule {
  const { rules, diagnostics } = loadRuleText(`id: r\ntitle: R\nseverity: high\n${yaml}`, 'r.yaml', 'user');
  expect(diagnostics).toEqual([]);
  return rules[0] as Rule;
}

function ev(e: Record<string, unknown>, i = 0): AuditEvent {
  return completeTestEvent(e, i);
}

/** Does the one-test rule `cond` match the event? */
function matches(cond: string, e: Record<string, unknown>): boolean {
  const engine = new DetectionEngine([rule(`match: ${cond}\n`)]);
  return engine.process(ev(e), { cluster: 'c' }).length === 1;
}

describe('conditions', () => {
  const pod = {
    verb: 'create',
    objectRef: { resource: 'pods', namespace: 'web', name: 'p' },
    user: { username: 'alice', groups: ['dev', 'system:authenticated'] },
    sourceIPs: ['203.0.113.9', '10.0.0.1'],
    userAgent: 'kubectl/v1.30.0 (linux/amd64)',
    requestObject: {
      spec: {
        containers: [{ name: 'a', image: 'nginx:1', securityContext: { privileged: false } }],
        initContainers: [{ name: 'i', image: 'busybox', securityContext: { privileged: true } }],
        volumes: [{ name: 'h', hostPath: { path: '/etc' } }],
      },
    },
  };

  it('equals, in, prefix, suffix, glob, regex and ignoreCase', () => {
    expect(matches('{field: verb, equals: create}', pod)).toBe(true);
    expect(matches('{field: verb, equals: Create}', pod)).toBe(false);
    expect(matches('{field: verb, equals: Create, ignoreCase: true}', pod)).toBe(true);
    expect(matches('{field: verb, in: [get, create]}', pod)).toBe(true);
    expect(matches('{field: userAgent, prefix: kubectl/}', pod)).toBe(true);
    expect(matches('{field: userAgent, suffix: "(linux/amd64)"}', pod)).toBe(true);
    expect(matches('{field: userAgent, glob: "kubectl/v1.?0.*"}', pod)).toBe(true);
    expect(matches('{field: userAgent, glob: "kubectl"}', pod)).toBe(false);
    expect(matches('{field: userAgent, regex: "^kubectl/v1\\\\.3"}', pod)).toBe(true);
    expect(matches('{field: userAgent, regex: "KUBECTL", ignoreCase: true}', pod)).toBe(true);
    expect(matches('{field: userAgent, prefix: [curl, kubectl]}', pod)).toBe(true);
  });

  it('numbers compare as numbers; a missing field matches no comparison', () => {
    expect(matches('{field: responseStatus.code, lt: 400}', pod)).toBe(true);
    expect(matches('{field: responseStatus.code, gte: 400}', pod)).toBe(false);
    expect(matches('{field: responseStatus.nothing, lt: 400}', pod)).toBe(false);
    expect(matches('{field: responseStatus.code, equals: 200}', pod)).toBe(true);
    expect(matches('{field: responseStatus.code, equals: "200"}', pod)).toBe(false);
  });

  it('an array field matches when any element does; contains asks for an element', () => {
    expect(matches('{field: sourceIPs, cidr: 10.0.0.0/8}', pod)).toBe(true);
    expect(matches('{field: sourceIP, cidr: 10.0.0.0/8}', pod)).toBe(false);
    expect(matches('{field: sourceIP, cidr: [10.0.0.0/8, 203.0.113.0/24]}', pod)).toBe(true);
    expect(matches('{field: user.groups, contains: dev}', pod)).toBe(true);
    expect(matches('{field: user.groups, contains: de}', pod)).toBe(false);
    expect(matches('{field: userAgent, contains: linux}', pod)).toBe(true);
    // a path through an array walks every element
    expect(matches('{field: requestObject.spec.volumes.hostPath.path, equals: /etc}', pod)).toBe(true);
  });

  it('a mapping is tested as its JSON text by string operators', () => {
    const cm = {
      verb: 'create',
      objectRef: { resource: 'configmaps' },
      requestObject: { data: { DB_PASSWORD: 'x' } },
    };
    expect(matches('{field: requestObject.data, regex: password, ignoreCase: true}', cm)).toBe(true);
    expect(matches('{field: requestObject.data, contains: DB_PASSWORD}', cm)).toBe(true);
  });

  it('exists, not, any, all', () => {
    expect(matches('{field: objectRef.subresource, exists: false}', pod)).toBe(true);
    expect(matches('{field: objectRef.namespace, exists: true}', pod)).toBe(true);
    expect(matches('{not: {field: verb, equals: create}}', pod)).toBe(false);
    expect(matches('{any: [{field: verb, equals: get}, {field: verb, equals: create}]}', pod)).toBe(true);
    expect(matches('{all: [{field: verb, equals: get}, {field: verb, equals: create}]}', pod)).toBe(false);
  });

  it('quantifiers over containers (init and ephemeral included)', () => {
    expect(
      matches('{field: containers, anyOf: {field: securityContext.privileged, equals: true}}', pod),
    ).toBe(true);
    expect(
      matches('{field: containers, allOf: {field: securityContext.privileged, equals: true}}', pod),
    ).toBe(false);
    expect(matches('{field: containers, noneOf: {field: image, prefix: busybox}}', pod)).toBe(false);
    expect(matches('{field: podSpec.volumes, anyOf: {field: hostPath.path, in: [/etc, /]}}', pod)).toBe(true);
  });

  it('podSpec finds the pod template of every workload kind', () => {
    const spec = { hostPID: true, containers: [{ name: 'x', image: 'x' }] };
    const bodies = [
      { spec: { template: { spec } } },
      { spec: { jobTemplate: { spec: { template: { spec } } } } },
      { spec },
    ];
    for (const requestObject of bodies)
      expect(matches('{field: podSpec.hostPID, equals: true}', { verb: 'create', requestObject })).toBe(true);
  });

  it('subject is the impersonated user when there is one; decision is derived from a 403', () => {
    const imp = { verb: 'get', user: { username: 'admin' }, impersonatedUser: { username: 'system:admin' } };
    expect(matches('{field: subject, equals: "system:admin"}', imp)).toBe(true);
    const denied = {
      verb: 'get',
      responseStatus: {
        code: 403,
        message: 'pods is forbidden: User "bob" cannot get resource "pods" in API group ""',
      },
    };
    expect(matches('{field: decision, equals: forbid}', denied)).toBe(true);
    expect(matches(`{field: 'annotations["authorization.k8s.io/decision"]', equals: allow}`, pod)).toBe(true);
  });
});

describe('allowlists', () => {
  const r = rule(`match: {field: verb, equals: create}
allow:
  images: [registry.example.com/*, "busybox:*"]
  sourceCidrs: [192.168.0.0/16]
`);
  const withImages = (...images: string[]) =>
    ev({ verb: 'create', requestObject: { spec: { containers: images.map((image) => ({ image })) } } });

  it('an event is left alone only when every container image is allowed', () => {
    const engine = new DetectionEngine([r]);
    expect(
      engine.process(withImages('registry.example.com/app:1', 'busybox:1.36'), { cluster: 'c' }),
    ).toEqual([]);
    expect(
      engine.process(withImages('registry.example.com/app:1', 'evil.io/miner'), { cluster: 'c' }),
    ).toHaveLength(1);
  });

  it('source CIDRs, and the config extends every rule', () => {
    const e = ev({ verb: 'create', sourceIPs: ['192.168.3.4'] });
    expect(new DetectionEngine([r]).process(e, { cluster: 'c' })).toEqual([]);
    const other = ev({ verb: 'create', user: { username: 'ci-bot' } });
    expect(new DetectionEngine([r]).process(other, { cluster: 'c' })).toHaveLength(1);
    expect(
      new DetectionEngine([r], { allow: { subjects: ['ci-bot'] } }).process(other, { cluster: 'c' }),
    ).toEqual([]);
  });
});

describe('alerts', () => {
  it('carry the rule, the event and a message filled from the event', () => {
    const r = rule(`technique: T1609
tactic: TA0002
equivalents: ["falco:Attach/Exec Pod"]
match: {field: objectRef.subresource, equals: exec}
message: "{subject} ran exec in {objectRef.namespace}/{objectRef.name}{nothing.here}"
`);
    const e = ev({
      verb: 'create',
      objectRef: { resource: 'pods', subresource: 'exec', namespace: 'web', name: 'p1' },
      user: { username: 'alice' },
    });
    const [a] = new DetectionEngine([r]).process(e, { cluster: 'prod' });
    expect(a).toEqual({
      time: e.stageTimestamp,
      rule: {
        id: 'r',
        title: 'R',
        severity: 'high',
        tactic: ['TA0002'],
        technique: ['T1609'],
        equivalents: ['falco:Attach/Exec Pod'],
        source: 'user',
      },
      auditID: e.auditID,
      stage: 'ResponseComplete',
      subject: 'alice',
      sourceIP: '10.0.0.1',
      userAgent: null,
      verb: 'create',
      resource: 'pods/exec',
      namespace: 'web',
      name: 'p1',
      cluster: 'prod',
      message: 'alice ran exec in web/p1',
    });
  });

  it('dispatch on verb and resource never hides a rule that can match', () => {
    const rules = [
      rule('match: {all: [{field: verb, in: [get]}, {field: objectRef.resource, equals: secrets}]}'),
      { ...rule('match: {field: userAgent, prefix: curl}'), id: 'any-verb' },
      {
        ...rule('match: {any: [{field: verb, equals: delete}, {field: verb, equals: get}]}'),
        id: 'get-or-delete',
      },
    ];
    const engine = new DetectionEngine(rules);
    const ids = (e: Record<string, unknown>) => engine.process(ev(e), { cluster: 'c' }).map((a) => a.rule.id);
    expect(ids({ verb: 'get', objectRef: { resource: 'secrets' }, userAgent: 'curl/8' })).toEqual([
      'r',
      'any-verb',
      'get-or-delete',
    ]);
    expect(ids({ verb: 'get', objectRef: { resource: 'pods' }, userAgent: 'curl/8' })).toEqual([
      'any-verb',
      'get-or-delete',
    ]);
    expect(ids({ verb: 'list', userAgent: 'kubectl' })).toEqual([]);
  });
});

describe('stateful rules', () => {
  const at = (minute: number, e: Record<string, unknown>) => {
    const t = new Date(Date.parse('2026-01-15T09:00:00Z') + minute * 60_000).toISOString();
    return ev({
      ...e,
      auditID: `a${minute}-${Math.random()}`,
      requestReceivedTimestamp: t,
      stageTimestamp: t,
    });
  };

  it('threshold counts events per key within the window, then starts again', () => {
    const r = rule(`kind: threshold
match: {field: responseStatus.code, equals: 403}
threshold: {groupBy: [sourceIP], window: 10m, count: 3}
`);
    const engine = new DetectionEngine([r]);
    const deny = (m: number, ip = '1.2.3.4') =>
      engine.process(at(m, { verb: 'get', sourceIPs: [ip], responseStatus: { code: 403 } }), {
        cluster: 'c',
      });
    expect(deny(0)).toEqual([]);
    expect(deny(1, '5.6.7.8')).toEqual([]);
    expect(deny(11)).toEqual([]); // minute 0 fell out of the window
    expect(deny(12)).toEqual([]);
    const [a] = deny(13);
    expect(a?.auditIDs).toHaveLength(3);
    expect(deny(14)).toEqual([]); // counting starts again after an alert
  });

  it('threshold with distinct counts distinct values', () => {
    const r = rule(`kind: threshold
match: {field: objectRef.resource, equals: secrets}
threshold: {groupBy: [subject], window: 10m, count: 3, distinct: objectRef.namespace}
`);
    const engine = new DetectionEngine([r]);
    const read = (m: number, ns: string) =>
      engine.process(at(m, { verb: 'list', objectRef: { resource: 'secrets', namespace: ns } }), {
        cluster: 'c',
      });
    expect(read(0, 'a')).toEqual([]);
    expect(read(1, 'a')).toEqual([]);
    expect(read(2, 'b')).toEqual([]);
    expect(read(3, 'c')).toHaveLength(1);
  });

  it('new term learns first, then reports a value never seen for the key', () => {
    const r = rule(`kind: new_term
match: {field: verb, equals: get}
newTerm: {key: [subject], value: userAgent, learn: 1h}
`);
    const engine = new DetectionEngine([r]);
    const get = (m: number, user: string, ua: string) =>
      engine.process(at(m, { verb: 'get', user: { username: user }, userAgent: ua }), { cluster: 'c' });
    expect(get(0, 'sa', 'app/1')).toEqual([]);
    expect(get(30, 'sa', 'curl/8')).toEqual([]); // still learning
    expect(get(61, 'sa', 'curl/8')).toEqual([]); // learnt
    expect(get(62, 'sa', 'python-requests/2')).toHaveLength(1);
    expect(get(63, 'sa', 'python-requests/2')).toEqual([]);
  });

  it('sequence: the steps in order by the same key within the window', () => {
    const r = rule(`kind: sequence
sequence:
  by: [subject]
  window: 10m
  steps:
    - match: {field: objectRef.resource, equals: rolebindings}
    - match: {field: objectRef.resource, equals: pods}
`);
    const engine = new DetectionEngine([r]);
    const req = (m: number, user: string, resource: string) =>
      engine.process(at(m, { verb: 'create', user: { username: user }, objectRef: { resource } }), {
        cluster: 'c',
      });
    expect(req(0, 'eve', 'pods')).toEqual([]); // B before A
    expect(req(1, 'eve', 'rolebindings')).toEqual([]);
    expect(req(2, 'bob', 'pods')).toEqual([]); // another subject
    const [a] = req(3, 'eve', 'pods');
    expect(a?.auditIDs).toHaveLength(2);
    expect(req(20, 'eve', 'rolebindings')).toEqual([]);
    expect(req(31, 'eve', 'pods')).toEqual([]); // too late
  });

  it('unordered sequence fires whatever the order', () => {
    const r = rule(`kind: sequence
sequence:
  by: [subject]
  window: 10m
  ordered: false
  steps:
    - match: {field: objectRef.resource, equals: rolebindings}
    - match: {field: objectRef.resource, equals: pods}
`);
    const engine = new DetectionEngine([r]);
    const req = (m: number, resource: string) =>
      engine.process(at(m, { verb: 'create', user: { username: 'eve' }, objectRef: { resource } }), {
        cluster: 'c',
      });
    expect(req(0, 'pods')).toEqual([]);
    expect(req(1, 'rolebindings')).toHaveLength(1);
  });

  it('keeps at most maxKeysPerRule keys, forgetting the least recently used', () => {
    const r = rule(`kind: threshold
match: {field: verb, equals: get}
threshold: {groupBy: [subject], window: 1h, count: 2}
`);
    const engine = new DetectionEngine([r], { maxKeysPerRule: 2 });
    const get = (m: number, user: string) =>
      engine.process(at(m, { verb: 'get', user: { username: user } }), { cluster: 'c' });
    get(0, 'a');
    get(1, 'b');
    get(2, 'c'); // a is forgotten
    expect(get(3, 'a')).toEqual([]);
    expect(get(4, 'c')).toHaveLength(1);
  });
});

describe('string operators on numbers', () => {
  it('read the number as text: a code starting with 4', () => {
    const engine = new DetectionEngine([rule('match: {field: responseStatus.code, prefix: "4"}\n')]);
    expect(engine.process(ev({ verb: 'get', responseStatus: { code: 404 } }), { cluster: 'c' })).toHaveLength(
      1,
    );
    expect(engine.process(ev({ verb: 'get', responseStatus: { code: 200 } }), { cluster: 'c' })).toEqual([]);
  });
});
