/**
 * The documented commands, run as written (a doc test): every line of the README's `sh` blocks,
 * and every `kaudit` line of the sh blocks in docs/ (the other tools they show, aws, gcloud, curl,
 * kubectl, are not run). Each is either run here, in a directory laid out as the docs assume (a
 * simulated log under /var/log/kubernetes and as ./audit.log, a policy under /etc/kubernetes, the
 * store in ./kaudit-data), or named in SKIPPED with the reason and the test that covers it. A new
 * documented command fails this test until it is one or the other.
 */
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN, FIXTURES, REPO_ROOT, runCliSync, THIRD_PARTY } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

/** Commands not run here, and why. */
const SKIPPED: Record<string, string> = {
  'npm ci && npm start': 'runs the demo agent until stopped; agent-*.test.ts run the agent',
  'npm ci && npm test': 'is this test suite',
  'npm run build': 'ran before the tests (npm test builds first)',
  'npm run format': 'rewrites the source tree',
  'npm run screenshots': 'runs dashboard.test.ts',
  'npm run bench:ingest': 'a benchmark of minutes; CI does not run benchmarks',
  'kaudit serve': 'serves until stopped; dashboard.test.ts starts it and checks every page',
  'kaudit serve --listen 0.0.0.0:8443 --tls-cert tls.crt --tls-key tls.key --token-file tokens.txt':
    'serves until stopped; app.test.ts and the server tests cover TLS, tokens and the refusal without them',
  'kaudit serve &': 'serves until stopped; dashboard.test.ts',
  'KAUDIT_STORE=clickhouse://kaudit@clickhouse.internal:8123/kaudit kaudit report activity --cluster prod-eu':
    'needs that ClickHouse server; test/clickhouse/conformance.test.ts runs every report on a local one',
  'kaudit status': 'asks a running agent; status.test.ts and agent-detect.test.ts run one',
  'kaudit store init --store clickhouse://kaudit@clickhouse.internal:8123/kaudit':
    'needs that ClickHouse server; test/clickhouse/cli.test.ts runs store init on a local one',
  'kaudit ingest --store clickhouse://kaudit@clickhouse.internal:8123/kaudit --cluster prod-eu audit.log':
    'needs that ClickHouse server; test/clickhouse/cli.test.ts',
  'kaudit report activity --store clickhouse://kaudit@clickhouse.internal:8123/kaudit --cluster prod-eu':
    'needs that ClickHouse server; test/clickhouse/conformance.test.ts',
  "kaudit store init --store 'clickhouse://kaudit@ch1:8123/kaudit?distributed=audit' \\":
    'needs two ClickHouse shards; test/clickhouse/conformance.test.ts runs the Distributed setup',
  'kaudit rules list [--search "falco:Attach/Exec Pod"] [--json]':
    'a synopsis with optional parts; the README runs the command',
  'kaudit rules test my-rules/exec.yaml [cases.yaml | audit.log]':
    'a synopsis with optional parts; the README runs the command',
  'kaudit forward --to kaudit.yaml --since 7d':
    'sends to the sinks of a config; forward-replay.test.ts runs it against a local endpoint',
  'kaudit forward --to splunk.yaml --sink splunk --since 2026-01-01T00:00:00Z --until 2026-02-01T00:00:00Z':
    'needs a Splunk HEC; forward-replay.test.ts runs kaudit forward against a local endpoint',
  'kaudit setup certs --out-dir kaudit-certs --server-name "$IP" --server-name kaudit-webhook.kaudit.svc --days 365':
    'takes $IP from the steps before it; setup-webhook.test.ts runs setup certs',
  'kaudit doctor --config /etc/kaudit/kaudit.yaml --json': 'inspects a control-plane node; doctor.test.ts',
  'kaudit simulate --follow --rate 200 --webhook https://localhost:8443/audit --token "$TOKEN" --truth truth.json':
    'runs until stopped against a webhook; simulate.test.ts posts to a local receiver',
};

/** Commands whose exit status 1 means "findings", not failure. */
const FINDINGS_OK = new Set<string>([
  'kaudit rbac review --rbac cluster-rbac.yaml',
  // exit 1: the answer is no
  'kaudit rbac can alice@example.com list pods -n payments --rbac cluster-rbac.yaml',
]);

function shLines(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const block of text.matchAll(/```(?:sh|bash)\n([\s\S]*?)```/g))
    for (const raw of (block[1] ?? '').split('\n')) {
      // A comment starts at a # after whitespace (a # inside quotes is kept).
      const line = raw.replace(/\s+#(?=(?:[^"]*"[^"]*")*[^"]*$).*$/, '').trim();
      if (line !== '' && !line.startsWith('#')) out.push(line.replace(/^npx kaudit /, 'kaudit '));
    }
  return out;
}

function readmeCommands(): string[] {
  return shLines(join(REPO_ROOT, 'README.md'));
}

/** The kaudit lines of docs/*.md, after the README's (a command shown twice runs once). */
function docsCommands(): string[] {
  const docs = join(REPO_ROOT, 'docs');
  const seen = new Set(readmeCommands());
  const out: string[] = [];
  for (const name of readdirSync(docs)
    .filter((n) => n.endsWith('.md'))
    .sort())
    for (const line of shLines(join(docs, name)))
      if (line.startsWith('kaudit ') && !seen.has(line)) {
        seen.add(line);
        out.push(line);
      }
  return out;
}

