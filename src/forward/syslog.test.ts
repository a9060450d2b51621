import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../collect/logger.js';
import { SyslogSink, syslogMessage } from './syslog.js';

const RSYSLOGD = '/usr/sbin/rsyslogd';
const quiet = createLogger({ out: { write: () => true } as unknown as NodeJS.WritableStream });

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const event = (i: number) => ({
  kind: 'Event',
  apiVersion: 'audit.k8s.io/v1',
  level: 'Metadata',
  auditID: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  stage: 'ResponseComplete',
  requestURI: '/api/v1/namespaces/default/pods',
  verb: 'list',
  user: { username: 'alice' },
  requestReceivedTimestamp: '2026-01-15T09:00:00.123456Z',
  stageTimestamp: '2026-01-15T09:00:00.223456Z',
});

describe('syslog framing', () => {
  it('writes RFC 5424 with an octet count that is the message length in bytes', () => {
    const e = event(1) as unknown as Parameters<typeof syslogMessage>[0];
    const frame = syslogMessage(
      e,
      'prod "eu"]',
      JSON.stringify({ ...e, note: 'ünïcode' }),
      16,
      'node-1',
    ).toString();
    const sp = frame.indexOf(' ');
    const len = Number(frame.slice(0, sp));
    expect(Buffer.byteLength(frame.slice(sp + 1))).toBe(len);
    expect(frame.slice(sp + 1)).toMatch(
      /^<134>1 2026-01-15T09:00:00.223456Z node-1 kube-apiserver - audit \[kaudit@32473 cluster="prod \\"eu\\"\\]" /,
    );
  });
});

// Debian's rsyslog, started here on loopback with a TCP input (.ci/run installs it).
describe.runIf(existsSync(RSYSLOGD) || process.env.CI !== undefined)(
  'syslog sink into a real rsyslog',
  () => {
    let dir: string;
    let port: number;
    let rsyslog: ChildProcess;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'kaudit-rsyslog-'));
      port = await freePort();
      writeFileSync(
        join(dir, 'rsyslog.conf'),
        `global(workDirectory="${dir}")
module(load="imtcp")
template(name="raw" type="string" string="%app-name% %msgid% %msg%\\n")
ruleset(name="audit") { action(type="omfile" file="${join(dir, 'out.log')}" template="raw") }
input(type="imtcp" port="${port}" address="127.0.0.1" ruleset="audit")
`,
      );
      rsyslog = spawn(RSYSLOGD, ['-n', '-f', join(dir, 'rsyslog.conf'), '-i', join(dir, 'pid')], {
        stdio: 'ignore',
      });
      for (let i = 0; i < 100; i++) {
        const up = await new Promise<boolean>((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => {
            s.destroy();
            resolve(true);
          });
          s.on('error', () => resolve(false));
        });
        if (up) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('rsyslogd did not start');
    });

    afterAll(() => {
      rsyslog?.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    });

    it('receives every event once, framed correctly, over TCP', async () => {
      const sink = new SyslogSink({ name: 'siem', host: '127.0.0.1', port, log: quiet });
      const n = 500;
      for (let b = 0; b < 5; b++)
        await sink.export({
          cluster: 'prod',
          events: Array.from({ length: n / 5 }, (_, k) =>
            Buffer.from(JSON.stringify(event(b * (n / 5) + k))),
          ),
        });
      await sink.shutdown();
      const out = join(dir, 'out.log');
      let lines: string[] = [];
      for (let i = 0; i < 100 && lines.length < n; i++) {
        await new Promise((r) => setTimeout(r, 50));
        lines = existsSync(out) ? readFileSync(out, 'utf8').trim().split('\n') : [];
      }
      expect(lines).toHaveLength(n);
      const ids = lines.map((l) => {
        expect(l.startsWith('kube-apiserver audit ')).toBe(true);
        return (JSON.parse(l.slice('kube-apiserver audit '.length)) as { auditID: string }).auditID;
      });
      expect(ids).toEqual(Array.from({ length: n }, (_, i) => event(i).auditID));
      expect(sink.stats()).toMatchObject({ sentEvents: n, retries: 0 });
    });
  },
);
