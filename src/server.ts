// The HTTPS face of the webhook: HTTP/2 and HTTP/1.1 on one port, deadlines, health, certificate reload.
// Decisions live in src/admission, the review routes' byte handling in review-transport.ts; this file wires
// them and measures.
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createServer as createHttpServer, ServerResponse, type IncomingMessage } from 'node:http';
import { createSecureServer, type Http2SecureServer, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import Fastify, { LogController, type FastifyInstance, type FastifyError } from 'fastify';
import type { SecureVersion } from 'node:tls';
import { handleAdmission, type HandlerDeps, type Outcome } from './admission/handler.js';
import { allow, deny, parseAdmissionReview, TransportError, type AdmissionRequest } from './admission/review.js';
import { validateWorkload } from './admission/workloads.js';
import { certificatePairProblem } from './certificate-pair.js';
import { LOG_REDACT_PATHS } from './log-redact.js';
import { reviewTransport, type Reply, type ReviewTransport } from './review-transport.js';
import type { ConnectionCloser } from './shutdown.js';

/** The API server allows 3 MiB objects and a review may carry object and oldObject. */
export const BODY_LIMIT = 8 * 1024 * 1024;
/** Without `?timeout=`, the API server's default webhook timeout. */
const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_TIMEOUT_MS = 30_000;

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** How often to look for rotated files (cert-manager and kubelet rewrite them in place). */
  pollMs?: number;
  minVersion?: SecureVersion;
}

export interface ServerOptions extends HandlerDeps {
  tls?: TlsFiles;
  logLevel?: string;
  /** Where JSON log lines go (default stdout); tests capture them. */
  logStream?: NodeJS.WritableStream;
  /** Extra readiness condition beyond "the secret provider can serve". */
  ready?: () => boolean;
  /**
   * The caches decisions read (src/readiness.ts): until they have synced, a review waits for them within its
   * deadline, and is answered 503 (a call failure: the API server applies the failurePolicy) if they do not.
   */
  caches?: { synced(): boolean; whenSynced(): Promise<void>; pending(): string[] };
  /** Marks answers `Connection: close` while shutting down (src/shutdown.ts). */
  connections?: ConnectionCloser;
  /** Called once per answered review, for metrics. */
  observe?: (outcome: Outcome, seconds: number) => void;
  /** Called once per TLS connection with its ALPN protocol (`h2` or `http/1.1`), for metrics. */
  onConnection?: (protocol: string) => void;
  /** Called with the serving certificate's expiry when it is loaded and on every reload, for metrics. */
  onCertificate?: (notAfter: Date) => void;
}

/** Modern AEAD suites only; TLS 1.3 suites are always on. */
const CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** `?timeout=10s` as the API server appends it; milliseconds. */
export function parseTimeoutParam(value: unknown): number {
  if (typeof value !== 'string') return DEFAULT_TIMEOUT_MS;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value);
  if (!m) return DEFAULT_TIMEOUT_MS;
  const ms = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000);
  return Math.min(Math.max(ms, 100), MAX_TIMEOUT_MS);
}

/** Leave room for the answer to travel back: 10% of the budget, at least 150 ms. */
export function deadlineFor(start: number, timeoutMs: number): number {
  return start + timeoutMs - Math.max(150, timeoutMs * 0.1);
}

/** The expiry of the first (leaf) certificate of a PEM file's contents. */
export function certificateNotAfter(pem: Buffer | string): Date {
  return new Date(new X509Certificate(pem).validTo);
}

