// The review transport driven in-process through stand-in request/response/stream objects and fake timers: the
// exact refusals (415, 413, 400, 500) in both protocols, the body deadline's sweep, what happens to the
// connection or stream after an early answer, and how the `timeout` query parameter reaches the route.
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ReviewRoute, ReviewTransportOptions } from '../src/review-transport.js';

type Mod = typeof import('../src/review-transport.js');
let mod: Mod;

interface Seen {
  status: number;
  payload: unknown;
}

/** A stand-in for http.IncomingMessage / ServerResponse: events, headers, what was written. */
function http1Pair(headers: Record<string, string>, url = '/mutate') {
  const req = Object.assign(new EventEmitter(), { headers, url, socket: { destroyed: false, destroy() { this.destroyed = true; } } });
  const set: [string, string][] = [];
  const replies: Seen[] = [];
  const res = Object.assign(new EventEmitter(), {
    writableEnded: false,
    destroyed: false,
    setHeader(name: string, value: string) {
      set.push([name, value]);
    },
    writeHead(status: number, list: string[]) {
      replies.push({ status, payload: list });
    },
    end(text: string) {
      this.writableEnded = true;
      const last = replies[replies.length - 1]!;
      last.payload = JSON.parse(text);
      res.emit('finish');
    },
  });
  return { req, res, set, replies };
}

/** A stand-in for http2.ServerHttp2Stream. */
function h2Stream() {
  const replies: Seen[] = [];
  const closed: number[] = [];
  const s = Object.assign(new EventEmitter(), {
    destroyed: false,
    closed: false,
    headersSent: false,
    respond(h: Record<string, unknown>) {
      this.headersSent = true;
      replies.push({ status: h[':status'] as number, payload: undefined });
    },
    write(text: string, cb: () => void) {
      replies[replies.length - 1]!.payload = JSON.parse(text);
      cb();
    },
    end() {
      s.emit('finish');
    },
    close(code: number) {
      closed.push(code);
    },
  });
  return { s, replies, closed };
}

const JSON_HEADERS = { 'content-type': 'application/json' };
const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

