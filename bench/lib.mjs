// Shared helpers for the benchmarks: run a command while sampling its peak RSS, format tables.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Peak resident set (VmHWM) of a process, in bytes, or 0 once it has gone. */
export function peakRss(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Runs `node args...`, returns { code, stdout, stderr, seconds, peakRssBytes }. */
export function timedNode(args, { env = {}, onLine } = {}) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let peak = 0;
    const timer = setInterval(() => {
      peak = Math.max(peak, peakRss(child.pid));
    }, 50);
    const out = [];
    const err = [];
    child.stdout.on('data', (b) => {
      out.push(b);
      if (onLine) for (const l of b.toString().split('\n')) if (l) onLine(l);
    });
    child.stderr.on('data', (b) => err.push(b));
    child.on('error', reject);
    // 'exit' fires before the process is reaped, so /proc still has its final VmHWM.
    child.on('exit', () => {
      peak = Math.max(peak, peakRss(child.pid));
    });
    child.on('close', (code) => {
      clearInterval(timer);
      resolve({
        code,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        seconds: (performance.now() - start) / 1000,
        peakRssBytes: peak,
      });
    });
  });
}

export const MB = 1024 * 1024;

export function table(rows) {
  const cols = Object.keys(rows[0]);
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (vals) => vals.map((v, i) => String(v).padEnd(w[i])).join('  ');
  return [
    line(cols),
    line(w.map((n) => '-'.repeat(n))),
    ...rows.map((r) => line(cols.map((c) => r[c]))),
  ].join('\n');
}

export function verdict(ok) {
  return ok ? 'PASS' : 'FAIL';
}

/**
 * bench/out/<name>-<events>-<seed>.log, written by `kaudit simulate` the first time and reused after
 * (a fixed start, so the same seed gives the same bytes on every machine and run).
 */
export async function simulatedLog(root, name, events, seed) {
  const out = join(root, 'bench/out');
  mkdirSync(out, { recursive: true });
  const log = join(out, `${name}-${events}-${seed}.log`);
  if (existsSync(log)) return log;
  process.stderr.write(`generating ${events} events with kaudit simulate (seed ${seed}) ...\n`);
  const bin = join(root, 'dist/cli/bin.js');
  const g = await timedNode([
    bin,
    'simulate',
    '--out',
    log,
    '--count',
    String(events),
    '--seed',
    String(seed),
    '--start',
    '2026-01-15T09:00:00Z',
  ]);
  if (g.code !== 0) throw new Error(`simulate failed: ${g.stderr}`);
  return log;
}