export function buildServer(opts: ServerOptions): FastifyInstance {
  let https: { key: Buffer; cert: Buffer; minVersion: SecureVersion; ciphers: string; honorCipherOrder: boolean } | null = null;
  if (opts.tls) {
    const key = readFileSync(opts.tls.keyFile);
    const cert = readFileSync(opts.tls.certFile);
    // A broken pair would fail every handshake: refuse to start instead.
    const problem = certificatePairProblem(key, cert);
    if (problem) throw new Error(`TLS key ${opts.tls.keyFile} and certificate ${opts.tls.certFile} do not form a pair: ${problem}`);
    https = { key, cert, minVersion: opts.tls.minVersion ?? 'TLSv1.2', ciphers: CIPHERS, honorCipherOrder: true };
    opts.onCertificate?.(certificateNotAfter(cert));
  }
  // Assigned once fastify exists: the review routes log through its logger.
  let log: FastifyInstance['log'] | undefined;
  const transport = reviewTransport({
    routes: { '/mutate': (body, timeout, start) => mutate(body, timeout, start), '/validate': (body, timeout, start) => validateRoute(body, timeout, start) },
    bodyLimit: BODY_LIMIT,
    // A client that trickles its body must not hold a stream forever (idle connections close on their own).
    bodyTimeoutMs: MAX_TIMEOUT_MS + 5_000,
    onError: (err) => log?.error({ err }, 'unexpected error'),
  });
  const app = Fastify({
    // HTTP/2 (the API server's choice when offered over ALPN) and HTTP/1.1 on the same port; plain HTTP only
    // for tests that bring no certificate.
    ...(https ? { http2: true as const, https: { ...https, allowHTTP1: true } } : {}),
    serverFactory: ((handler: (req: IncomingMessage, res: ServerResponse) => void) => reviewServer(https, handler, transport, opts)) as never,
    bodyLimit: BODY_LIMIT,
    // `reqId` in review log lines is the AdmissionReview uid, so a log line and the API server's audit record
    // of the same review share one id.
    logController: new LogController({ disableRequestLogging: true }),
    logger: { level: opts.logLevel ?? 'info', redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' }, ...(opts.logStream ? { stream: opts.logStream } : {}) },
    // While draining, a request on an open connection is answered (src/shutdown.ts): a 503 would be a call failure.
    return503OnClosing: false,
  } as never) as unknown as FastifyInstance;
  log = app.log;

  opts.connections?.attach(app.server as unknown as import('node:net').Server, Boolean(opts.tls));
  // Which protocol the clients chose (the API server: h2 when offered), for the connections metric.
  if (opts.onConnection && opts.tls) app.server.on('secureConnection', (socket: import('node:tls').TLSSocket) => opts.onConnection!(socket.alpnProtocol || 'http/1.1'));

  // No per-request child logger: with redaction configured, pino's child() costs more than the whole
  // no-annotation decision.
  app.setChildLoggerFactory((logger) => logger);

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) app.log.error({ err }, 'unexpected error');
    // Fastify's own messages (invalid JSON, body too large) carry no request content.
    void reply.code(status).send({ error: err.code ?? 'Error', message: status === 500 ? 'internal error' : err.message });
  });

  const ok = (payload: unknown): Reply => ({ status: 200, payload });

  /** The envelope, or the 400 to answer: there is no uid to answer a review with. */
  const envelope = (body: unknown): AdmissionRequest | Reply => {
    try {
      return parseAdmissionReview(body);
    } catch (e) {
      if (!(e instanceof TransportError)) throw e;
      return { status: 400, payload: { error: 'BadRequest', message: e.message } };
    }
  };

  const answer = (review: AdmissionRequest, outcome: Outcome, start: number): Reply => {
    const seconds = (Date.now() - start) / 1000;
    opts.observe?.(outcome, seconds);
    // An admitted review with an error: a discovered registry's Secret was left out (handler.ts).
    const level = outcome.result === 'error' ? 'error' : outcome.result === 'denied' ? 'info' : outcome.error ? 'warn' : 'debug';
    if ((app.log as typeof app.log & { isLevelEnabled(level: string): boolean }).isLevelEnabled(level)) {
      const fields = {
        reqId: review.uid,
        kind: outcome.kind,
        namespace: review.namespace,
        operation: review.operation,
        dryRun: review.dryRun,
        result: outcome.result,
        path: outcome.path,
        ms: Math.round(seconds * 1000),
      };
      if (level === 'error') app.log.error({ ...fields, err: outcome.error }, 'admission failed');
      else if (level === 'info') app.log.info({ ...fields, message: outcome.review.response.status?.message }, 'admission denied');
      else if (level === 'warn') app.log.warn({ ...fields, err: outcome.error }, 'admitted without the pull Secret of a registry found by discovery');
      else app.log.debug(fields, 'admission');
    }
    return ok(outcome.review);
  };

  const decide = (review: AdmissionRequest, start: number, deadline: number): Reply | Promise<Reply> => {
    const outcome = handleAdmission(review, { deadline }, opts);
    if (outcome instanceof Promise) return outcome.then((o) => answer(review, o, start));
    return answer(review, outcome, start);
  };

  const validate = (review: AdmissionRequest): Reply => {
    const v = validateWorkload(review, opts.rules());
    if (v.action === 'deny') {
      app.log.info({ reqId: review.uid, kind: review.kind.kind, namespace: review.namespace, message: v.message }, 'workload denied');
      return ok(deny(review.uid, v.code, v.message));
    }
    return ok(allow(review.uid, undefined, v.action === 'allow' ? v.warnings : undefined));
  };

  /**
   * A review that arrives before the caches have synced (a URL-configured webhook is called whatever /readyz
   * says) waits for them up to its deadline, then is decided, or answered 503 if they are still not there.
   */
  const afterSync = async (review: AdmissionRequest, deadline: number, then: () => Reply | Promise<Reply>): Promise<Reply> => {
    const caches = opts.caches!;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now()))));
    await Promise.race([caches.whenSynced(), timedOut]);
    clearTimeout(timer);
    if (caches.synced()) return then();
    const pending = caches.pending();
    app.log.warn({ reqId: review.uid, pending }, 'review arrived before the caches synced; answering 503');
    return { status: 503, payload: { error: 'NotReady', message: `acr-pull-webhook is starting: its ${pending.join(' and ')} cache has not synced yet` } };
  };
  const synced = () => !opts.caches || opts.caches.synced();

  // Most reviews are decided synchronously; only those that write a Secret wait on a promise.
  const mutate = (body: unknown, timeout: string | undefined, start: number): Reply | Promise<Reply> => {
    const review = envelope(body);
    if (!('uid' in review)) return review;
    // The deadline bounds every wait: the API server stops listening at its timeout, and so do we.
    const deadline = deadlineFor(start, parseTimeoutParam(timeout));
    if (!synced()) return afterSync(review, deadline, () => decide(review, start, deadline));
    return decide(review, start, deadline);
  };

  // Workload templates, checked with the Pod rules so mistakes surface at `kubectl apply`.
  const validateRoute = (body: unknown, timeout: string | undefined, start: number): Reply | Promise<Reply> => {
    const review = envelope(body);
    if (!('uid' in review)) return review;
    if (!synced()) return afterSync(review, deadlineFor(start, parseTimeoutParam(timeout)), () => validate(review));
    return validate(review);
  };

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const ready = opts.secrets.ready() && (opts.ready?.() ?? true);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready' });
  });

  if (opts.tls) watchCertificates(app, opts.tls, opts.onCertificate);
  return app;
}

