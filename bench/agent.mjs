// Benchmark of `kaudit agent` (npm run bench:agent): sustained tailing throughput and end-to-end
// freshness (line written -> row queryable) at 5k, 20k and the maximum events/s, with peak RSS.
// Ratios are against a baseline measured in the same run: a plain read + newline split of the same
// bytes, which is what any tailer has to do at least.
//
// Env: BENCH_EVENTS (default 400000) events for the throughput run, BENCH_SECONDS (default 10) per
// freshness run, BENCH_RATES and BENCH_PIPELINE (below), BENCH_OUT (default bench/out) where the
// JSON summary goes.
import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';
import { MB, peakRss as peakRssBytes } from './lib.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'kaudit.cjs');
const EVENTS = Number(process.env.BENCH_EVENTS ?? 400_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const OUT = resolve(process.env.BENCH_OUT ?? join(ROOT, 'bench', 'out'));
// BENCH_PIPELINE: a `pipeline:` mapping for the agent config, e.g. '{batch_events: 50000}'.
const PIPELINE = process.env.BENCH_PIPELINE ? `pipeline: ${process.env.BENCH_PIPELINE}\n` : '';
// BENCH_RATES: the freshness runs, e.g. '20000' or '5000,20000,max'.
const RATES = (process.env.BENCH_RATES ?? '5000,20000,max')
  .split(',')
  .map((r) => (r.trim() === 'max' ? Number.POSITIVE_INFINITY : Number(r)));
const TARGETS = { eventsPerSecond: 50_000, freshnessP99AtRate20kMs: 2000, rssMb: 500 };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => process.stderr.write(`${s}\n`);

function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Realistic traffic from `kaudit simulate`, as JSON lines. */
function generate(file, count) {
  log(`generating ${count} events with kaudit simulate...`);
  execFileSync(process.execPath, [BIN, 'simulate', '--out', file, '--count', String(count), '--seed', '7'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return readFileSync(file);
}

/** The floor: read the file in 1 MiB pieces and find every newline. */
function baseline(file) {
  const fd = openSync(file, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  let lines = 0;
  let bytes = 0;
  const t0 = performance.now();
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, bytes);
    if (n === 0) break;
    bytes += n;
    let i = -1;
    for (;;) {
      i = buf.indexOf(0x0a, i + 1);
      if (i < 0 || i >= n) break;
      lines++;
    }
  }
  closeSync(fd);
  const s = (performance.now() - t0) / 1000;
  return { lines, bytes, seconds: s, eventsPerSecond: lines / s, mbPerSecond: bytes / s / 1048576 };
}

async function startAgent(dir, logPath, extra = '') {
  writeFileSync(
    join(dir, 'kaudit.yaml'),
    `cluster: bench\nrun_path: run\ndata: data\nadmin: {listen: "127.0.0.1:0"}\n${extra}${PIPELINE}logs:\n  - type: file\n    path: ${logPath}\n`,
  );
  const child = spawn(
    process.execPath,
    [BIN, 'agent', '--config', join(dir, 'kaudit.yaml'), '--log-level', 'warn'],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const locator = join(dir, 'run', 'agent.json');
  for (let i = 0; i < 300; i++) {
    if (existsSync(locator)) {
      try {
        const loc = JSON.parse(readFileSync(locator, 'utf8'));
        if (loc.pid === child.pid) return { child, admin: loc.admin, token: loc.token };
      } catch {}
    }
    await sleep(100);
  }
  throw new Error('agent did not start');
}

async function rows(agent) {
  // The count of the store API the CLI uses while the agent holds the store.
  const res = await fetch(`${agent.admin}/api/v1/count`, {
    headers: { authorization: `Bearer ${agent.token}` },
  });
  const body = await res.json();
  return Number(body.count);
}

/** Peak resident set of a process in MiB, or NaN once it has gone. */
function peakRssMb(pid) {
  const bytes = peakRssBytes(pid);
  return bytes > 0 ? bytes / MB : Number.NaN;
}

/** CPU seconds (user + system, all threads) a live process has used, from /proc; NaN elsewhere. */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of proc(5), counted from the state (field 3) here; in clock ticks of 1/100 s.
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

async function stop(agent) {
  agent.child.kill('SIGTERM');
  await new Promise((r) => agent.child.once('exit', r));
}

/**
 * The collector alone: FileSource + Pipeline from dist into a store that only counts, so the
 * tailer's own rate (read, split, prepare, queue, checkpoint) is seen apart from the store's.
 */
async function tailerOnly(source, lines) {
  const { FileSource } = await import(join(ROOT, 'dist', 'collect', 'file-source.js'));
  const { Pipeline } = await import(join(ROOT, 'dist', 'collect', 'pipeline.js'));
  const { CheckpointRegistry } = await import(join(ROOT, 'dist', 'collect', 'checkpoint-registry.js'));
  const { memoryLogger } = await import(join(ROOT, 'dist', 'collect', 'logger.js'));
  const { prepareLine, prepareValue } = await import(join(ROOT, 'dist', 'model', 'prepare.js'));
  const dir = mkdtempSync(join(tmpdir(), 'kaudit-bench-'));
  try {
    writeFileSync(join(dir, 'audit.log'), source);
    let stored = 0;
    // The Store contract's writer (store/contract.ts): hold() then commit().
    const store = {
      backend: 'count',
      location: 'count',
      capabilities: {},
      hold(b) {
        const n = b.events.length;
        const result = { stored: n, duplicates: 0, duplicateIndexes: [], rejected: [] };
        return {
          async commit() {
            stored += n;
            return result;
          },
          async discard() {},
        };
      },
      async write(b) {
        return this.hold(b).commit();
      },
    };
    const log = memoryLogger();
    const registry = CheckpointRegistry.open(join(dir, 'run'));
    const pipeline = new Pipeline({
      store,
      cluster: 'bench',
      queueEvents: 100_000,
      queueBytes: 256 << 20,
      batchEvents: 20_000,
      flushIntervalMs: 250,
      deadLetter: { count: 0, async add() {} },
      log,
    });
    const opts = { maxEventBytes: 4 << 20, redact: true };
    const src = new FileSource({
      config: {
        type: 'file',
        name: 'bench',
        path: join(dir, 'audit.log'),
        source: 's',
        service: 's',
        startPosition: 'beginning',
      },
      registry,
      offer: (item) => pipeline.offer(item),
      prepare: { options: opts, line: (b) => prepareLine(b, opts), value: (v) => prepareValue(v, opts) },
      maxLineBytes: 64 << 20,
      log,
    });
    const t0 = performance.now();
    pipeline.start();
    src.start();
    while (stored < lines) {
      const st = src.status();
      if (st.status === 'Error') throw new Error(`tailer failed: ${st.error}`);
      const { storeError } = pipeline.stats();
      if (storeError !== undefined) throw new Error(`the counting store failed: ${storeError}`);
      await sleep(5);
    }
    const seconds = (performance.now() - t0) / 1000;
    await src.stop();
    await pipeline.shutdown();
    return { events: lines, seconds, eventsPerSecond: lines / seconds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Catch-up: the whole file is there when the agent starts. Sustained throughput counts from the
 * agent being ready (store open, sources started: its locator file written) to the last row stored;
 * the catch-up figure also counts the process start and opening the store.
 */
async function throughput(source, lines, extra = '', sinkReceived = undefined) {
  const dir = mkdtempSync(join(tmpdir(), 'kaudit-bench-'));
  try {
    writeFileSync(join(dir, 'audit.log'), source);
    const t0 = performance.now();
    const agent = await startAgent(dir, join(dir, 'audit.log'), extra);
    const ready = performance.now();
    let stored = 0;
    while (stored < lines) {
      await sleep(100);
      stored = await rows(agent);
    }
    const end = performance.now();
    const cpuAtLastStore = cpuSeconds(agent.child.pid);
    const rss = peakRssMb(agent.child.pid);
    // With a forwarder: where it stood when the last event was stored, and how long until the
    // endpoint had every event.
    let forwarder;
    if (sinkReceived !== undefined) {
      const status = await (await fetch(`${agent.admin}/status`)).json();
      const f = status.forward?.[0] ?? {};
      // A forwarder that drops what its queue cannot hold never gets there: given up after 120 s.
      const giveUp = performance.now() + 120_000;
      while (sinkReceived() < lines && performance.now() < giveUp) await sleep(50);
      forwarder = {
        delivered: sinkReceived(),
        atLastStore: {
          mode: f.mode,
          sentEvents: f.sentEvents,
          lagEvents: f.lagEvents,
          droppedFromQueue: f.droppedFromQueue,
        },
        allDeliveredSeconds: (performance.now() - ready) / 1000,
        cpuSecondsAllDelivered: cpuSeconds(agent.child.pid),
      };
    }
    await stop(agent);
    return {
      ...(forwarder === undefined ? {} : { forwarder }),
      events: lines,
      startSeconds: (ready - t0) / 1000,
      seconds: (end - ready) / 1000,
      cpuSecondsAtLastStore: cpuAtLastStore,
      eventsPerSecond: lines / ((end - ready) / 1000),
      catchUpEventsPerSecond: lines / ((end - t0) / 1000),
      peakRssMb: rss,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Appends `rate` events/s (in 20 ms ticks) for SECONDS while polling the row count; the file is
 * read in order, so the n-th row stored is the n-th line written and its freshness is the time
 * between the two.
 */
async function freshness(lineBufs, rate) {
  const dir = mkdtempSync(join(tmpdir(), 'kaudit-bench-'));
  try {
    const logPath = join(dir, 'audit.log');
    writeFileSync(logPath, '');
    const agent = await startAgent(dir, logPath);
    const fd = openSync(logPath, 'a');
    const total = rate === Infinity ? lineBufs.length : Math.min(lineBufs.length, Math.round(rate * SECONDS));
    const writtenAt = new Float64Array(total);
    let written = 0;
    let stored = 0;
    const fresh = [];
    let polling = true;
    const poller = (async () => {
      while (polling || stored < total) {
        const n = await rows(agent);
        const now = performance.now();
        for (; stored < n && stored < written; stored++) fresh.push(now - writtenAt[stored]);
        await sleep(25);
      }
    })();
    const t0 = performance.now();
    while (written < total) {
      const due =
        rate === Infinity ? total : Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
      const until = Math.min(due, written + 20_000);
      if (until > written) {
        const chunk = Buffer.concat(lineBufs.slice(written, until));
        writeSync(fd, chunk);
        const now = performance.now();
        for (let i = written; i < until; i++) writtenAt[i] = now;
        written = until;
      }
      await sleep(rate === Infinity ? 0 : 20);
    }
    closeSync(fd);
    const writeSeconds = (performance.now() - t0) / 1000;
    polling = false;
    await poller;
    const seconds = (performance.now() - t0) / 1000;
    const rss = peakRssMb(agent.child.pid);
    await stop(agent);
    fresh.sort((a, b) => a - b);
    return {
      rate: rate === Infinity ? 'max' : rate,
      events: total,
      writtenPerSecond: total / writeSeconds,
      storedPerSecond: total / seconds,
      freshnessMs: { p50: percentile(fresh, 50), p99: percentile(fresh, 99), max: fresh[fresh.length - 1] },
      peakRssMb: rss,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function splitLines(buf) {
  const out = [];
  let s = 0;
  for (;;) {
    const i = buf.indexOf(0x0a, s);
    if (i < 0) break;
    out.push(buf.subarray(s, i + 1));
    s = i + 1;
  }
  return out;
}

const work = mkdtempSync(join(tmpdir(), 'kaudit-bench-src-'));
try {
  const needed = Math.max(EVENTS, 20_000 * SECONDS);
  const source = generate(join(work, 'audit.log'), needed);
  const all = splitLines(source);
  const head = Buffer.concat(all.slice(0, EVENTS));
  writeFileSync(join(work, 'head.log'), head);
  const base = baseline(join(work, 'head.log'));
  log(
    `baseline read+split: ${base.eventsPerSecond.toFixed(0)} lines/s (${base.mbPerSecond.toFixed(0)} MiB/s)`,
  );

  if (process.env.BENCH_AGENT_ONLY === 'forwarding') {
    // Only the forwarding cost (BENCH_AGENT_ONLY=forwarding): the runs without and with a forwarder,
    // alternated back to back BENCH_ROUNDS times (default 1) on a shared machine.
    let n = 0;
    const srv = createServer((req, res) => {
      const z = createGunzip();
      req.pipe(z);
      z.on('data', (c) => {
        for (let i = c.indexOf(0x0a); i >= 0; i = c.indexOf(0x0a, i + 1)) n++;
      });
      z.on('end', () => res.writeHead(200).end());
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    const rounds = Number(process.env.BENCH_ROUNDS ?? 1);
    const costs = [];
    for (let round = 1; round <= rounds; round++) {
      const plain = await throughput(head, EVENTS, 'detect: {enabled: false}\n');
      n = 0;
      const fwd = await throughput(
        head,
        EVENTS,
        `detect: {enabled: false}\nforward:\n  - type: http\n    url: http://127.0.0.1:${srv.address().port}/in\n`,
        () => n,
      );
      const cost = 1 - fwd.eventsPerSecond / plain.eventsPerSecond;
      costs.push(cost);
      log(
        `round ${round}: without a forwarder ${plain.eventsPerSecond.toFixed(0)} events/s (${plain.cpuSecondsAtLastStore.toFixed(1)} CPU s); with an http forwarder ${fwd.eventsPerSecond.toFixed(0)} events/s (${fwd.cpuSecondsAtLastStore.toFixed(1)} CPU s when the last event was stored); forwarding costs ingest ${(100 * cost).toFixed(1)}%; all ${fwd.forwarder.delivered} delivered after ${fwd.forwarder.allDeliveredSeconds.toFixed(1)} s (${fwd.forwarder.cpuSecondsAllDelivered.toFixed(1)} CPU s); at the last store ${JSON.stringify(fwd.forwarder.atLastStore)}`,
      );
    }
    srv.close();
    const sorted = [...costs].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    log(
      `forwarding's cost to ingest over ${rounds} round(s): median ${(100 * median).toFixed(1)}%, from ${(100 * sorted[0]).toFixed(1)}% to ${(100 * sorted.at(-1)).toFixed(1)}% (target <= 10%: ${median <= 0.1 ? 'met' : 'NOT met'})`,
    );
    process.exit(0);
  }
  const tailer = await tailerOnly(head, EVENTS);
  log(`tailer alone (counting store): ${tailer.eventsPerSecond.toFixed(0)} events/s`);
  const tp = await throughput(head, EVENTS);
  log(
    `throughput: ${tp.eventsPerSecond.toFixed(0)} events/s sustained; ${tp.catchUpEventsPerSecond.toFixed(0)} events/s counting the agent's start (${tp.startSeconds.toFixed(1)} s); peak RSS ${tp.peakRssMb.toFixed(0)} MiB`,
  );
  // The same catch-up with store_trim_memory: true, the documented lower-memory setting.
  const trimmed = await throughput(head, EVENTS, 'store_trim_memory: true\n');
  log(
    `throughput with store_trim_memory: ${trimmed.eventsPerSecond.toFixed(0)} events/s sustained; peak RSS ${trimmed.peakRssMb.toFixed(0)} MiB`,
  );
  // What the work after the store costs: live detection (on by default) and a forwarding sink to
  // a local endpoint that accepts everything. Target for forwarding: <= 10% slower ingest.
  const noDetect = await throughput(head, EVENTS, 'detect: {enabled: false}\n');
  // The endpoint counts the NDJSON lines (gzipped) it is sent.
  let sinkLines = 0;
  const sinkServer = createServer((req, res) => {
    const z = createGunzip();
    req.pipe(z);
    z.on('data', (c) => {
      for (let i = c.indexOf(0x0a); i >= 0; i = c.indexOf(0x0a, i + 1)) sinkLines++;
    });
    z.on('end', () => res.writeHead(200).end());
  });
  await new Promise((r) => sinkServer.listen(0, '127.0.0.1', r));
  const sinkUrl = `http://127.0.0.1:${sinkServer.address().port}/in`;
  const forwarding = await throughput(
    head,
    EVENTS,
    `detect: {enabled: false}\nforward:\n  - type: http\n    url: ${sinkUrl}\n`,
    () => sinkLines,
  );
  log(`forwarder when the last event was stored: ${JSON.stringify(forwarding.forwarder)}`);
  sinkServer.close();
  const detectCost = 1 - tp.eventsPerSecond / noDetect.eventsPerSecond;
  const forwardCost = 1 - forwarding.eventsPerSecond / noDetect.eventsPerSecond;
  log(
    `without detection: ${noDetect.eventsPerSecond.toFixed(0)} events/s (detection costs ${(100 * detectCost).toFixed(1)}%); ` +
      `with an http forwarder, no detection: ${forwarding.eventsPerSecond.toFixed(0)} events/s (forwarding costs ${(100 * forwardCost).toFixed(1)}%, target <= 10%: ${forwardCost <= 0.1 ? 'met' : 'NOT met'})`,
  );
  const runs = [];
  for (const rate of RATES) {
    const r = await freshness(all, rate);
    runs.push(r);
    log(
      `rate ${r.rate}: stored ${r.storedPerSecond.toFixed(0)} events/s, freshness p50 ${r.freshnessMs.p50.toFixed(0)} ms p99 ${r.freshnessMs.p99.toFixed(0)} ms, peak RSS ${r.peakRssMb.toFixed(0)} MiB`,
    );
  }
  const at20k = runs.find((r) => r.rate === 20_000);
  const peakRss = Math.max(tp.peakRssMb, ...runs.map((r) => r.peakRssMb));
  const summary = {
    date: new Date().toISOString(),
    node: process.version,
    bytesPerEvent: Math.round(base.bytes / base.lines),
    baseline: base,
    tailerOnly: { ...tailer, ratioToBaseline: tailer.eventsPerSecond / base.eventsPerSecond },
    throughput: { ...tp, ratioToBaseline: tp.eventsPerSecond / base.eventsPerSecond },
    throughputTrimMemory: { ...trimmed, ratioToBaseline: trimmed.eventsPerSecond / base.eventsPerSecond },
    throughputNoDetection: { ...noDetect, ratioToBaseline: noDetect.eventsPerSecond / base.eventsPerSecond },
    throughputForwarding: { ...forwarding, costVsNoDetection: forwardCost },
    freshness: runs,
    targets: {
      eventsPerSecond: {
        target: TARGETS.eventsPerSecond,
        measured: tp.eventsPerSecond,
        met: tp.eventsPerSecond >= TARGETS.eventsPerSecond,
      },
      freshnessP99AtRate20kMs: {
        target: TARGETS.freshnessP99AtRate20kMs,
        measured: at20k?.freshnessMs.p99,
        met: (at20k?.freshnessMs.p99 ?? Infinity) <= TARGETS.freshnessP99AtRate20kMs,
      },
      peakRssMb: { target: TARGETS.rssMb, measured: peakRss, met: peakRss <= TARGETS.rssMb },
    },
  };
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, 'agent.json'), `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  process.stderr.write(
    `\ntailer alone: ${tailer.eventsPerSecond.toFixed(0)} events/s = ${(100 * summary.tailerOnly.ratioToBaseline).toFixed(1)}% of plain read+split\n` +
      `agent end to end (DuckDB): ${tp.eventsPerSecond.toFixed(0)} events/s sustained = ${(100 * summary.throughput.ratioToBaseline).toFixed(1)}% of plain read+split` +
      ` (target ${TARGETS.eventsPerSecond}: ${summary.targets.eventsPerSecond.met ? 'met' : 'NOT met'});` +
      ` ${tp.catchUpEventsPerSecond.toFixed(0)} events/s counting the agent's start\n` +
      `freshness p99 at 20k/s: ${at20k?.freshnessMs.p99.toFixed(0)} ms (target ${TARGETS.freshnessP99AtRate20kMs}: ${summary.targets.freshnessP99AtRate20kMs.met ? 'met' : 'NOT met'})\n` +
      `peak RSS: ${peakRss.toFixed(0)} MiB (target ${TARGETS.rssMb}: ${summary.targets.peakRssMb.met ? 'met' : 'NOT met'})\n` +
      `with store_trim_memory: true, catching up: ${trimmed.eventsPerSecond.toFixed(0)} events/s sustained, peak RSS ${trimmed.peakRssMb.toFixed(0)} MiB\n`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
