import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { createGunzip } from 'node:zlib';
import { UserError } from '../model/errors.js';
import { parseJsonKeepingNumbers } from '../model/json.js';
import { formatListen, type WebhookSourceConfig } from './agent-config.js';
import { type Clock, type ClockTimer, systemClock } from './clock.js';
import { defaultWebhookLimits, type WebhookLimits } from './config/source-config.js';

export type { WebhookLimits };

import type { Logger } from './logger.js';
import type { PipelineItem, Preparer } from './pipeline.js';

/** What the TLS layer learnt about the client; absent on plain HTTP. */
export interface ClientCertificate {
  /** The certificate chains to client_ca. */
  authorized: boolean;
  /** Subject CN and DNS/URI SANs. */
  names: string[];
}

export interface WebhookHandlerOptions {
  config: WebhookSourceConfig;
  prepare: Preparer;
  /** Queues an item if there is room now (the pipeline's tryOffer). */
  tryOffer: (item: PipelineItem) => boolean;
  /** Bearer token the client must send; undefined when no token_file is configured. */
  token?: string;
  log: Logger;
  /** Overrides config.limits (default: defaultWebhookLimits(config.maxBodyBytes)). */
  limits?: Partial<WebhookLimits>;
  /** Time for the body-idle timeout (default: the system clock). */
  clock?: Clock;
}

export interface WebhookStatus {
  name: string;
  type: 'webhook';
  listen: string;
  path: string;
  source: string;
  service: string;
  status: 'OK' | 'Error';
  error?: string;
  requests: number;
  events: number;
  truncated: number;
  malformed: number;
  dropped: number;
  /** Answers by HTTP status code. */
  responses: Record<string, number>;
  lastRequestAt: string | null;
}

/** Seconds kube-apiserver's webhook backend is asked to wait when the pipeline is full. */
const RETRY_AFTER_SECONDS = 1;
/*
 * Bodies are held whole while they are parsed and stored: admission is by the bytes actually
 * buffered (compressed and decompressed, limits.maxBufferedBytes for all requests together), so a
 * client that opens connections and sends nothing holds no room, and memory stays bounded.
 */

class BodyTooLarge extends Error {}
class BodyStalled extends Error {}
class NoRoom extends Error {}
class Stopping extends Error {}

/** Bytes held for bodies across requests; reserve() fails rather than go over the budget. */
class ByteBudget {
  held = 0;
  constructor(readonly limit: number) {}
  reserve(n: number): boolean {
    if (this.held + n > this.limit) return false;
    this.held += n;
    return true;
  }
  release(n: number): void {
    this.held -= n;
  }
}

