/**
 * Alerts are kept beside the events, in `DATA/alerts.ndjson`: one JSON alert a line, appended, so
 * `kaudit alerts`, the API and the dashboard read them whether or not the agent holds the store.
 * An alert is recorded once per (rule, auditID, stage): a re-read file or a backtest over events
 * already alerted on adds nothing.
 */
import { createReadStream, existsSync, mkdirSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const ALERT_FILE = 'alerts.ndjson';

/** The part of an alert the log needs; the rest is kept as it is. */
export interface LoggedAlert {
  time: string;
  rule: { id: string; severity: string; [k: string]: unknown };
  auditID?: string;
  stage?: string;
  auditIDs?: string[];
  cluster?: string;
  [k: string]: unknown;
}

export interface AlertQuery {
  since?: string;
  until?: string;
  /** At or above this severity. */
  minSeverity?: string;
  rule?: string[];
  cluster?: string[];
  limit?: number;
}

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;

export function alertKey(a: LoggedAlert): string {
  const events = a.auditID ?? (a.auditIDs ?? []).join(',');
  return `${a.rule.id}\u0000${a.cluster ?? ''}\u0000${events}\u0000${a.stage ?? ''}`;
}

export class AlertLog {
  readonly path: string;
  private readonly keys = new Set<string>();
  private chain: Promise<void> = Promise.resolve();

  private constructor(dataDir: string) {
    this.path = join(dataDir, ALERT_FILE);
  }

  /** Opens the log, learning the keys of the alerts already in it. */
  static async open(dataDir: string): Promise<AlertLog> {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const log = new AlertLog(dataDir);
    for await (const a of readAlerts(log.path)) log.keys.add(alertKey(a));
    return log;
  }

  /** Appends the alerts not recorded before; returns those (the new ones). */
  append(alerts: readonly LoggedAlert[]): Promise<LoggedAlert[]> {
    const fresh = alerts.filter((a) => {
      const k = alertKey(a);
      if (this.keys.has(k)) return false;
      this.keys.add(k);
      return true;
    });
    if (fresh.length === 0) return Promise.resolve([]);
    const text = fresh.map((a) => `${JSON.stringify(a)}\n`).join('');
    const write = this.chain.then(() => appendFile(this.path, text, { mode: 0o600 }));
    // A failed write must not keep failing every later one.
    this.chain = write.catch(() => undefined);
    return write.then(() => fresh);
  }

  get size(): number {
    return this.keys.size;
  }
}

/** Every alert in the file, oldest first; lines that are not alerts are skipped. */
export async function* readAlerts(path: string): AsyncGenerator<LoggedAlert> {
  if (!existsSync(path)) return;
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    try {
      const a = JSON.parse(line) as LoggedAlert;
      if (typeof a?.rule?.id === 'string' && typeof a.time === 'string') yield a;
    } catch {
      // a line cut by a crash mid-write
    }
  }
}

/** The alerts matching the query, newest first. */
export async function queryAlerts(dataDir: string, q: AlertQuery = {}): Promise<LoggedAlert[]> {
  const min =
    q.minSeverity === undefined ? 0 : SEVERITIES.indexOf(q.minSeverity as (typeof SEVERITIES)[number]);
  const out: LoggedAlert[] = [];
  for await (const a of readAlerts(join(dataDir, ALERT_FILE))) {
    if (q.since !== undefined && a.time < q.since) continue;
    if (q.until !== undefined && a.time >= q.until) continue;
    if (SEVERITIES.indexOf(a.rule.severity as (typeof SEVERITIES)[number]) < min) continue;
    if (q.rule !== undefined && !q.rule.includes(a.rule.id)) continue;
    if (q.cluster !== undefined && !q.cluster.includes(a.cluster ?? '')) continue;
    out.push(a);
  }
  out.sort((a, b) => b.time.localeCompare(a.time));
  return q.limit === undefined ? out : out.slice(0, q.limit);
}
