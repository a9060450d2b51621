import { core, latency, refPath } from '../context.js';
import { client, DENY, forbidden, podServiceAccount, type ScenarioKit, spread } from './kit.js';

/**
 * Requests that fail authorization, admission or authentication: each with the subject, the
 * request and, for RBAC, the Role and binding that would let it through.
 */
export function scheduleDenials(k: ScenarioKit): void {
  const { c, startUs, windowUs } = k;
  const { cluster, engine, prng } = c;
  const at = (f: number): number => startUs + f * windowUs;

  // A new report job in `payments` was deployed without its Role: it retries every 15 s.
  const node = prng.pick(cluster.nodes);
  const reporter = podServiceAccount(
    c,
    'payments',
    'report-generator',
    'report-generator/v1.4.0 (linux/amd64) kubernetes/$Format',
    node,
    '',
  );
  const saStep = k.step(
    'denials',
    'denials/sa-missing-role',
    'A service account without a Role reads configmaps and secrets',
    {
      kind: 'denial',
      cause: 'rbac',
      code: 403,
      client: client(reporter),
      subject: reporter.subject,
      verbs: ['get', 'list'],
      resource: 'configmaps,secrets',
      apiGroup: '',
      namespace: 'payments',
      fix: {
        role: {
          kind: 'Role',
          name: 'report-generator',
          namespace: 'payments',
          rules: [{ apiGroups: [''], resources: ['configmaps', 'secrets'], verbs: ['get', 'list'] }],
        },
        binding: {
          kind: 'RoleBinding',
          name: 'report-generator',
          namespace: 'payments',
          subjects: [reporter.subject],
        },
      },
    },
  );
  const attempts = Math.min(Math.floor((0.8 * windowUs) / 15_000_000), 400);
  for (const t of spread(at(0.1), at(0.9), Math.max(attempts, 4))) {
    k.at(t, saStep, () => {
      const cms = core('configmaps', 'payments');
      engine.emit({
        actor: reporter,
        verb: 'list',
        uri: `${refPath(cms)}?limit=500`,
        ref: cms,
        failure: forbidden(reporter, 'list', cms),
        authz: DENY,
        latencyUs: prng.logNormal(600, 0.4),
      });
      const secret = core('secrets', 'payments', 'report-generator-db');
      engine.emit(
        {
          actor: reporter,
          verb: 'get',
          uri: refPath(secret),
          ref: secret,
          failure: forbidden(reporter, 'get', secret),
          authz: DENY,
          latencyUs: prng.logNormal(600, 0.4),
        },
        2_000 + prng.int(20_000),
      );
    });
  }

  // A developer with namespace-scoped rights runs `kubectl get nodes` / `kubectl top nodes`.
  const carol =
    cluster.humans.find((h) => h.actor.username === 'carol@example.com')?.actor ?? cluster.humans[0]?.actor;
  if (carol !== undefined) {
    const nodesStep = k.step(
      'denials',
      'denials/user-missing-cluster-scope',
      'A person with namespace rights lists nodes',
      {
        kind: 'denial',
        cause: 'rbac',
        code: 403,
        client: client(carol),
        subject: { kind: 'User', name: carol.username },
        verbs: ['list'],
        resource: 'nodes',
        apiGroup: '',
        fix: {
          role: {
            kind: 'ClusterRole',
            name: 'node-viewer',
            rules: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] }],
          },
          binding: {
            kind: 'ClusterRoleBinding',
            name: 'node-viewer-carol',
            subjects: [{ kind: 'User', name: carol.username }],
          },
        },
      },
    );
    for (const t of spread(at(0.25), at(0.3), 4)) {
      k.at(t, nodesStep, () => {
        const nodes = core('nodes');
        engine.emit({
          actor: carol,
          verb: 'list',
          uri: `${refPath(nodes)}?limit=500`,
          ref: nodes,
          failure: forbidden(carol, 'list', nodes),
          authz: DENY,
          latencyUs: prng.logNormal(700, 0.4),
        });
      });
    }
  }

  // PodSecurity admission rejects a privileged debug pod: RBAC allowed, admission said no.
  const bob =
    cluster.humans.find((h) => h.actor.username === 'bob@example.com')?.actor ?? cluster.humans[0]?.actor;
  if (bob !== undefined) {
    const violations = [
      'privileged (container "debug" must not set securityContext.privileged=true)',
      'hostPath volumes (volume "host-root")',
    ];
    const psaStep = k.step(
      'denials',
      'denials/pod-security',
      'PodSecurity admission rejects a privileged pod',
      {
        kind: 'denial',
        cause: 'pod-security',
        code: 403,
        client: client(bob),
        subject: { kind: 'User', name: bob.username },
        verbs: ['create'],
        resource: 'pods',
        apiGroup: '',
        namespace: 'payments',
        podSecurity: { enforce: 'baseline:latest', violations },
      },
    );
    for (const t of spread(at(0.4), at(0.42), 3)) {
      k.at(t, psaStep, () => {
        const pods = core('pods', 'payments');
        const name = 'debug-tools';
        engine.emit({
          actor: bob,
          verb: 'create',
          uri: `${refPath(pods)}?fieldManager=kubectl-client-side-apply&fieldValidation=Strict`,
          ref: pods,
          failure: {
            code: 403,
            reason: 'Forbidden',
            message: `pods "${name}" is forbidden: violates PodSecurity "baseline:latest": ${violations.join(', ')}`,
            details: { name, kind: 'pods' },
          },
          latencyUs: latency.write(c),
          requestObject: JSON.stringify({
            kind: 'Pod',
            apiVersion: 'v1',
            metadata: { name, namespace: 'payments' },
            spec: {
              containers: [
                {
                  name: 'debug',
                  image: 'nicolaka/netshoot:v0.13',
                  securityContext: { privileged: true },
                  volumeMounts: [{ name: 'host-root', mountPath: '/host' }],
                },
              ],
              volumes: [{ name: 'host-root', hostPath: { path: '/', type: '' } }],
            },
          }),
          responseObject: JSON.stringify({
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Failure',
            message: `pods "${name}" is forbidden: violates PodSecurity "baseline:latest": ${violations.join(', ')}`,
            reason: 'Forbidden',
            details: { name, kind: 'pods' },
            code: 403,
          }),
          annotations: {
            'pod-security.kubernetes.io/enforce-policy': 'baseline:latest',
            'pod-security.kubernetes.io/audit-violations': `would violate PodSecurity "restricted:latest": ${violations.join(', ')}`,
          },
        });
      });
    }
  }

  // A decommissioned CI job keeps calling with a revoked token: 401, no user, no authorization.
  const ci = {
    username: '',
    userAgent: 'Go-http-client/2.0',
    sourceIP: '10.0.5.17',
  };
  const authStep = k.step('denials', 'denials/unauthenticated', 'A client with a revoked token gets 401', {
    kind: 'denial',
    cause: 'unauthenticated',
    code: 401,
    client: ci,
    verbs: ['list'],
    resource: 'deployments',
    apiGroup: 'apps',
    namespace: 'ci',
    note: 'The bearer token is no longer valid (revoked or expired); issue a new token for the client.',
  });
  const anonymousShape = {
    ...cluster.healthProbe,
    userAgent: ci.userAgent,
    sourceIP: ci.sourceIP,
    json: `"user":{},"sourceIPs":["${ci.sourceIP}"],"userAgent":"${ci.userAgent}"`,
  };
  for (const t of spread(at(0.15), at(0.95), Math.min(Math.max(windowUs / 60_000_000, 5), 200))) {
    k.at(t, authStep, () => {
      const ref = {
        resource: 'deployments',
        namespace: 'ci',
        apiGroup: 'apps',
        apiVersion: 'v1',
      };
      engine.emit({
        actor: anonymousShape,
        verb: 'list',
        uri: `${refPath(ref)}?limit=500`,
        ref,
        statusJson: '{"metadata":{},"message":"Authentication failed, attempted: bearer","code":401}',
        authz: null,
        startedOnly: true,
        latencyUs: prng.logNormal(300, 0.3),
      });
    });
  }
}