describe('review transport (in-process)', () => {
  let errors: unknown[];
  let calls: { body: unknown; timeout: string | undefined }[];
  const echo: ReviewRoute = (body, timeout) => {
    calls.push({ body, timeout });
    return { status: 200, payload: { echo: body } };
  };
  const make = (over: Partial<ReviewTransportOptions> = {}) =>
    mod.reviewTransport({ routes: { '/mutate': echo }, bodyLimit: 16, bodyTimeoutMs: 300, onError: (e) => errors.push(e), ...over });

  beforeEach(async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    vi.resetModules();
    mod = await import('../src/review-transport.js');
    errors = [];
    calls = [];
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  describe('HTTP/1.1', () => {
    it('no content-type: 415 naming none, and the connection closes once the answer is out', () => {
      const t = make();
      const { req, res, replies } = http1Pair({});
      t.http1(req as never, res as never, echo);
      expect(replies).toEqual([{ status: 415, payload: { error: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', message: 'Unsupported Media Type: none; send application/json' } }]);
      expect(req.socket.destroyed).toBe(true);
      expect(calls).toEqual([]);
    });

    it('another content-type: 415 quoting it, cut at 100 characters; the socket waits for the answer to finish', () => {
      const t = make();
      const long = `text/${'x'.repeat(200)}`;
      const { req, res, replies } = http1Pair({ 'content-type': long });
      let destroyedAtWrite: boolean | undefined;
      const writeHead = res.writeHead.bind(res);
      res.writeHead = (status: number, list: string[]) => {
        destroyedAtWrite = req.socket.destroyed;
        writeHead(status, list);
      };
      t.http1(req as never, res as never, echo);
      expect(destroyedAtWrite).toBe(false);
      expect(replies[0]).toEqual({ status: 415, payload: { error: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', message: `Unsupported Media Type: "text/${'x'.repeat(95)}"; send application/json` } });
      expect(req.socket.destroyed).toBe(true);
    });

    it('application/json with parameters is JSON; the timeout parameter reaches the route', () => {
      const t = make();
      const { req, res, replies } = http1Pair({ 'content-type': 'Application/JSON ; charset=utf-8' }, '/mutate?timeout=5s');
      t.http1(req as never, res as never, echo);
      req.emit('data', Buffer.from('{"a":1}'));
      req.emit('end');
      expect(replies).toEqual([{ status: 200, payload: { echo: { a: 1 } } }]);
      expect(calls).toEqual([{ body: { a: 1 }, timeout: '5s' }]);
    });

    it('a body that could not be read: 400, connection: close, the socket closed after the answer', () => {
      const t = make();
      const { req, res, set, replies } = http1Pair(JSON_HEADERS);
      t.http1(req as never, res as never, echo);
      req.emit('data', Buffer.from('{"a"'));
      req.emit('error', new Error('aborted'));
      expect(set).toEqual([['connection', 'close']]);
      expect(replies).toEqual([{ status: 400, payload: { error: 'BadRequest', message: 'the request body could not be read' } }]);
      expect(req.socket.destroyed).toBe(true);
      expect(calls).toEqual([]);
    });

    it('a declared length over the limit: 413 at once; exactly the limit is read', () => {
      const t = make();
      const big = http1Pair({ ...JSON_HEADERS, 'content-length': '17' });
      t.http1(big.req as never, big.res as never, echo);
      expect(big.replies).toEqual([{ status: 413, payload: { error: 'FST_ERR_CTP_BODY_TOO_LARGE', message: 'Request body is too large' } }]);
      expect(big.set).toEqual([['connection', 'close']]);
      expect(big.req.socket.destroyed).toBe(true);
      const exact = http1Pair({ ...JSON_HEADERS, 'content-length': '16' });
      t.http1(exact.req as never, exact.res as never, echo);
      exact.req.emit('data', Buffer.from('{"abcdefghij":1}')); // 16 bytes
      exact.req.emit('end');
      expect(exact.replies).toEqual([{ status: 200, payload: { echo: { abcdefghij: 1 } } }]);
    });

    it('empty and invalid bodies: fastify\'s 400s', () => {
      const t = make();
      const empty = http1Pair(JSON_HEADERS);
      t.http1(empty.req as never, empty.res as never, echo);
      empty.req.emit('end');
      expect(empty.replies).toEqual([{ status: 400, payload: { error: 'FST_ERR_CTP_EMPTY_JSON_BODY', message: "Body cannot be empty when content-type is set to 'application/json'" } }]);
      const bad = http1Pair(JSON_HEADERS);
      t.http1(bad.req as never, bad.res as never, echo);
      bad.req.emit('data', Buffer.from('{"a":'));
      bad.req.emit('end');
      expect(bad.replies).toEqual([{ status: 400, payload: { error: 'FST_ERR_CTP_INVALID_JSON_BODY', message: "Body is not valid JSON but content-type is set to 'application/json'" } }]);
      const poisoned = http1Pair(JSON_HEADERS);
      t.http1(poisoned.req as never, poisoned.res as never, echo);
      poisoned.req.emit('data', Buffer.from('{"__proto__":1}'));
      poisoned.req.emit('end');
      expect(poisoned.replies).toEqual([{ status: 400, payload: { error: 'FST_ERR_CTP_INVALID_JSON_BODY', message: "Body is not valid JSON but content-type is set to 'application/json'" } }]);
      expect(calls).toEqual([]);
    });

    it('a route that throws, or rejects: 500 without detail, the error handed to onError', async () => {
      const boom = new Error('bug');
      const t = make();
      const sync = http1Pair(JSON_HEADERS);
      t.http1(sync.req as never, sync.res as never, () => {
        throw boom;
      });
      sync.req.emit('data', Buffer.from('{}'));
      sync.req.emit('end');
      expect(sync.replies).toEqual([{ status: 500, payload: { error: 'Error', message: 'internal error' } }]);
      const later = http1Pair(JSON_HEADERS);
      t.http1(later.req as never, later.res as never, () => Promise.reject(boom));
      later.req.emit('data', Buffer.from('{}'));
      later.req.emit('end');
      await flush();
      expect(later.replies).toEqual([{ status: 500, payload: { error: 'Error', message: 'internal error' } }]);
      expect(errors).toEqual([boom, boom]);
    });
    it('the answer\'s headers: a flat list with the JSON type and the byte length of the body', () => {
      const t = make();
      const { req, res } = http1Pair(JSON_HEADERS);
      const heads: [number, string[]][] = [];
      res.writeHead = (status: number, list: string[]) => {
        heads.push([status, list]);
        res.writeHead = http1Pair({}).res.writeHead;
      };
      const written: string[] = [];
      res.end = (text: string) => {
        written.push(text);
      };
      t.http1(req as never, res as never, echo);
      req.emit('data', Buffer.from('{"é":1}'));
      req.emit('end');
      expect(written).toEqual(['{"echo":{"é":1}}']);
      expect(heads).toEqual([[200, ['content-type', 'application/json; charset=utf-8', 'content-length', '17']]]);
    });

    it('the query is what follows the first ?, also at the very start; a path without ? has no query', () => {
      const t = make();
      const leading = http1Pair(JSON_HEADERS, '?timeout=4s');
      t.http1(leading.req as never, leading.res as never, echo);
      leading.req.emit('data', Buffer.from('{}'));
      leading.req.emit('end');
      const none = http1Pair(JSON_HEADERS, '/mutate&timeout=3s');
      t.http1(none.req as never, none.res as never, echo);
      none.req.emit('data', Buffer.from('{}'));
      none.req.emit('end');
      expect(calls).toEqual([
        { body: {}, timeout: '4s' },
        { body: {}, timeout: undefined },
      ]);
    });

    it('a body that goes over the limit is answered once: later end or error events change nothing', () => {
      const t = make();
      const { req, res, set, replies } = http1Pair(JSON_HEADERS);
      t.http1(req as never, res as never, echo);
      req.emit('data', Buffer.from('{"abcdefghijk":1}')); // 17 bytes, no declared length
      req.emit('end');
      req.emit('error', new Error('late'));
      expect(replies).toEqual([{ status: 413, payload: { error: 'FST_ERR_CTP_BODY_TOO_LARGE', message: 'Request body is too large' } }]);
      expect(set).toEqual([['connection', 'close']]);
      expect(req.socket.destroyed).toBe(true);
      const ok = http1Pair(JSON_HEADERS);
      t.http1(ok.req as never, ok.res as never, echo);
      ok.req.emit('data', Buffer.from('{}'));
      ok.req.emit('end');
      ok.req.emit('error', new Error('late'));
      expect(ok.replies).toEqual([{ status: 200, payload: { echo: {} } }]);
      expect(ok.set).toEqual([]);
      expect(ok.req.socket.destroyed).toBe(false);
    });

    it('an answer ready after the response ended, or after it was destroyed, is not written', async () => {
      const t = make();
      for (const state of [{ writableEnded: true }, { destroyed: true }]) {
        const { req, res, replies } = http1Pair(JSON_HEADERS);
        let resolve!: (r: { status: number; payload: unknown }) => void;
        t.http1(req as never, res as never, () => new Promise((r) => (resolve = r)));
        req.emit('data', Buffer.from('{}'));
        req.emit('end');
        Object.assign(res, state);
        resolve({ status: 200, payload: {} });
        await flush();
        expect(replies).toEqual([]);
      }
    });

    it('JSON parsing: a leading byte-order mark is dropped, as fastify does; escapes and the words "__proto__"/"constructor" as values parse as JSON does', () => {
      const t = make({ bodyLimit: 64 });
      const bom = http1Pair(JSON_HEADERS);
      t.http1(bom.req as never, bom.res as never, echo);
      bom.req.emit('data', Buffer.from('\uFEFF{"a":1}'));
      bom.req.emit('end');
      expect(bom.replies).toEqual([{ status: 200, payload: { echo: { a: 1 } } }]);
      const bomEscaped = http1Pair(JSON_HEADERS);
      t.http1(bomEscaped.req as never, bomEscaped.res as never, echo);
      bomEscaped.req.emit('data', Buffer.from('\uFEFF{"a":"\\u00e9"}'));
      bomEscaped.req.emit('end');
      expect(bomEscaped.replies).toEqual([{ status: 200, payload: { echo: { a: 'é' } } }]);
      const escaped = http1Pair(JSON_HEADERS);
      t.http1(escaped.req as never, escaped.res as never, echo);
      escaped.req.emit('data', Buffer.from('{"a":"\\u00e9","b":"__proto__","c":"\\"constructor\\""}'));
      escaped.req.emit('end');
      expect(escaped.replies).toEqual([{ status: 200, payload: { echo: { a: 'é', b: '__proto__', c: '"constructor"' } } }]);
      const spelled = http1Pair(JSON_HEADERS);
      t.http1(spelled.req as never, spelled.res as never, echo);
      spelled.req.emit('data', Buffer.from('{"\\u005f_proto__":1}'));
      spelled.req.emit('end');
      expect(spelled.replies[0]!.status).toBe(400);
    });
  });

  describe('route', () => {
    it('POST with a URL only; the path is what precedes the first ?, even when that is empty', () => {
      const root: ReviewRoute = () => ({ status: 200, payload: null });
      const t = make({ routes: { '/mutate': echo, '': root } });
      expect(t.route('POST', undefined)).toBeUndefined();
      expect(t.route('GET', '/mutate')).toBeUndefined();
      expect(t.route('POST', '/mutate?timeout=1s')).toBe(echo);
      expect(t.route('POST', '/mutate')).toBe(echo);
      expect(t.route('POST', '?timeout=1s')).toBe(root);
      expect(t.route('POST', '/other')).toBeUndefined();
    });
  });

  describe('the body deadline', () => {
    it('a body still arriving when its deadline comes is cut: socket destroyed, listener gone, nothing answered later', () => {
      const t = make();
      const { req, res, replies } = http1Pair(JSON_HEADERS);
      t.http1(req as never, res as never, echo);
      req.emit('data', Buffer.from('{"a":'));
      vi.advanceTimersByTime(299);
      expect(req.socket.destroyed).toBe(false);
      vi.advanceTimersByTime(1); // exactly the deadline: the sweep (every 300 ms here) cuts it
      expect(req.socket.destroyed).toBe(true);
      expect(req.listenerCount('data')).toBe(0);
      req.emit('end');
      req.emit('error', new Error('late'));
      expect(replies).toEqual([]);
      expect(calls).toEqual([]);
    });

    it('a body completed before its deadline is answered even across a sweep', () => {
      const t = make({ bodyTimeoutMs: 5000 });
      const { req, res, replies } = http1Pair(JSON_HEADERS);
      t.http1(req as never, res as never, echo);
      req.emit('data', Buffer.from('{"a":'));
      vi.advanceTimersByTime(2000); // two sweeps (every second) before the deadline
      req.emit('data', Buffer.from('2}'));
      req.emit('end');
      expect(req.socket.destroyed).toBe(false);
      expect(replies).toEqual([{ status: 200, payload: { echo: { a: 2 } } }]);
    });
  });

  describe('HTTP/2', () => {
    it('a JSON body with a query: answered, the timeout parameter reaches the route', () => {
      const t = make();
      const { s, replies, closed } = h2Stream();
      t.http2(s as never, { ...JSON_HEADERS, ':path': '/mutate?timeout=7s' }, echo);
      s.emit('data', Buffer.from('{"b":2}'));
      s.emit('end');
      expect(replies).toEqual([{ status: 200, payload: { echo: { b: 2 } } }]);
      expect(calls).toEqual([{ body: { b: 2 }, timeout: '7s' }]);
      expect(closed).toEqual([]);
    });

    it('no query: the route gets no timeout, whatever the path looks like', () => {
      const t = make();
      const { s } = h2Stream();
      t.http2(s as never, { ...JSON_HEADERS, ':path': '/r&timeout=3s' }, echo);
      s.emit('data', Buffer.from('{}'));
      s.emit('end');
      const first = h2Stream();
      t.http2(first.s as never, { ...JSON_HEADERS, ':path': '?timeout=4s' }, echo);
      first.s.emit('data', Buffer.from('{}'));
      first.s.emit('end');
      expect(calls).toEqual([
        { body: {}, timeout: undefined },
        { body: {}, timeout: '4s' },
      ]);
    });

    it('415 then RST_STREAM(NO_ERROR) once the answer is out; a stream error after it is absorbed', () => {
      const t = make();
      const { s, replies, closed } = h2Stream();
      t.http2(s as never, { 'content-type': 'text/plain', ':path': '/mutate' }, echo);
      expect(replies).toEqual([{ status: 415, payload: { error: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', message: 'Unsupported Media Type: "text/plain"; send application/json' } }]);
      expect(closed).toEqual([0]);
      expect(() => s.emit('error', new Error('reset'))).not.toThrow();
    });

    it('a declared length over the limit: 413 at once, then RST_STREAM(NO_ERROR)', () => {
      const t = make();
      const { s, replies, closed } = h2Stream();
      t.http2(s as never, { ...JSON_HEADERS, ':path': '/mutate', 'content-length': '17' }, echo);
      expect(replies).toEqual([{ status: 413, payload: { error: 'FST_ERR_CTP_BODY_TOO_LARGE', message: 'Request body is too large' } }]);
      expect(closed).toEqual([0]);
    });

    it('an answer ready after the stream closed, or after headers went out, is not sent', async () => {
      const t = make();
      for (const state of [{ closed: true }, { destroyed: true }, { headersSent: true }]) {
        const { s, replies } = h2Stream();
        let resolve!: (r: { status: number; payload: unknown }) => void;
        t.http2(s as never, { ...JSON_HEADERS, ':path': '/mutate' }, () => new Promise((r) => (resolve = r)));
        s.emit('data', Buffer.from('{}'));
        s.emit('end');
        Object.assign(s, state);
        resolve({ status: 200, payload: {} });
        await flush();
        expect(replies).toEqual([]);
      }
    });

    it('a trickled stream is cancelled at its deadline', () => {
      const t = make();
      const { s, closed } = h2Stream();
      t.http2(s as never, { ...JSON_HEADERS, ':path': '/mutate' }, echo);
      s.emit('data', Buffer.from('{'));
      vi.advanceTimersByTime(300);
      expect(closed).toEqual([8]);
    });
  });

  it.each([
    ['timeout=5s&x=1', '5s'],
    ['notimeout=', undefined],
    ['timeout=%&timeout=5s', undefined],
  ])('timeout parameter of %s', (query, want) => {
    expect(mod.timeoutParam(query)).toBe(want);
  });
});
