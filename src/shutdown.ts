// Stopping for a rolling update without failing a review. On SIGTERM (after the Pod's preStop sleep, when the API
// servers have stopped picking this endpoint) the admission listener:
//   1. answers every review with `Connection: close` from now on, including those already in flight, so the API
//      server never reuses a connection of a process that is going away;
//   2. stops accepting connections and closes idle keep-alive ones; connections that never carried a request
//      (Go's transport pools connections it dialled but did not need) are closed after a short grace;
//   3. answers reviews still arriving on open connections normally (never 503: the API server would apply
//      failurePolicy Fail to it), and in-flight ones within their own deadline;
//   4. once the last connection has closed, stops the rest (loops, caches, Lease, metrics) and exits 0.
// HTTP/2 sessions get a GOAWAY instead of `Connection: close`: first the shutdown notice (last stream ID 2^31-1, so
// a review the API server sent before it saw the frame is still answered), then, once a PING has made the round
// trip, the final GOAWAY; the session closes when its last stream is answered. Go's net/http drains the same way.
// Connections still open after `drainTimeoutMs` are cut.
import { ServerResponse, type IncomingMessage } from 'node:http';
import { constants as h2, type ServerHttp2Session } from 'node:http2';
import type { Server, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { describeError } from './pull-secrets/util.js';

/** A connection that has never carried a request gets this long after the drain starts to send one. */
const UNUSED_GRACE_MS = 2000;

export interface ConnectionCloser {
  /** The listener's response class (`ServerResponse` server option): once closing, answers carry `Connection: close`. */
  readonly ServerResponse: typeof ServerResponse;
  readonly closing: boolean;
  /** Follows the listener's connections and HTTP/2 sessions (once, when the server exists; `secure` for HTTPS). */
  attach(server: Server, secure: boolean): void;
  /**
   * From now on answers close their HTTP/1.1 connection; HTTP/2 sessions (open and new) are sent GOAWAY. Resolves
   * once the open sessions have had their final GOAWAY (after the notice's PING round trip, at most 1 s).
   */
  close(): Promise<void>;
  /** Destroys the HTTP/1.1 connections that have never carried a request. */
  closeUnused(): void;
  /** Destroys every connection (the drain timeout). */
  closeAll(): void;
}

/** The largest stream ID: a GOAWAY naming it refuses nothing, it only says "no new streams, please". */
const NOTICE_LAST_STREAM = 2 ** 31 - 1;
/** Without a PING answer, the final GOAWAY follows the notice after this. */
const NOTICE_MS = 1000;

/**
 * Go's graceful HTTP/2 shutdown: the notice, a PING round trip, then the final GOAWAY (close when streams end).
 * Resolves once the final GOAWAY is sent.
 */
function goAway(session: ServerHttp2Session): Promise<void> {
  if (session.closed || session.destroyed) return Promise.resolve();
  let done = false;
  let resolve!: () => void;
  const sent = new Promise<void>((r) => (resolve = r));
  const close = () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    if (!session.closed && !session.destroyed) session.close();
    resolve();
  };
  const timer = setTimeout(close, NOTICE_MS);
  try {
    session.goaway(h2.NGHTTP2_NO_ERROR, NOTICE_LAST_STREAM);
    if (!session.ping(close)) close();
  } catch {
    close();
  }
  return sent;
}

export function connectionCloser(): ConnectionCloser {
  let closing = false;
  const open = new Set<Socket>();
  const used = new WeakSet<Socket>();
  const sessions = new Set<ServerHttp2Session>();
  // One WeakSet entry per request and a boolean per answer: no per-request listener or timer.
  class ClosingAwareResponse<Req extends IncomingMessage = IncomingMessage> extends ServerResponse<Req> {
    constructor(...args: [Req]) {
      super(...args);
      used.add(args[0].socket);
    }

    // Checked when the head is written, so a review already in flight when the signal came is covered too.
    override writeHead(...args: unknown[]): this {
      if (closing && !this.headersSent) this.setHeader('connection', 'close');
      return (ServerResponse.prototype.writeHead as (...a: unknown[]) => this).apply(this, args);
    }
  }
  return {
    ServerResponse: ClosingAwareResponse as typeof ServerResponse,
    get closing() {
      return closing;
    },
    attach(server, secure) {
      // HTTPS: the socket HTTP sees (and a response's `socket`) is the TLS socket of 'secureConnection'.
      server.on(secure ? 'secureConnection' : 'connection', (socket: Socket) => {
        open.add(socket);
        // An HTTP/2 connection is drained by its session's GOAWAY, never cut as unused.
        if ((socket as TLSSocket).alpnProtocol === 'h2') used.add(socket);
        socket.once('close', () => open.delete(socket));
      });
      server.on('session', (session: ServerHttp2Session) => {
        sessions.add(session);
        session.once('close', () => sessions.delete(session));
        if (closing) void goAway(session);
      });
    },
    async close() {
      closing = true;
      await Promise.all([...sessions].map(goAway));
    },
    closeUnused() {
      for (const socket of open) if (!used.has(socket)) socket.destroy();
    },
    closeAll() {
      for (const session of sessions) session.destroy();
      for (const socket of open) socket.destroy();
    },
  };
}

