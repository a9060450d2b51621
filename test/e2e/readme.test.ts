/**
 * The README's commands, run as written (a doc test). Every line of its `sh` blocks is either run
 * here, in a directory laid out as the README assumes (a simulated log under /var/log/kubernetes,
 * a policy under /etc/kubernetes, the store in ./kaudit-data), or named in SKIPPED with the reason
 * and the test that covers it. A new README command fails this test until it is one or the other.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
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
};

/** Commands whose exit status 1 means "findings", not failure. */
const FINDINGS_OK = new Set<string>([
  'kaudit rbac review --rbac cluster-rbac.yaml',
  // exit 1: the answer is no
  'kaudit rbac can alice@example.com list pods -n payments --rbac cluster-rbac.yaml',
]);

function readmeCommands(): string[] {
  const text = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const out: string[] = [];
  for (const block of text.matchAll(/```sh\n([\s\S]*?)```/g))
    for (const raw of (block[1] ?? '').split('\n')) {
      // A comment starts at a # after whitespace (a # inside quotes is kept).
      const line = raw.replace(/\s+#(?=(?:[^"]*"[^"]*")*[^"]*$).*$/, '').trim();
      if (line !== '' && !line.startsWith('#')) out.push(line.replace(/^npx kaudit /, 'kaudit '));
    }
  return out;
}

const world = tempDir('kaudit-readme-');
const env = { ...process.env, PATH: `${join(world, 'bin')}:${process.env.PATH ?? ''}`, NO_COLOR: '1' };

/** Absolute paths of the README live under the world directory. */
function rooted(command: string): string {
  return command.replace(/(^|\s)\/(var|etc)\//g, `$1${world}/$2/`);
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
  mkdirSync(join(world, 'etc/kubernetes'), { recursive: true });
  const policy = runCliSync(['policy', 'generate']).stdout;
  writeFileSync(join(world, 'etc/kubernetes/audit-policy.yaml'), policy);
  writeFileSync(join(world, 'audit-policy.yaml'), policy);
  writeFileSync(
    join(world, 'new-policy.yaml'),
    runCliSync(['policy', 'generate', '--preset', 'minimal']).stdout,
  );
  copyFileSync(join(FIXTURES, 'rbac/cluster-rbac.yaml'), join(world, 'cluster-rbac.yaml'));
  cpSync(join(THIRD_PARTY, 'sigma/rules/application'), join(world, 'sigma/rules'), { recursive: true });
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
    for (const skipped of Object.keys(SKIPPED)) expect(commands).toContain(skipped);
  });

  for (const command of commands) {
    if (SKIPPED[command] !== undefined) continue;
    it(command, () => {
      const r = spawnSync('sh', ['-c', rooted(command)], {
        cwd: world,
        env,
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      });
      const allowed = FINDINGS_OK.has(command) ? [0, 1] : [0];
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
