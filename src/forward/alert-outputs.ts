/**
 * Where the agent sends new alerts besides its alert log (`detect.outputs` in kaudit.yaml): stdout,
 * a file, a generic webhook and a Slack-compatible incoming webhook.
 *
 * The webhooks deliver at least once, across restarts too: the alert log is their queue. Each keeps
 * the byte offset of the last alert it delivered in `DATA/alerts.<name>.offset`; after new alerts
 * are appended it sends what lies past its offset, retrying with backoff while the receiver is down,
 * and moves the offset only after the receiver said 2xx. A crash between the two resends, never
 * loses. A per-rule throttle (alerts per rule per minute) keeps a noisy rule from flooding a channel;
 * what it holds back is counted and stays in the alert log.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { appendFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AlertOutput } from '../collect/detection-sink.js';
import type { Logger } from '../collect/logger.js';
import type { LoggedAlert } from '../detect/alert-log.js';
import { backoffMs, deliver } from './deliver.js';

export type AlertOutputConfig =
  | { type: 'stdout' }
  | { type: 'file'; path: string }
  | { type: 'webhook'; url: string; token?: string }
  | { type: 'slack'; url: string };

export interface AlertOutputDeps {
  /** The alert log the webhooks follow (`DATA/alerts.ndjson`). */
  alertLogPath: string;
  dataDir: string;
  log: Logger;
  maxPerRulePerMinute: number;
  fetch?: typeof fetch;
  /** Longest wait between retries. */
  maxBackoffMs?: number;
  now?: () => number;
}

export interface AlertOutputStats {
  name: string;
  sent: number;
  throttled: number;
  failures: number;
  lastError: string | undefined;
}

export interface RunningAlertOutput extends AlertOutput {
  stats(): AlertOutputStats;
  /** Stops retrying; what is not delivered yet is sent after the next start. */
  close(): Promise<void>;
}

export function createAlertOutputs(
  configs: readonly AlertOutputConfig[],
  deps: AlertOutputDeps,
): RunningAlertOutput[] {
  const counts = new Map<string, number>();
  return configs.map((c) => {
    const n = (counts.get(c.type) ?? 0) + 1;
    counts.set(c.type, n);
    return createOutput(c, n === 1 ? c.type : `${c.type}-${n}`, deps);
  });
}

function createOutput(c: AlertOutputConfig, name: string, deps: AlertOutputDeps): RunningAlertOutput {
  switch (c.type) {
    case 'stdout':
      return new LineOutput(
        name,
        (text) => {
          process.stdout.write(text);
          return Promise.resolve();
        },
        deps,
      );
    case 'file':
      return new LineOutput(name, (text) => appendFile(c.path, text, { mode: 0o600 }), deps);
    case 'webhook':
      return new WebhookOutput(name, deps, (alerts) => ({
        body: JSON.stringify(alerts),
        headers: {
          'content-type': 'application/json',
          ...(c.token === undefined ? {} : { authorization: `Bearer ${c.token}` }),
        },
        url: c.url,
      }));
    case 'slack':
      return new WebhookOutput(name, deps, (alerts) => ({
        body: JSON.stringify({ text: alerts.map(slackLine).join('\n') }),
        headers: { 'content-type': 'application/json' },
        url: c.url,
      }));
  }
}

/** One line of a Slack message: severity, rule, what happened, where. */
export function slackLine(a: LoggedAlert): string {
  const sev = a.rule.severity.toUpperCase();
  const title = typeof a.rule.title === 'string' ? a.rule.title : a.rule.id;
  const where = [a.cluster, a.namespace].filter((x) => typeof x === 'string' && x !== '').join('/');
  const msg = typeof a.message === 'string' ? a.message : '';
  return `*[${sev}]* ${title}: ${msg}${where === '' ? '' : ` (${where})`} \`${a.rule.id}\` ${a.time}`;
}

/** Per rule, at most `max` alerts in each wall-clock minute. */
class Throttle {
  private minute = -1;
  private readonly counts = new Map<string, number>();
  held = 0;

  constructor(
    private readonly max: number,
    private readonly now: () => number,
  ) {}

  pass(a: LoggedAlert): boolean {
    const minute = Math.floor(this.now() / 60_000);
    if (minute !== this.minute) {
      this.minute = minute;
      this.counts.clear();
    }
    const n = (this.counts.get(a.rule.id) ?? 0) + 1;
    this.counts.set(a.rule.id, n);
    if (n <= this.max) return true;
    this.held++;
    return false;
  }
}

/** stdout and files: NDJSON lines, written as alerts come. */
class LineOutput implements RunningAlertOutput {
  private sent = 0;
  private failures = 0;
  private lastError: string | undefined;
  private readonly throttle: Throttle;

  constructor(
    readonly name: string,
    private readonly write: (text: string) => Promise<void>,
    deps: AlertOutputDeps,
  ) {
    this.throttle = new Throttle(deps.maxPerRulePerMinute, deps.now ?? Date.now);
  }

  async send(alerts: readonly LoggedAlert[]): Promise<void> {
    const pass = alerts.filter((a) => this.throttle.pass(a));
    if (pass.length === 0) return;
    try {
      await this.write(pass.map((a) => `${JSON.stringify(a)}\n`).join(''));
      this.sent += pass.length;
    } catch (err) {
      this.failures++;
      this.lastError = err instanceof Error ? err.message : String(err);
      throw err;
    }
  }

  stats(): AlertOutputStats {
    return {
      name: this.name,
      sent: this.sent,
      throttled: this.throttle.held,
      failures: this.failures,
      lastError: this.lastError,
    };
  }

