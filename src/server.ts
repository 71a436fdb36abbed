// The HTTPS face of the webhook: transport checks, deadlines, health, certificate reload. Decisions live in
// src/admission; this file only moves bytes and measures.
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import Fastify, { LogController, type FastifyInstance, type FastifyError, type FastifyReply } from 'fastify';
import type { SecureVersion } from 'node:tls';
import { handleAdmission, type HandlerDeps, type Outcome } from './admission/handler.js';
import { allow, deny, parseAdmissionReview, TransportError, type AdmissionRequest } from './admission/review.js';
import { validateWorkload } from './admission/workloads.js';
import { certificatePairProblem } from './certificate-pair.js';
import { LOG_REDACT_PATHS } from './log-redact.js';
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
  const responses = opts.connections ? { ServerResponse: opts.connections.ServerResponse } : {};
  let https = null;
  if (opts.tls) {
    const key = readFileSync(opts.tls.keyFile);
    const cert = readFileSync(opts.tls.certFile);
    // A broken pair would fail every handshake: refuse to start instead.
    const problem = certificatePairProblem(key, cert);
    if (problem) throw new Error(`TLS key ${opts.tls.keyFile} and certificate ${opts.tls.certFile} do not form a pair: ${problem}`);
    https = { key, cert, minVersion: opts.tls.minVersion ?? 'TLSv1.2', ciphers: CIPHERS, honorCipherOrder: true, ...responses };
    opts.onCertificate?.(certificateNotAfter(cert));
  }
  const app = Fastify({
    ...(https ? { https } : { http: responses }),
    bodyLimit: BODY_LIMIT,
    // A client that trickles its body must not hold a socket forever (idle keep-alive sockets close on their own).
    requestTimeout: MAX_TIMEOUT_MS + 5_000,
    // `reqId` in review log lines is the AdmissionReview uid, so a log line and the API server's audit record
    // of the same review share one id.
    logController: new LogController({ disableRequestLogging: true }),
    logger: { level: opts.logLevel ?? 'info', redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' }, ...(opts.logStream ? { stream: opts.logStream } : {}) },
    // While draining, a review on an open connection is answered (src/shutdown.ts): a 503 would be a call failure.
    return503OnClosing: false,
  }) as unknown as FastifyInstance;

  opts.connections?.attach(app.server as import('node:http').Server, Boolean(opts.tls));

  // No per-request child logger: with redaction configured, pino's child() costs more than the whole
  // no-annotation decision. Review lines carry the AdmissionReview uid as reqId, added when a line is written.
  app.setChildLoggerFactory((logger) => logger);

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) app.log.error({ err }, 'unexpected error');
    // Fastify's own messages (invalid JSON, body too large) carry no request content.
    void reply.code(status).send({ error: err.code ?? 'Error', message: status === 500 ? 'internal error' : err.message });
  });

  /** The envelope, or undefined after answering 400: there is no uid to answer a review with. */
  const envelope = (body: unknown, reply: FastifyReply): AdmissionRequest | undefined => {
    try {
      return parseAdmissionReview(body);
    } catch (e) {
      if (!(e instanceof TransportError)) throw e;
      void reply.code(400).send({ error: 'BadRequest', message: e.message });
      return undefined;
    }
  };

  const answer = (review: AdmissionRequest, outcome: Outcome, start: number, reply: FastifyReply) => {
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
    return reply.code(200).send(outcome.review);
  };

  const decide = (review: AdmissionRequest, start: number, deadline: number, reply: FastifyReply) => {
    const outcome = handleAdmission(review, { deadline }, opts);
    if (outcome instanceof Promise) return outcome.then((o) => answer(review, o, start, reply));
    return answer(review, outcome, start, reply);
  };

  const validate = (review: AdmissionRequest, reply: FastifyReply) => {
    const v = validateWorkload(review, opts.rules());
    if (v.action === 'deny') {
      app.log.info({ reqId: review.uid, kind: review.kind.kind, namespace: review.namespace, message: v.message }, 'workload denied');
      return reply.send(deny(review.uid, v.code, v.message));
    }
    return reply.send(allow(review.uid, undefined, v.action === 'allow' ? v.warnings : undefined));
  };

  /**
   * A review that arrives before the caches have synced (a URL-configured webhook is called whatever /readyz
   * says) waits for them up to its deadline, then is decided, or answered 503 if they are still not there.
   */
  const afterSync = async (review: AdmissionRequest, deadline: number, reply: FastifyReply, then: () => unknown) => {
    const caches = opts.caches!;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now()))));
    await Promise.race([caches.whenSynced(), timedOut]);
    clearTimeout(timer);
    if (caches.synced()) return then();
    const pending = caches.pending();
    app.log.warn({ reqId: review.uid, pending }, 'review arrived before the caches synced; answering 503');
    return reply.code(503).send({ error: 'NotReady', message: `acr-pull-webhook is starting: its ${pending.join(' and ')} cache has not synced yet` });
  };
  const synced = () => !opts.caches || opts.caches.synced();

  // Not async: most reviews are decided synchronously, and only those that write a Secret wait on a promise.
  app.post('/mutate', (request, reply) => {
    const start = Date.now();
    const review = envelope(request.body, reply);
    if (!review) return reply;
    const timeoutMs = parseTimeoutParam((request.query as Record<string, unknown> | undefined)?.timeout);
    // The deadline bounds every wait: the API server stops listening at its timeout, and so do we.
    const deadline = deadlineFor(start, timeoutMs);
    if (!synced()) return afterSync(review, deadline, reply, () => decide(review, start, deadline, reply));
    return decide(review, start, deadline, reply);
  });

  // Workload templates, checked with the Pod rules so mistakes surface at `kubectl apply`.
  app.post('/validate', async (request, reply) => {
    const start = Date.now();
    const review = envelope(request.body, reply);
    if (!review) return reply;
    if (!synced()) {
      const deadline = deadlineFor(start, parseTimeoutParam((request.query as Record<string, unknown> | undefined)?.timeout));
      return afterSync(review, deadline, reply, () => validate(review, reply));
    }
    return validate(review, reply);
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const ready = opts.secrets.ready() && (opts.ready?.() ?? true);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready' });
  });

  if (opts.tls) watchCertificates(app, opts.tls, opts.onCertificate);
  return app;
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