function json(status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): Response {
  return new Response(`${JSON.stringify(body)}\n`, {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

/** One request's share of the budget: every byte it holds is reserved here and released at its end. */
class BodyBytes {
  held = 0;
  constructor(private readonly budget: ByteBudget) {}
  take(n: number): void {
    if (!this.budget.reserve(n)) throw new NoRoom();
    this.held += n;
  }
  releaseAll(): void {
    this.budget.release(this.held);
    this.held = 0;
  }
}

async function readLimited(
  stream: ReadableStream<Uint8Array> | null,
  limit: number,
  bytes: BodyBytes,
  idleMs: number,
  onCancel: (cancel: () => void) => () => void,
  clock: Clock,
): Promise<Buffer> {
  if (stream === null) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let n = 0;
  const reader = stream.getReader();
  let stopped = false;
  const unregister = onCancel(() => {
    stopped = true;
    reader.cancel().catch(() => undefined);
  });
  try {
    for (;;) {
      let timer: ClockTimer | undefined;
      const idle = new Promise<'idle'>((resolve) => {
        timer = clock.setTimeout(() => resolve('idle'), idleMs);
      });
      const next = await Promise.race([reader.read(), idle]).finally(() => {
        if (timer !== undefined) clock.clearTimeout(timer);
      });
      if (stopped) throw new Stopping();
      if (next === 'idle') throw new BodyStalled();
      if (next.done) break;
      const value = next.value;
      n += value.length;
      if (n > limit) throw new BodyTooLarge();
      bytes.take(value.length);
      chunks.push(Buffer.from(value.buffer, value.byteOffset, value.length));
    }
  } catch (err) {
    await reader.cancel().catch(() => undefined);
    throw err;
  } finally {
    unregister();
  }
  return Buffer.concat(chunks, n);
}

/** Decompresses within `limit` bytes (the decompressed size is what is parsed and held). */
async function gunzipLimited(body: Buffer, limit: number, bytes: BodyBytes): Promise<Buffer> {
  const gunzip = createGunzip();
  const chunks: Buffer[] = [];
  let n = 0;
  gunzip.end(body);
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > limit) throw new BodyTooLarge();
      bytes.take(chunk.length);
      chunks.push(chunk);
    }
  } catch (err) {
    gunzip.destroy();
    throw err;
  }
  return Buffer.concat(chunks, n);
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The receiver for kube-apiserver's `--audit-webhook-config-file`, as a fetch-style handler so it can
 * be tested with `handler(new Request(...))` and no socket. 200 is sent only once the store has the
 * batch: kube-apiserver's webhook backend retries 429 and 5xx and drops the batch on anything else.
 */
export class WebhookHandler {
  private readonly counters = { requests: 0, events: 0, truncated: 0, malformed: 0, dropped: 0 };
  private readonly responses: Record<string, number> = {};
  private lastRequestAt: Date | undefined;
  private readonly budget: ByteBudget;
  /** Cancels the bodies being read, for stop. */
  private readonly readers = new Set<() => void>();
  private stopping = false;
  error: string | undefined;

  private readonly limits: WebhookLimits;

  constructor(private readonly opts: WebhookHandlerOptions) {
    this.limits = webhookLimits(opts.config, opts.limits);
    this.budget = new ByteBudget(this.limits.maxBufferedBytes);
  }

  /** Bytes of bodies held now, all requests together. */
  get bufferedBytes(): number {
    return this.budget.held;
  }

  /**
   * Stop taking batches: bodies still arriving are abandoned (nothing of them was acknowledged;
   * kube-apiserver sends them again) and new requests get 503. Batches already handed to the
   * pipeline are answered as it drains.
   */
  requestStop(): void {
    this.stopping = true;
    for (const cancel of this.readers) cancel();
  }

  status(): WebhookStatus {
    const c = this.opts.config;
    const s: WebhookStatus = {
      name: c.name,
      type: 'webhook',
      listen: formatListen(c.listen),
      path: c.path,
      source: c.source,
      service: c.service,
      status: this.error === undefined ? 'OK' : 'Error',
      ...this.counters,
      responses: { ...this.responses },
      lastRequestAt: this.lastRequestAt?.toISOString() ?? null,
    };
    if (this.error !== undefined) s.error = this.error;
    return s;
  }

  fetch = async (req: Request, client?: ClientCertificate): Promise<Response> => {
    const res = await this.handle(req, client);
    this.responses[res.status] = (this.responses[res.status] ?? 0) + 1;
    return res;
  };

  private authenticate(req: Request, client: ClientCertificate | undefined): Response | undefined {
    const { config, token } = this.opts;
    const wantsCert = config.tls?.clientCa !== undefined;
    if (!wantsCert && token === undefined) return undefined;
    if (token !== undefined) {
      const header = req.headers.get('authorization') ?? '';
      const m = /^Bearer\s+(.+)$/i.exec(header.trim());
      if (m?.[1] !== undefined && safeEqual(m[1], token)) return undefined;
    }
    if (wantsCert && client?.authorized) {
      const allowed = config.tls?.allowedNames ?? [];
      if (allowed.length === 0 || client.names.some((n) => allowed.includes(n))) return undefined;
      return json(403, {
        error: `client certificate ${client.names.join(', ')} is not in tls.allowed_names of this receiver`,
      });
    }
    const what = [
      token !== undefined ? 'a valid bearer token' : '',
      wantsCert ? 'a client certificate signed by client_ca' : '',
    ]
      .filter(Boolean)
      .join(' or ');
    return json(401, { error: `authentication required: send ${what}` }, { 'www-authenticate': 'Bearer' });
  }

  private async handle(req: Request, client: ClientCertificate | undefined): Promise<Response> {
    const { config } = this.opts;
    const url = new URL(req.url);
    if (url.pathname !== config.path)
      return json(404, { error: `not found; audit events go to ${config.path}` });
    if (req.method !== 'POST') return json(405, { error: 'use POST' }, { allow: 'POST' });
    this.counters.requests++;
    this.lastRequestAt = new Date();
    const denied = this.authenticate(req, client);
    if (denied !== undefined) return denied;

    if (this.stopping) {
      await req.body?.cancel().catch(() => undefined);
      return json(
        503,
        { error: 'the agent is stopping; retry later' },
        { 'retry-after': String(RETRY_AFTER_SECONDS) },
      );
    }
    const bytes = new BodyBytes(this.budget);
    try {
      return await this.receive(req, bytes);
    } finally {
      bytes.releaseAll();
    }
  }

  private async receive(req: Request, bytes: BodyBytes): Promise<Response> {
    const { config } = this.opts;
    const limit = config.maxBodyBytes;
    const declared = Number(req.headers.get('content-length') ?? Number.NaN);
    if (Number.isFinite(declared) && declared > limit) {
      await req.body?.cancel().catch(() => undefined);
      return json(413, {
        error: `body of ${declared} bytes is over the limit of ${limit} bytes (max_body_bytes)`,
      });
    }
    const tooBusy = (): Response =>
      json(
        429,
        {
          error: `the receiver holds ${this.budget.held} bytes of bodies, its limit is ${this.budget.limit}; retry later`,
        },
        { 'retry-after': String(RETRY_AFTER_SECONDS) },
      );
    if (Number.isFinite(declared) && this.budget.held + declared > this.budget.limit) {
      await req.body?.cancel().catch(() => undefined);
      return tooBusy();
    }
    let body: Buffer;
    try {
      body = await readLimited(
        req.body,
        limit,
        bytes,
        this.limits.bodyIdleMs,
        (cancel) => {
          this.readers.add(cancel);
          return () => this.readers.delete(cancel);
        },
        this.opts.clock ?? systemClock,
      );
      const encoding = (req.headers.get('content-encoding') ?? '').toLowerCase();
      if (encoding === 'gzip') {
        try {
          body = await gunzipLimited(body, this.limits.maxDecompressedBytes, bytes);
        } catch (err) {
          if (!(err instanceof BodyTooLarge)) throw err;
          return json(413, {
            error: `body is over the limit of ${this.limits.maxDecompressedBytes} bytes once decompressed (max_decompressed_bytes)`,
          });
        }
      } else if (encoding !== '' && encoding !== 'identity') {
        return json(415, { error: `content-encoding ${encoding} is not supported; use gzip or none` });
      }
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        return json(413, {
          error: `body is over the limit of ${limit} bytes (max_body_bytes)`,
        });
      }
      if (err instanceof NoRoom) return tooBusy();
      if (err instanceof BodyStalled) {
        return json(408, {
          error: `no body bytes for ${this.limits.bodyIdleMs} ms; the request is abandoned (body_idle_timeout_ms)`,
        });
      }
      if (err instanceof Stopping) {
        return json(
          503,
          { error: 'the agent is stopping; retry later' },
          { 'retry-after': String(RETRY_AFTER_SECONDS) },
        );
      }
      return json(400, { error: `cannot read body: ${err instanceof Error ? err.message : String(err)}` });
    }

    let value: unknown;
    try {
      value = parseJsonKeepingNumbers(body.toString('utf8'));
    } catch (err) {
      this.counters.malformed++;
      return json(400, {
        error: `body is not JSON (${err instanceof Error ? err.message : String(err)}); expected an audit.k8s.io EventList, an array of Events or one Event`,
      });
    }
    const prepared = this.opts.prepare.value(value);
    const rejected = prepared.rejected ?? [];
    if (prepared.events.length === 0 && rejected.length === 0) {
      this.counters.malformed++;
      return json(400, {
        error: `body holds no audit events: ${prepared.malformed ?? 'empty'}; expected an audit.k8s.io EventList, an array of Events or one Event`,
      });
    }
    this.counters.truncated += prepared.truncated;
    const item: PipelineItem = {
      source: config.name,
      events: prepared.events,
      deadLetters: [],
      retry: false,
    };
    // One bad item costs only itself: the others are stored, it is kept aside with its index, and
    // the batch is answered 200 (kube-apiserver would drop a 400 batch, good items and all).
    for (const r of rejected) {
      this.counters.malformed++;
      item.deadLetters.push({ source: config.name, reason: r.reason, data: r.data });
    }
    const stored = new Promise<Error | undefined>((resolve) => {
      item.done = (err) => resolve(err);
    });
    if (!this.opts.tryOffer(item)) {
      this.counters.dropped += prepared.events.length;
      return json(
        429,
        { error: 'the pipeline is full or the store is failing; retry later' },
        { 'retry-after': String(RETRY_AFTER_SECONDS) },
      );
    }
    const err = await stored;
    if (err !== undefined) {
      this.counters.dropped += prepared.events.length;
      return json(503, { error: err.message }, { 'retry-after': String(RETRY_AFTER_SECONDS) });
    }
    this.counters.events += prepared.events.length;
    return json(200, {
      stored: prepared.events.length,
      ...(rejected.length > 0 ? { rejected: rejected.map((r) => r.reason) } : {}),
    });
  }
}

