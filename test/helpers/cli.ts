import {
  type ChildProcess,
  type ChildProcessWithoutNullStreams,
  type SpawnOptions,
  type SpawnOptionsWithoutStdio,
  spawn,
  spawnSync,
} from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The built CLI (npm test builds it first); KAUDIT_E2E_BIN points at another build, e.g. one in a private directory. */
export const BIN =
  process.env.KAUDIT_E2E_BIN ?? fileURLToPath(new URL('../../bin/kaudit.cjs', import.meta.url));
/** Real third-party inputs copied into the fixtures, with their licences (see its README). */
export const THIRD_PARTY = fileURLToPath(new URL('../fixtures/third-party/', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
}

export interface CliOptions {
  input?: string | Buffer;
  env?: Record<string, string>;
  cwd?: string;
}

/** Starts the built CLI and hands back the process, for commands that keep running (`kaudit agent`). */
export function spawnCli(args: string[], opts: SpawnOptionsWithoutStdio): ChildProcessWithoutNullStreams;
export function spawnCli(args: string[], opts: SpawnOptions): ChildProcess;
export function spawnCli(args: string[], opts: SpawnOptions): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], opts);
}

/** Runs the built CLI as a user would and waits for it to exit. */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, {
      cwd: opts.cwd ?? REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1', ...opts.env },
      stdio: 'pipe',
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        ms: performance.now() - started,
      }),
    );
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** runCli for tests that are written synchronously; it blocks this process, so nothing here can answer the CLI. */
export function runCliSync(args: string[], opts: CliOptions = {}): CliResult {
  const started = performance.now();
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', ...opts.env },
    maxBuffer: 64 << 20,
    ...(opts.input === undefined ? {} : { input: opts.input }),
  });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - started };
}

export function ndjson(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