interface Log {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
  error(o: object, m: string): void;
}

/** Drains the admission listener: resolves once every connection has closed (or was cut at the timeout). */
export async function drainListener(app: FastifyInstance, closer: ConnectionCloser, drainTimeoutMs: number, log: Log): Promise<void> {
  // Before the listener closes: since Node 24 closing an HTTP/2 server sends every session its final GOAWAY at
  // once, which would refuse the streams a client sent before it saw the notice.
  await closer.close();
  // http.Server, or Http2SecureServer (whose HTTP/1.1 connections Node 20+ tracks the same way).
  const server = app.server as unknown as { closeIdleConnections?: () => void };
  const begun = Date.now();
  const reaper = setInterval(() => {
    server.closeIdleConnections?.();
    if (Date.now() - begun >= UNUSED_GRACE_MS) closer.closeUnused();
  }, 250);
  const cut = setTimeout(() => {
    log.warn({ drainTimeoutMs }, 'connections still open at the drain timeout; closing them');
    closer.closeAll();
  }, drainTimeoutMs);
  try {
    // Fastify's close stops accepting and closes idle connections (Node's server.close), then waits for the rest.
    await app.close();
  } finally {
    clearInterval(reaper);
    clearTimeout(cut);
  }
}

export interface ShutdownOptions {
  app: FastifyInstance;
  closer: ConnectionCloser;
  /** Stopped together once the listener has drained (loops, caches, the Lease, the metrics listener). */
  stopRest: () => Promise<unknown>;
  log: Log;
  /** Default 20 s: inside terminationGracePeriodSeconds (30) minus the preStop sleep (5). */
  drainTimeoutMs?: number;
  /** Last resort if stopping hangs: exit 1 after this (default 25 s). */
  forceExitMs?: number;
  exit?: (code: number) => void;
}

/**
 * Exits once the last log lines have had time to be written. pino writes asynchronously and, at exit, flushes
 * what is still queued synchronously; with stdout a broken pipe (the log reader gone) that flush retries forever
 * (sonic-boom 4.2), while a write that completes first reports the broken pipe and turns logging off.
 */
const EXIT_AFTER_LOGS_MS = 100;
function exitAfterLogs(code: number): void {
  setTimeout(() => process.exit(code), EXIT_AFTER_LOGS_MS);
}

/** Installs the SIGTERM/SIGINT handler: drain, stop the rest, exit 0 (1 when stopping failed or hung). */
export function exitOnSignals(opts: ShutdownOptions): void {
  const exit = opts.exit ?? exitAfterLogs;
  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    const begun = Date.now();
    opts.log.info({ signal }, 'shutting down: no new connections, answering reviews in flight and on open connections');
    setTimeout(() => {
      opts.log.error({ forceExitMs: opts.forceExitMs ?? 25_000 }, 'shutdown did not finish in time; exiting');
      exit(1);
    }, opts.forceExitMs ?? 25_000).unref();
    drainListener(opts.app, opts.closer, opts.drainTimeoutMs ?? 20_000, opts.log)
      .then(() => {
        opts.log.info({ ms: Date.now() - begun }, 'admission listener drained');
        return opts.stopRest();
      })
      .then(
        () => {
          opts.log.info({ ms: Date.now() - begun }, 'stopped');
          exit(0);
        },
        (err: unknown) => {
          opts.log.error({ err: describeError(err) }, 'stopping failed');
          exit(1);
        },
      );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
