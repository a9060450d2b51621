import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import { UserError } from '../model/errors.js';

export interface ListenOptions {
  host: string;
  port: number;
  /** Server certificate and key; with clientCa, clients must present a certificate it signed. */
  tls?: { cert: string; key: string; clientCa?: string };
  /** Bearer tokens are configured (TokenAuth.configured). */
  tokens: boolean;
}

export interface RunningServer {
  readonly url: string;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  return /^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(host);
}

/**
 * Serves the app. Off loopback it must not be open to anyone who can reach the port: it refuses to
 * start unless bearer tokens or client certificates guard it.
 */
export async function listen(app: Hono, opts: ListenOptions): Promise<RunningServer> {
  const guarded = opts.tokens || opts.tls?.clientCa !== undefined;
  if (!isLoopback(opts.host) && !guarded) {
    throw new UserError(
      'KAUDIT_SERVE_UNGUARDED',
      `refusing to listen on ${opts.host}: the API would answer anyone who can reach it with audit events`,
      {
        hint: 'configure bearer tokens (--token-file, --admin-token-file) or TLS client certificates (--tls-cert, --tls-key, --client-ca), or listen on 127.0.0.1',
      },
    );
  }
  const tls = opts.tls;
  const serverOptions =
    tls === undefined
      ? undefined
      : {
          cert: readFileSync(tls.cert),
          key: readFileSync(tls.key),
          ...(tls.clientCa === undefined
            ? {}
            : { ca: readFileSync(tls.clientCa), requestCert: true, rejectUnauthorized: true }),
        };
  const server = await new Promise<Server>((resolve, reject) => {
    const s = (
      serverOptions === undefined
        ? serve({ fetch: app.fetch, hostname: opts.host, port: opts.port })
        : serve({
            fetch: app.fetch,
            hostname: opts.host,
            port: opts.port,
            createServer: createHttpsServer,
            serverOptions,
          })
    ) as Server;
    s.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new UserError('KAUDIT_LISTEN_FAILED', `cannot listen on ${opts.host}:${opts.port}: ${err.message}`, {
          hint: err.code === 'EADDRINUSE' ? 'another process uses the port; pick another with --listen' : '',
        }),
      ),
    );
    s.once('listening', () => resolve(s));
  });
  // Idle keep-alive connections must not hold a stop.
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 300_000;
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    url: `${tls === undefined ? 'http' : 'https'}://${host}:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
