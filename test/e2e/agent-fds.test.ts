/**
 * File descriptors exhausted (EMFILE) under a running agent: a real `ulimit -n` on the agent's
 * process and more log files than it allows. The agent must neither crash nor acknowledge what it
 * did not store, must stop on SIGTERM, and a restart with room must store every event exactly once.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, buildOnce, startAgent, tempDir, waitFor, writeConfig } from '../fixtures/agent/harness.js';
import { auditLines } from '../fixtures/agent/make-events.js';
import { ndjson, runCli } from '../helpers/cli.js';

const FILES = 400;
const PER_FILE = 5;
// Well above what the agent needs to start (its modules, DuckDB, the admin socket: about 40 here),
// well below one descriptor per followed file.
const FD_LIMIT = 200;

interface Checkpoints {
  sources: Record<string, { files: { path: string; offset: number }[] }>;
}

/** stderr without the lines logged once per file. */
const talk = (stderr: string): string =>
  stderr
    .split('\n')
    .filter((l) => !l.includes('tailing new file') && !l.includes('cannot open file'))
    .join('\n');

describe('agent with file descriptors exhausted (ulimit -n)', () => {
  const dir = tempDir('fds');
  let config: string;

  beforeAll(async () => {
    await buildOnce();
    mkdirSync(join(dir, 'logs'));
    config = writeConfig(dir, '  - type: file\n    path: logs/*.log\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps running, acknowledges only what it stored, stops on SIGTERM; a restart stores every event once', async () => {
    const child = spawn(
      'sh',
      ['-c', `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`, process.execPath, BIN, 'agent', '--config', config],
      { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // The descriptors run out once the agent runs, not while it starts: kaudit agent handles
    // SIGTERM only from its 'agent API listening' line on.
    await waitFor(
      'the agent started',
      () => stderr.includes('agent API listening') || child.exitCode !== null,
    );
    for (let f = 0; f < FILES; f++)
      writeFileSync(
        join(dir, 'logs', `a${String(f).padStart(3, '0')}.log`),
        auditLines(`f${f}`, 0, PER_FILE),
      );
    await waitFor('EMFILE met', () => stderr.includes('EMFILE') || child.exitCode !== null);
    if (child.exitCode !== null) console.log(talk(stderr));
    expect(child.exitCode).toBeNull();
    // While every descriptor is taken no checkpoint can be written either; stop writes it once the
    // files are closed.
    child.kill('SIGTERM');
    const code = await exited;
    if (code !== 0) console.log(talk(stderr));
    expect(code).toBe(0);
    expect(stderr).toContain('agent stopped');
    expect(stderr).not.toContain('internal error');

    // Acknowledged = a file's checkpoint offset: every line before it is in the store.
    const checkpoints = (): Checkpoints =>
      JSON.parse(readFileSync(join(dir, 'run', 'checkpoints.json'), 'utf8')) as Checkpoints;
    const acked = Object.values(checkpoints().sources).flatMap((s) => s.files.filter((f) => f.offset > 0));
    expect(acked.length).toBeLessThan(FILES);
    const stored = async () =>
      ndjson(
        (await runCli(['query', '--data', join(dir, 'data'), '--json', 'SELECT audit_id FROM events']))
          .stdout,
      ).map((r) => String(r.audit_id));
    const have = new Set(await stored());
    for (const f of acked) {
      const n = Number(/a(\d+)\.log$/.exec(f.path)?.[1]);
      const lines = readFileSync(f.path, 'utf8').slice(0, f.offset).split('\n').filter(Boolean).length;
      for (let i = 0; i < lines; i++) expect(have.has(`f${n}-${i}`)).toBe(true);
    }

    // With room again, the rest is read from where each file was acknowledged.
    const size = Buffer.byteLength(auditLines('f0', 0, PER_FILE));
    const agent = await startAgent(config);
    await waitFor('every file checkpointed to its end', () => {
      const files = Object.values(checkpoints().sources).flatMap((s) => s.files);
      return files.length === FILES && files.every((f) => f.offset >= size - 4);
    });
    agent.child.kill('SIGTERM');
    const second = await agent.exited;
    if (second !== 0) console.log(talk(agent.stderr()));
    expect(second).toBe(0);
    const all = await stored();
    expect(all).toHaveLength(FILES * PER_FILE);
    expect(new Set(all).size).toBe(FILES * PER_FILE);
  }, 180_000);

  it('descriptors exhausted as the API starts: agent.json written once they are back, requests answered again, no crash', async () => {
    const startDir = tempDir('fds-start');
    try {
      mkdirSync(join(startDir, 'logs'));
      writeFileSync(join(startDir, 'logs', 'a.log'), auditLines('s', 0, PER_FILE));
      const startConfig = writeConfig(startDir, '  - type: file\n    path: logs/*.log\n');
      // Takes every free descriptor the moment a server starts listening, for two seconds: the
      // agent then writes agent.json and handles its first requests with none left (a real EMFILE
      // from the kernel, at a point no ulimit race could pin down).
      const preload = join(startDir, 'exhaust.mjs');
      writeFileSync(
        preload,
        `import net from 'node:net';
import { closeSync, openSync } from 'node:fs';
const listen = net.Server.prototype.listen;
let done = false;
net.Server.prototype.listen = function (...args) {
  this.once('listening', () => {
    if (done) return;
    done = true;
    const held = [];
    try { for (;;) held.push(openSync('/dev/null', 'r')); } catch {}
    process.stderr.write('test: holding ' + held.length + ' descriptors\\n');
    setTimeout(() => { for (const fd of held) closeSync(fd); process.stderr.write('test: released\\n'); }, 2000);
  });
  return listen.apply(this, args);
};
`,
      );
      const child = spawn(
        process.execPath,
        ['--import', pathToFileURL(preload).href, BIN, 'agent', '--config', startConfig],
        {
          cwd: startDir,
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      await waitFor('descriptors taken', () => stderr.includes('test: holding') || child.exitCode !== null);
      await waitFor(
        'the agent listening',
        () => stderr.includes('agent API listening') || child.exitCode !== null,
      );
      const admin = /agent API listening" admin=(\S+)/.exec(stderr)?.[1];
      // Requests while every descriptor is taken: each may fail to connect, none may end the agent.
      if (!stderr.includes('test: released'))
        for (const path of ['/healthz', '/status', '/api/v1/events', '/'])
          await fetch(`${admin}${path}`, { signal: AbortSignal.timeout(300) }).catch(() => undefined);
      if (child.exitCode !== null) console.log(stderr);
      expect(child.exitCode).toBeNull();
      expect(stderr).toMatch(/cannot write file; retrying" file=\S*agent\.json error="EMFILE[^\n]*ulimit -n/);
      const locator = join(startDir, 'run', 'agent.json');
      await waitFor('agent.json written', () => existsSync(locator));
      const { token } = JSON.parse(readFileSync(locator, 'utf8')) as { token: string };
      // With descriptors back, the API answers.
      await waitFor('the API answering', async () => {
        const res = await fetch(`${admin}/api/v1/events?limit=10`, {
          headers: { authorization: `Bearer ${token}` },
          signal: AbortSignal.timeout(2000),
        }).catch(() => undefined);
        return res?.status === 200;
      });
      expect(child.exitCode).toBeNull();
      child.kill('SIGTERM');
      const code = await exited;
      if (code !== 0) console.log(stderr);
      expect(code).toBe(0);
      expect(stderr).toContain('agent stopped');
      expect(stderr).not.toContain('internal error');
      // No stack trace: every line is the agent's log.
      expect(stderr.split('\n').filter((l) => /^\s+at /.test(l))).toEqual([]);
      expect(existsSync(locator)).toBe(false);
    } finally {
      rmSync(startDir, { recursive: true, force: true });
    }
  }, 180_000);
});
