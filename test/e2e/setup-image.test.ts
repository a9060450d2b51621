import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, tempDir } from '../fixtures/agent/harness.js';
import { FIXTURES, REPO_ROOT } from '../helpers/cli.js';

interface Copy {
  from?: string;
  src: string;
  dest: string;
}

/** The COPY instructions of the Dockerfile's last stage: what the image holds. */
function finalStageCopies(dockerfile: string): Copy[] {
  const stages = dockerfile.split(/^FROM /m);
  const last = stages[stages.length - 1] ?? '';
  return [...last.matchAll(/^COPY (?:--from=(\S+) )?(\S+) (\S+)$/gm)].map((m) => ({
    ...(m[1] === undefined ? {} : { from: m[1] }),
    src: m[2] ?? '',
    dest: m[3] ?? '',
  }));
}

/** The COPY instructions of one stage, by its `AS` name: each with its sources and destination. */
function stageCopies(dockerfile: string, stage: string): { sources: string[]; dest: string }[] {
  const text = dockerfile
    .split(/^FROM /m)
    .find((s) => new RegExp(`^\\S+ .*AS ${stage}$`, 'm').test(s.split('\n')[0] ?? ''));
  if (text === undefined) throw new Error(`no stage ${stage} in the Dockerfile`);
  return [...text.matchAll(/^COPY (?!--from)(.+)$/gm)].map((m) => {
    const words = (m[1] ?? '').trim().split(/\s+/);
    return { sources: words.slice(0, -1), dest: words.at(-1) ?? '' };
  });
}

describe('the container image (Dockerfile) as far as it can be tested without building it', () => {
  const app = tempDir('image');
  const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');

  beforeAll(async () => {
    await buildOnce();
  });
  afterAll(() => rmSync(app, { recursive: true, force: true }));

  it('copies into its last stage exactly the built CLI, the package file, bin and production node_modules', () => {
    expect(finalStageCopies(dockerfile)).toEqual([
      { from: 'deps', src: '/app/node_modules', dest: './node_modules' },
      { from: 'build', src: '/src/dist', dest: './dist' },
      { src: 'package.json', dest: './' },
      { src: 'bin', dest: './bin' },
    ]);
    expect(dockerfile).toMatch(/^RUN npm ci --omit=dev --ignore-scripts/m);
    expect(dockerfile).toMatch(/^USER node$/m);
  });

  it('builds in its build stage from exactly what that stage copies and .dockerignore lets in', () => {
    const copies = stageCopies(dockerfile, 'build');
    const allowed = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('!'))
      .map((l) => l.slice(1).replace(/\/$/, ''));
    const context = join(app, 'context');
    for (const { sources, dest } of copies)
      for (const source of sources) {
        expect(allowed, `.dockerignore keeps ${source} out of the build context`).toContain(source);
        const to =
          sources.length > 1 || dest.endsWith('/') ? join(context, dest, source) : join(context, dest);
        // .dockerignore's `src/**/*.test.ts`: tests stay out of the context.
        cpSync(join(REPO_ROOT, source), to, { recursive: true, filter: (f) => !f.endsWith('.test.ts') });
      }
    execFileSync('cp', ['-al', join(REPO_ROOT, 'node_modules'), join(context, 'node_modules')]);
    const build = spawnSync('npm', ['run', 'build'], { cwd: context, encoding: 'utf8' });
    expect(build.status, `${build.stdout}${build.stderr}`).toBe(0);
    // What the last stage takes from the build stage, and what the agent reads at run time from it.
    for (const built of ['dist/cli/main.js', 'dist/ui/index.html', 'dist/detect/rules/builtin'])
      expect(existsSync(join(context, built)), built).toBe(true);
  });

  it('runs from a copy of those files with the dev dependencies pruned, DuckDB binding included', () => {
    // The deps stage's `npm ci --omit=dev`, done without the network: node_modules hard-linked into
    // the copy (the lock file npm rewrites is a real copy, so the tree here is left alone), then pruned.
    cpSync(join(REPO_ROOT, 'dist'), join(app, 'dist'), { recursive: true });
    cpSync(join(REPO_ROOT, 'bin'), join(app, 'bin'), { recursive: true });
    copyFileSync(join(REPO_ROOT, 'package.json'), join(app, 'package.json'));
    copyFileSync(join(REPO_ROOT, 'package-lock.json'), join(app, 'package-lock.json'));
    execFileSync('cp', ['-al', join(REPO_ROOT, 'node_modules'), join(app, 'node_modules')]);
    rmSync(join(app, 'node_modules/.package-lock.json'), { force: true });
    copyFileSync(
      join(REPO_ROOT, 'node_modules/.package-lock.json'),
      join(app, 'node_modules/.package-lock.json'),
    );
    execFileSync('npm', ['prune', '--omit=dev', '--ignore-scripts', '--offline', '--no-audit', '--no-fund'], {
      cwd: app,
      stdio: 'pipe',
    });
    rmSync(join(app, 'package-lock.json'));

    expect(existsSync(join(app, 'node_modules/typescript'))).toBe(false);
    expect(existsSync(join(app, 'node_modules/vitest'))).toBe(false);
    expect(existsSync(join(app, 'node_modules/@duckdb/node-api'))).toBe(true);
    expect(existsSync(join(REPO_ROOT, 'node_modules/typescript'))).toBe(true);

    const run = (...args: string[]) =>
      spawnSync(process.execPath, [join(app, 'bin/kaudit.cjs'), ...args], {
        cwd: app,
        encoding: 'utf8',
        env: { ...process.env, NODE_ENV: 'production' },
      });
    const version = run('--version');
    expect(version.status).toBe(0);
    expect(version.stdout.trim()).toBe(
      JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version,
    );
    // A command that opens the store: the native binding loads from the pruned tree.
    const ingest = run(
      'ingest',
      join(FIXTURES, 'watch-long-running.jsonl'),
      '--data',
      join(app, 'data'),
      '--no-progress',
    );
    expect(ingest.status, ingest.stderr).toBe(0);
    const query = run('query', 'SELECT count(*) AS n FROM events', '--data', join(app, 'data'), '--json');
    expect(query.status, query.stderr).toBe(0);
    expect(query.stdout).toMatch(/"n":[1-9]/);
  });
});
