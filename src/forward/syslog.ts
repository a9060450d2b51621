/**
 * RFC 5424 syslog over TCP or TLS with octet-counted framing (RFC 6587 3.4.1): `LEN SP MSG`, so a
 * message may hold any byte, newlines included. One message per audit event: facility local0
 * (16), severity informational (6), APP-NAME `kube-apiserver`, MSGID `audit`, structured data
 * with the cluster, and the event's JSON as the message.
 */
import net from 'node:net';
import { hostname } from 'node:os';
import tls from 'node:tls';
import type { Logger } from '../collect/logger.js';
import type { Sink, StoredBatch } from '../collect/sinks.js';
import type { AuditEvent } from '../model/event.js';
import { backoffMs } from './deliver.js';

export interface SyslogOptions {
  name: string;
  host: string;
  port: number;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; servername?: string };
  /** RFC 5424 facility; default 16 (local0). */
  facility?: number;
  log: Logger;
  sleep?: (ms: number) => Promise<void>;
}

/** Escapes a structured-data parameter value (RFC 5424 6.3.3: `"`, `\` and `]`). */
function sdValue(v: string): string {
  return v.replace(/[\\"\]]/g, (c) => `\\${c}`);
}

/** A printable-ASCII field of at most `max` characters, `-` when empty (RFC 5424 6.2). */
function field(v: string | undefined, max: number): string {
  const s = (v ?? '').replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return s === '' ? '-' : s;
}

export function syslogMessage(
  e: AuditEvent,
  cluster: string,
  json: string,
  facility = 16,
  host = hostname(),
): Buffer {
  const pri = facility * 8 + 6;
  const ts = e.stageTimestamp ?? e.requestReceivedTimestamp;
  const sd = `[kaudit@32473 cluster="${sdValue(cluster)}" auditID="${sdValue(e.auditID)}" stage="${sdValue(e.stage)}" verb="${sdValue(e.verb)}"]`;
  const msg = Buffer.from(
    `<${pri}>1 ${field(ts, 64)} ${field(host, 255)} kube-apiserver - audit ${sd} ${json}`,
  );
  return Buffer.concat([Buffer.from(`${msg.length} `), msg]);
}

export class SyslogSink implements Sink {
  private socket: net.Socket | undefined;
  private sent = 0;
  private retries = 0;
  private lastError: string | undefined;
  private stopping = false;
  private wake: (() => void) | undefined;

  constructor(private readonly opts: SyslogOptions) {}

  get name(): string {
    return this.opts.name;
  }

  private connect(): Promise<net.Socket> {
    const { host, port } = this.opts;
    return new Promise((resolve, reject) => {
      const s =
        this.opts.tls === undefined
          ? net.connect({ host, port })
          : tls.connect({ host, port, ...this.opts.tls, servername: this.opts.tls.servername ?? host });
      const ready = this.opts.tls === undefined ? 'connect' : 'secureConnect';
      s.once(ready, () => {
        s.removeAllListeners('error');
        s.on('error', () => s.destroy());
        resolve(s);
      });
      s.once('error', reject);
    });
  }

  async export(batch: StoredBatch): Promise<void> {
    const frames: Buffer[] = [];
    for (const buf of batch.events) {
      const json = buf.toString('utf8');
      let e: AuditEvent;
      try {
        e = JSON.parse(json) as AuditEvent;
      } catch {
        continue;
      }
      frames.push(syslogMessage(e, batch.cluster, json, this.opts.facility));
    }
    if (frames.length === 0) return;
    const data = Buffer.concat(frames);
    // A shutdown cuts the wait short; the send then fails and the store keeps the events.
    const sleep =
      this.opts.sleep ??
      ((ms: number) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        }));
    for (let attempt = 0; ; attempt++) {
      try {
        if (this.socket === undefined || this.socket.destroyed) this.socket = await this.connect();
        const s = this.socket;
        await new Promise<void>((resolve, reject) => s.write(data, (err) => (err ? reject(err) : resolve())));
        this.sent += frames.length;
        return;
      } catch (err) {
        this.socket?.destroy();
        this.socket = undefined;
        this.lastError = err instanceof Error ? err.message : String(err);
        if (this.stopping) throw err;
        this.retries++;
        if (attempt === 0)
          this.opts.log.warn('syslog: send failed; retrying', { sink: this.name, error: this.lastError });
        await sleep(backoffMs(attempt));
      }
    }
  }

  async shutdown(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    const s = this.socket;
    if (s !== undefined && !s.destroyed) await new Promise<void>((resolve) => s.end(resolve));
  }

  stats() {
    return {
      name: this.name,
      type: 'syslog',
      sentEvents: this.sent,
      retries: this.retries,
      lastError: this.lastError,
    };
  }
}