  async close(): Promise<void> {}
}

interface Request {
  url: string;
  body: string;
  headers: Record<string, string>;
}

/** Alerts per POST; Slack shows a long message folded, receivers take arrays of this size easily. */
const BATCH = 20;

class WebhookOutput implements RunningAlertOutput {
  private readonly offsetPath: string;
  private offset: number;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private wake: (() => void) | undefined;
  private sent = 0;
  private failures = 0;
  private lastError: string | undefined;
  private readonly throttle: Throttle;

  constructor(
    readonly name: string,
    private readonly deps: AlertOutputDeps,
    private readonly request: (alerts: LoggedAlert[]) => Request,
  ) {
    this.offsetPath = join(deps.dataDir, `alerts.${name}.offset`);
    this.throttle = new Throttle(deps.maxPerRulePerMinute, deps.now ?? Date.now);
    this.offset = readOffset(this.offsetPath, deps.alertLogPath);
    // Saved at once: alerts appended from now on are owed to the receiver even if this run stops first.
    if (!existsSync(this.offsetPath)) writeFileSync(this.offsetPath, `${this.offset}\n`, { mode: 0o600 });
    // What an earlier run appended but did not deliver goes first.
    this.poke();
  }

  /** New alerts are in the log: deliver everything past the offset. */
  send(_alerts: readonly LoggedAlert[]): Promise<void> {
    this.poke();
    return Promise.resolve();
  }

  private poke(): void {
    if (this.closed) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .catch((err: unknown) =>
        this.deps.log.error('alert output stopped', { output: this.name, error: String(err) }),
      )
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }

  private async drain(): Promise<void> {
    for (;;) {
      const { alerts, end } = readAlertsFrom(this.deps.alertLogPath, this.offset);
      if (alerts.length === 0) {
        await this.saveOffset(end);
        return;
      }
      const pass = alerts.filter((a) => this.throttle.pass(a));
      for (let i = 0; i < pass.length; i += BATCH) {
        const ok = await this.deliverWithRetry(pass.slice(i, i + BATCH));
        if (!ok) return; // closed while retrying: the offset stays, the next start resends
      }
      await this.saveOffset(end);
    }
  }

  private async deliverWithRetry(alerts: LoggedAlert[]): Promise<boolean> {
    const req = this.request(alerts);
    for (let attempt = 0; !this.closed; attempt++) {
      const d = await deliver(
        { body: Buffer.from(req.body), headers: req.headers, events: [], truncated: 0 },
        {
          url: req.url,
          timeoutMs: 10_000,
          ...(this.deps.fetch === undefined ? {} : { fetch: this.deps.fetch }),
        },
      );
      if (d.kind === 'ok') {
        this.sent += alerts.length;
        return true;
      }
      this.failures++;
      this.lastError = d.reason;
      if (d.kind === 'reject') {
        // The receiver will never take these as they are; they stay in the alert log.
        this.deps.log.error('alert webhook refused alerts', {
          output: this.name,
          reason: d.reason,
          alerts: alerts.length,
        });
        return true;
      }
      const wait =
        d.kind === 'retry' && d.afterMs !== undefined
          ? d.afterMs
          : backoffMs(attempt, 500, this.deps.maxBackoffMs ?? 60_000);
      if (attempt === 0 || attempt % 10 === 0)
        this.deps.log.warn('alert webhook failed, retrying', {
          output: this.name,
          reason: d.reason,
          attempt,
        });
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, wait);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return false;
  }

  private async saveOffset(end: number): Promise<void> {
    if (end === this.offset) return;
    this.offset = end;
    const tmp = `${this.offsetPath}.tmp`;
    await writeFile(tmp, `${end}\n`, { mode: 0o600 });
    await rename(tmp, this.offsetPath);
  }

  stats(): AlertOutputStats {
    return {
      name: this.name,
      sent: this.sent,
      throttled: this.throttle.held,
      failures: this.failures,
      lastError: this.lastError,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.running;
  }
}

/**
 * The saved offset; a new output starts at the end of the log (it delivers alerts from now on, not
 * the history), and an offset past the end (the log was replaced) starts over at 0.
 */
function readOffset(offsetPath: string, logPath: string): number {
  const size = existsSync(logPath) ? statSync(logPath).size : 0;
  if (!existsSync(offsetPath)) return size;
  const n = Number(readFileSync(offsetPath, 'utf8').trim());
  if (!Number.isSafeInteger(n) || n < 0 || n > size) return n > size ? 0 : size;
  return n;
}

/** The whole alert lines from `offset`, and the offset just past the last of them. */
function readAlertsFrom(path: string, offset: number): { alerts: LoggedAlert[]; end: number } {
  if (!existsSync(path)) return { alerts: [], end: offset };
  const size = statSync(path).size;
  const want = Math.min(size - offset, 4 << 20);
  if (want <= 0) return { alerts: [], end: offset };
  const buf = Buffer.alloc(want);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, want, offset);
  } finally {
    closeSync(fd);
  }
  const lastNewline = buf.lastIndexOf(0x0a);
  if (lastNewline < 0) return { alerts: [], end: offset };
  const alerts: LoggedAlert[] = [];
  for (const line of buf.subarray(0, lastNewline).toString('utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      alerts.push(JSON.parse(line) as LoggedAlert);
    } catch {
      // a line cut by a crash mid-write; the alert log's readers skip it too
    }
  }
  return { alerts, end: offset + lastNewline + 1 };
}