function certificateNames(socket: TLSSocket): string[] {
  const cert = socket.getPeerCertificate();
  if (cert === null || Object.keys(cert).length === 0) return [];
  const names: string[] = [];
  const cn = cert.subject?.CN;
  if (typeof cn === 'string') names.push(cn);
  else if (Array.isArray(cn)) names.push(...cn);
  for (const part of (cert.subjectaltname ?? '').split(/,\s*/)) {
    const m = /^(?:DNS|URI|email):(.+)$/.exec(part);
    if (m?.[1] !== undefined) names.push(m[1]);
  }
  return names;
}

/** The source's configured limits (or the defaults for its max_body_bytes), with `overrides` on top. */
function webhookLimits(config: WebhookSourceConfig, overrides: Partial<WebhookLimits> = {}): WebhookLimits {
  return { ...(config.limits ?? defaultWebhookLimits(config.maxBodyBytes)), ...overrides };
}

/**
 * Serves a WebhookHandler on a real socket. Slow and idle clients are let go: headers must arrive
 * within headersTimeoutMs and a whole request within requestTimeoutMs (checked every second, not
 * Node's default 30 s); a body that stalls is abandoned by the handler (bodyIdleMs).
 */
export class WebhookServer {
  private server: http.Server | undefined;
  private closed: Promise<void> | undefined;
  /** Open connections (TLS ones once their handshake is done), and those with a request being served. */
  private readonly sockets = new Set<Socket>();
  private readonly busy = new Set<Socket>();
  private readonly limits: WebhookLimits;
  readonly handler: WebhookHandler;