/** Idle keep-alive HTTP/1.1 connections and HTTP/2 sessions close after this (fastify's default). */
const IDLE_TIMEOUT_MS = 72_000;

/**
 * The listener: HTTP/2 with HTTP/1.1 fallback over TLS (plain HTTP/1.1 without a certificate). Reviews go to the
 * raw transport in both protocols (for HTTP/2 straight from the stream, before Node builds its compatibility
 * request and response objects); everything else to fastify.
 */
function reviewServer(
  https: Record<string, unknown> | null,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  transport: ReviewTransport,
  opts: ServerOptions,
): import('node:net').Server {
  const dispatch = (req: IncomingMessage, res: ServerResponse) => {
    const route = transport.route(req.method, req.url);
    if (route) transport.http1(req, res, route);
    else handler(req, res);
  };
  const closing = opts.connections ? opts.connections.ServerResponse : ServerResponse;
  if (!https) {
    const server = createHttpServer({ ServerResponse: closing }, dispatch);
    server.keepAliveTimeout = IDLE_TIMEOUT_MS;
    server.requestTimeout = MAX_TIMEOUT_MS + 5_000;
    return server;
  }
  const server = createSecureServer({ ...https, allowHTTP1: true, Http1ServerResponse: closing }, dispatch as never) as Http2SecureServer & {
    keepAliveTimeout?: number;
    requestTimeout?: number;
  };
  // HTTP/1.1 connections of this server follow the same timeouts as an https.Server's.
  server.keepAliveTimeout = IDLE_TIMEOUT_MS;
  server.requestTimeout = MAX_TIMEOUT_MS + 5_000;
  // Node answers HTTP/2 streams through the compatibility layer it installed as the 'stream' listener; reviews
  // are taken before it, the rest handed to it unchanged.
  const compat = server.listeners('stream') as ((...a: unknown[]) => void)[];
  if (compat.length !== 1) throw new Error(`expected one HTTP/2 compatibility listener, found ${compat.length}`);
  server.removeAllListeners('stream');
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => {
    const route = transport.route(headers[':method'], headers[':path']);
    if (route) transport.http2(stream, headers, route);
    else compat[0]!.call(server, stream, headers, ...rest);
  });
  server.on('session', (session: ServerHttp2Session) => session.setTimeout(IDLE_TIMEOUT_MS, () => session.close()));
  return server as unknown as import('node:net').Server;
}

/**
 * Swaps the serving certificate when its files change; open connections keep the context they started with.
 * A pair whose key does not belong to the certificate (files rewritten one after the other, or a bad rotation)
 * is never served: the old pair stays, with one warning per bad pair, until the files change again.
 */
function watchCertificates(app: FastifyInstance, tls: TlsFiles, onCertificate?: (notAfter: Date) => void): void {
  const stamp = () => {
    try {
      return `${statSync(tls.certFile).mtimeMs}:${statSync(tls.keyFile).mtimeMs}`;
    } catch {
      return undefined;
    }
  };
  let last = stamp();
  let rejected: string | undefined;
  const timer = setInterval(() => {
    const now = stamp();
    if (now === undefined || now === last || now === rejected) return;
    let problem: string | undefined;
    try {
      const key = readFileSync(tls.keyFile);
      const cert = readFileSync(tls.certFile);
      problem = certificatePairProblem(key, cert);
      if (!problem) {
        const server = app.server as unknown as import('node:tls').Server;
        server.setSecureContext({ key, cert, minVersion: tls.minVersion ?? 'TLSv1.2', ciphers: CIPHERS, honorCipherOrder: true });
        last = now;
        rejected = undefined;
        onCertificate?.(certificateNotAfter(cert));
        app.log.info('reloaded TLS certificate');
        return;
      }
    } catch (err) {
      problem = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    }
    rejected = now;
    app.log.warn({ certFile: tls.certFile, keyFile: tls.keyFile, problem }, 'TLS key does not match the certificate (or cannot be read); keeping the previous pair until the files change again');
  }, tls.pollMs ?? 10_000);
  timer.unref();
  app.addHook('onClose', async () => clearInterval(timer));
}