const world = tempDir('kaudit-readme-');
const env = { ...process.env, PATH: `${join(world, 'bin')}:${process.env.PATH ?? ''}`, NO_COLOR: '1' };

/** Absolute paths of the README live under the world directory. */
function rooted(command: string): string {
  return command.replace(/(^|\s)\/(var|etc|tmp)\//g, `$1${world}/$2/`);
}

beforeAll(() => {
  mkdirSync(join(world, 'bin'));
  writeFileSync(join(world, 'bin', 'kaudit'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`, {
    mode: 0o755,
  });
  const logDir = join(world, 'var/log/kubernetes/audit');
  const log = join(logDir, 'audit.log');
  const sim = runCliSync(['simulate', '--out', log, '--duration', '2h', '--rate', '4', '--seed', '17']);
  expect(sim.code, sim.stderr).toBe(0);
  writeFileSync(join(world, 'audit.log.gz'), gzipSync(readFileSync(log)));
  copyFileSync(log, join(world, 'audit.log'));
  writeFileSync(join(world, 'audit-1.log.gz'), gzipSync(readFileSync(log)));
  // The managed clusters' exports (docs/managed-clusters.md), from the fixtures of those formats.
  copyFileSync(join(FIXTURES, 'gke-cloud-audit-entries.jsonl'), join(world, 'gke-audit.json'));
  mkdirSync(join(world, 'gke-export'));
  copyFileSync(join(FIXTURES, 'gke-cloud-audit-entries.jsonl'), join(world, 'gke-export/cloudaudit.jsonl'));
  mkdirSync(join(world, 'aks-export'));
  copyFileSync(join(FIXTURES, 'aks-diagnostic-records.json'), join(world, 'aks-export/PT1H.json'));
  copyFileSync(join(THIRD_PARTY, 'samples/audit2rbac-demo.log'), join(world, 'eks-audit.jsonl'));
  writeFileSync(join(world, 'requests.jsonl'), readFileSync(log, 'utf8').split('\n').slice(0, 50).join('\n'));
  mkdirSync(join(world, 'etc/kubernetes'), { recursive: true });
  const policy = runCliSync(['policy', 'generate']).stdout;
  writeFileSync(join(world, 'etc/kubernetes/audit-policy.yaml'), policy);
  writeFileSync(join(world, 'audit-policy.yaml'), policy);
  writeFileSync(
    join(world, 'new-policy.yaml'),
    runCliSync(['policy', 'generate', '--preset', 'minimal']).stdout,
  );
  copyFileSync(join(FIXTURES, 'rbac/cluster-rbac.yaml'), join(world, 'cluster-rbac.yaml'));
  copyFileSync(join(FIXTURES, 'rbac/cluster-rbac.yaml'), join(world, 'rbac.yaml'));
  writeFileSync(join(world, 'policy.yaml'), policy);
  cpSync(join(THIRD_PARTY, 'sigma/rules/application'), join(world, 'sigma/rules'), { recursive: true });
  mkdirSync(join(world, 'tmp'));
  mkdirSync(join(world, 'my-rules'));
  writeFileSync(
    join(world, 'my-rules/exec.yaml'),
    'id: my-exec\ntitle: Exec into a pod\nseverity: low\ntechnique: T1609\nmatch:\n  all:\n    - {field: verb, equals: create}\n    - {field: objectRef.subresource, equals: exec}\n',
  );
  writeFileSync(
    join(world, 'cases.yaml'),
    'positive:\n  - name: exec\n    events: [{verb: create, objectRef: {resource: pods, subresource: exec}}]\nnegative:\n  - name: logs\n    events: [{verb: get, objectRef: {resource: pods, subresource: log}}]\n',
  );
  // /var/lib/kaudit, the data directory of the detect example, is the store the README fills.
  mkdirSync(join(world, 'var/lib'), { recursive: true });
  symlinkSync(join(world, 'kaudit-data'), join(world, 'var/lib/kaudit'));
}, 120_000);

describe('the README, run as written', () => {
  const commands = readmeCommands();

  it('has commands, and each one is run below or skipped with a reason', () => {
    expect(commands.length).toBeGreaterThan(20);
    expect(docsCommands().length).toBeGreaterThan(20);
    const all = [...commands, ...docsCommands()];
    for (const skipped of Object.keys(SKIPPED)) expect(all, skipped).toContain(skipped);
  });

  for (const command of [...commands, ...docsCommands()]) {
    if (SKIPPED[command] !== undefined) continue;
    it(command, () => {
      const r = spawnSync('sh', ['-c', rooted(command)], {
        cwd: world,
        env,
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      });
      // `rbac can` answers no with exit 1: an answer, not a failure.
      const allowed = FINDINGS_OK.has(command) || command.startsWith('kaudit rbac can ') ? [0, 1] : [0];
      expect(allowed, `exit ${r.status}: ${r.stderr}`).toContain(r.status);
      // It said something useful: on stdout, or into the file it was told to write, or on stderr.
      const redirected = /> (\S+)$/.exec(command)?.[1];
      const said =
        redirected === undefined ? r.stdout + r.stderr : readFileSync(join(world, redirected), 'utf8');
      expect(said.trim().length, r.stderr).toBeGreaterThan(0);
      expect(r.stderr).not.toMatch(/internal error|EPIPE|at .*\.js:\d+/);
    }, 120_000);
  }
});