  constructor(
    private readonly config: WebhookSourceConfig,
    prepare: Preparer,
    tryOffer: (item: PipelineItem) => boolean,
    private readonly log: Logger,
    overrides: Partial<WebhookLimits> = {},
  ) {
    this.limits = webhookLimits(config, overrides);
    const opts: WebhookHandlerOptions = { config, prepare, tryOffer, log, limits: this.limits };
    if (config.tokenFile !== undefined) {
      const token = readFileSync(config.tokenFile, 'utf8').trim();
      if (token === '') {
        throw new UserError('KAUDIT_CONFIG_INVALID', `token_file ${config.tokenFile} is empty`);
      }
      opts.token = token;
    }
    this.handler = new WebhookHandler(opts);
  }

  private serverOptions(): http.ServerOptions {
    return {
      headersTimeout: this.limits.headersTimeoutMs,
      requestTimeout: this.limits.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, this.limits.headersTimeoutMs),
      keepAliveTimeout: 5000,
    };
  }

  async start(): Promise<AddressInfo> {
    const { config } = this;
    const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      void this.serve(req, res);
    };
    if (config.tls !== undefined) {
      const tlsOptions: https.ServerOptions = {
        cert: readFileSync(config.tls.cert),
        key: readFileSync(config.tls.key),
        // A client that opens a connection and never finishes the handshake is let go as one that sends no headers.
        handshakeTimeout: this.limits.headersTimeoutMs,
      };
      if (config.tls.clientCa !== undefined) {
        tlsOptions.ca = readFileSync(config.tls.clientCa);
        tlsOptions.requestCert = true;
        // Verified here, not in the handshake, so a bad certificate gets an HTTP 401 that names the problem.
        tlsOptions.rejectUnauthorized = false;
      }
      this.server = https.createServer({ ...tlsOptions, ...this.serverOptions() }, listener);
    } else {
      this.server = http.createServer(this.serverOptions(), listener);
    }
    const server = this.server;
    server.maxConnections = this.limits.maxConnections;
    this.closed = new Promise<void>((resolve) => server.once('close', () => resolve()));
    server.on(config.tls !== undefined ? 'secureConnection' : 'connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        this.busy.delete(socket);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          new UserError(
            'KAUDIT_LISTEN_FAILED',
            `webhook ${config.name} cannot listen on ${formatListen(config.listen)}: ${err.message}`,
          ),
        );
      });
      server.listen(config.listen.port, config.listen.host, () => resolve());
    });
    server.on('error', (err) => {
      this.handler.error = err.message;
    });
    const address = server.address() as AddressInfo;
    this.log.info('webhook listening', {
      source: config.name,
      address: `${config.tls ? 'https' : 'http'}://${formatListen({ host: address.address, port: address.port })}${config.path}`,
    });
    return address;
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    res.on('error', (err) => this.log.debug('webhook response failed', { error: err.message }));
    const socket = req.socket;
    this.busy.add(socket);
    res.once('finish', () => this.busy.delete(socket));
    res.once('close', () => this.busy.delete(socket));
    try {
      let client: ClientCertificate | undefined;
      const tlsSocket = req.socket as TLSSocket;
      if (typeof tlsSocket.getPeerCertificate === 'function') {
        client = { authorized: tlsSocket.authorized, names: certificateNames(tlsSocket) };
      }
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === 'string') headers.set(k, v);
        else if (Array.isArray(v)) for (const x of v) headers.append(k, x);
      }
      const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
      // Refused on its Content-Length alone; the body is read and discarded below so the client, still
      // sending, gets the 413 instead of a broken pipe.
      const oversized = Number(req.headers['content-length'] ?? 0) > this.config.maxBodyBytes;
      const init: RequestInit & { duplex?: 'half' } = { method: req.method ?? 'GET', headers };
      if (hasBody && !oversized) {
        init.body = Readable.toWeb(req) as ReadableStream<Uint8Array>;
        init.duplex = 'half';
      }
      const request = new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, init);
      const response = await this.handler.fetch(request, client);
      const out = Buffer.from(await response.arrayBuffer());
      const outHeaders = Object.fromEntries(response.headers.entries());
      // A body refused part way may still be arriving: close the connection rather than read it.
      if (!req.complete && !oversized) outHeaders.connection = 'close';
      res.writeHead(response.status, outHeaders);
      res.end(out);
      if (oversized) req.resume();
    } catch (err) {
      this.log.error('webhook request failed', { error: String(err) });
      if (res.writableEnded) return;
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"error":"internal error"}\n');
    }
  }

  /**
   * Stops accepting connections, closes idle keep-alive connections and abandons bodies still
   * arriving. Requests already handed to the pipeline are answered as it drains.
   */
  requestStop(): void {
    this.handler.requestStop();
    const server = this.server;
    if (server === undefined) return;
    server.close();
    this.closeIdle();
  }

  /**
   * Closes every connection without a request being served: idle keep-alive ones, and those that
   * never sent a request (Node's closeIdleConnections leaves these, which would hold stop until
   * their headers timeout).
   */
  private closeIdle(): void {
    for (const socket of this.sockets) if (!this.busy.has(socket)) socket.destroy();
  }

  /** Resolves once every connection is closed: those still open after `graceMs` are closed by force. */
  async stop(graceMs: number = this.limits.stopGraceMs): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    if (server.listening) this.requestStop();
    // A connection that was busy at requestStop and is idle now.
    const idle = setInterval(() => this.closeIdle(), 100);
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    try {
      await this.closed;
    } finally {
      clearInterval(idle);
      clearTimeout(force);
    }
  }
}
