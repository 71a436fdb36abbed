// The two review routes (/mutate, /validate) served straight from Node's HTTP/1.1 and HTTP/2 layers, without
// fastify's per-request objects, hooks and serializers: measured (bench/README.md, "protocols"), fastify's route
// machinery costs more CPU than the webhook's whole no-annotation decision. Every other route stays in fastify.
// What the API server relies on is kept here: POST with a JSON body only (415 otherwise), the 8 MiB body limit
// (413), 400 for a body that is not JSON, prototype-poisoning refused as fastify does, a bounded wait for a
// trickled body, and fastify's error shape `{error, message}` with the same codes.
import { constants as h2, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import secureJson from 'secure-json-parse';

/** What a route answers: an HTTP status and a JSON payload. */
export interface Reply {
  status: number;
  payload: unknown;
}

/** A review route: the parsed body, the raw `timeout` query parameter, the time the body was complete. */
export type ReviewRoute = (body: unknown, timeoutParam: string | undefined, start: number) => Reply | Promise<Reply>;

export interface ReviewTransportOptions {
  routes: Readonly<Record<string, ReviewRoute>>;
  bodyLimit: number;
  /** A body must be complete within this (a client that trickles it must not hold a stream forever). */
  bodyTimeoutMs: number;
  /** Unexpected errors (a bug): logged by the caller, answered 500 without detail. */
  onError: (err: unknown) => void;
}

export interface ReviewTransport {
  /** The route of a request, when it is a review this transport serves (POST to a review path). */
  route(method: string | undefined, url: string | undefined): ReviewRoute | undefined;
  http1(req: IncomingMessage, res: ServerResponse, route: ReviewRoute): void;
  http2(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, route: ReviewRoute): void;
}

interface Failure {
  status: number;
  error: string;
  message: string;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** `timeout` from a query string (`timeout=10s&x=y`), without building a parser object per request. */
export function timeoutParam(query: string): string | undefined {
  // The API server's own form, `timeout=10s` alone: no split, nothing to decode.
  if (query.startsWith('timeout=') && !query.includes('&') && !query.includes('%')) return query.slice(8);
  for (const part of query.split('&')) {
    if (!part.startsWith('timeout=')) continue;
    try {
      return decodeURIComponent(part.slice(8));
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const semi = contentType.indexOf(';');
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase() === 'application/json';
}

export function reviewTransport(opts: ReviewTransportOptions): ReviewTransport {
  const { routes, bodyLimit } = opts;
  // Bodies still arriving, with their deadline: one sweep a second instead of a timer per request (measured: a
  // timer set and cleared per review is a visible share of a no-annotation review's CPU).
  const reading = new Map<object, { until: number; expire: () => void }>();
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [key, r] of reading) {
      if (r.until > now) continue;
      reading.delete(key);
      r.expire();
    }
  }, Math.min(1000, opts.bodyTimeoutMs));
  sweep.unref();

  /** Reads the body within the limit and the time bound; calls `done` once. */
  const readBody = (source: Readable, declared: string | undefined, done: (failure: Failure | undefined, body?: Buffer) => void, onTimeout: () => void) => {
    if (declared !== undefined && Number(declared) > bodyLimit) return done(tooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    let finished = false;
    reading.set(source, {
      until: Date.now() + opts.bodyTimeoutMs,
      expire: () => {
        if (finished) return;
        finished = true;
        source.removeListener('data', onData);
        onTimeout();
      },
    });
    const finish = (failure: Failure | undefined, body?: Buffer) => {
      if (finished) return;
      finished = true;
      reading.delete(source);
      source.removeListener('data', onData);
      done(failure, body);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > bodyLimit) return finish(tooLarge());
      chunks.push(chunk);
    };
    source.on('data', onData);
    source.once('end', () => finish(undefined, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    source.once('error', () => finish({ status: 400, error: 'BadRequest', message: 'the request body could not be read' }));
  };

  /** The body parsed and the route run; any throw is a 500 (the route answers every expected case itself). */
  const run = (route: ReviewRoute, body: Buffer, query: string | undefined): Reply | Promise<Reply> => {
    if (body.length === 0) return failure({ status: 400, error: 'FST_ERR_CTP_EMPTY_JSON_BODY', message: "Body cannot be empty when content-type is set to 'application/json'" });
    let parsed: unknown;
    try {
      // A leading byte-order mark is dropped, as fastify's parser (secure-json-parse) does on both paths below.
      const raw = body.toString('utf8');
      const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
      // As fastify: `__proto__` and `constructor.prototype` keys are refused, not silently kept. Without either
      // word and without any \u escape (which could spell them), neither can be there: no need for the two
      // regular-expression scans secure-json-parse makes of every body.
      parsed = !text.includes('\\u') && !text.includes('__proto__') && !text.includes('"constructor"') ? JSON.parse(text) : secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
    } catch {
      return failure({ status: 400, error: 'FST_ERR_CTP_INVALID_JSON_BODY', message: "Body is not valid JSON but content-type is set to 'application/json'" });
    }
    try {
      const reply = route(parsed, query === undefined ? undefined : timeoutParam(query), Date.now());
      return reply instanceof Promise ? reply.catch(internal) : reply;
    } catch (e) {
      return internal(e);
    }
  };
  const internal = (e: unknown): Reply => {
    opts.onError(e);
    return failure({ status: 500, error: 'Error', message: 'internal error' });
  };

  return {
    route(method, url) {
      if (method !== 'POST' || url === undefined) return undefined;
      const q = url.indexOf('?');
      return routes[q < 0 ? url : url.slice(0, q)];
    },

    http1(req, res, route) {
      const send = (reply: Reply) => {
        if (res.writableEnded || res.destroyed) return;
        const text = JSON.stringify(reply.payload);
        // A flat list: Node takes it without building and validating a header object.
        res.writeHead(reply.status, ['content-type', JSON_TYPE, 'content-length', String(Buffer.byteLength(text))]);
        res.end(text);
      };
      if (!isJson(req.headers['content-type'])) return refuse(send, unsupported(req.headers['content-type']), () => res.once('finish', () => req.socket.destroy()));
      const url = req.url!;
      const q = url.indexOf('?');
      readBody(
        req,
        req.headers['content-length'],
        (fail, body) => {
          if (fail) {
            // The rest of the body is not read: the connection cannot carry another request.
            res.setHeader('connection', 'close');
            return refuse(send, fail, () => res.once('finish', () => req.socket.destroy()));
          }
          const reply = run(route, body!, q < 0 ? undefined : url.slice(q + 1));
          if (reply instanceof Promise) void reply.then(send);
          else send(reply);
        },
        () => req.socket.destroy(),
      );
    },

    http2(stream, headers, route) {
      const send = (reply: Reply) => {
        if (stream.destroyed || stream.closed || stream.headersSent) return;
        const text = JSON.stringify(reply.payload);
        stream.respond({ ':status': reply.status, 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text) });
        // end() only once the data is written: `end(text)` lets the stream close (both sides done) before Node's
        // write callback runs, and Node 20 then builds an ERR_STREAM_DESTROYED it throws away; measured, that was
        // 9% of a no-annotation review's CPU. The END_STREAM flag goes in an empty DATA frame instead.
        stream.write(text, () => stream.end());
      };
      // After an early answer the rest of the request is not wanted: RST_STREAM(NO_ERROR), as RFC 9113 8.1 allows.
      const stopReading = () => stream.once('finish', () => stream.close(h2.NGHTTP2_NO_ERROR));
      stream.on('error', () => undefined);
      if (!isJson(headers['content-type'])) return refuse(send, unsupported(headers['content-type']), stopReading);
      const path = headers[':path']!;
      const q = path.indexOf('?');
      readBody(
        stream,
        headers['content-length'],
        (fail, body) => {
          if (fail) return refuse(send, fail, stopReading);
          const reply = run(route, body!, q < 0 ? undefined : path.slice(q + 1));
          if (reply instanceof Promise) void reply.then(send);
          else send(reply);
        },
        () => stream.close(h2.NGHTTP2_CANCEL),
      );
    },
  };
}

function failure(f: Failure): Reply {
  return { status: f.status, payload: { error: f.error, message: f.message } };
}
function refuse(send: (r: Reply) => void, f: Failure, after: () => void): void {
  after();
  send(failure(f));
}
function tooLarge(): Failure {
  return { status: 413, error: 'FST_ERR_CTP_BODY_TOO_LARGE', message: 'Request body is too large' };
}
function unsupported(type: string | undefined): Failure {
  return { status: 415, error: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', message: `Unsupported Media Type: ${type === undefined ? 'none' : JSON.stringify(type.slice(0, 100))}; send application/json` };
}
