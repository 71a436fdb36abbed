// CloudCaller against a loopback stub that answers what each test scripts: CR's IsSuccess:false answers, the
// metrics observer, keep-alive agents for RPC and ROA calls, when pop-core is loaded, and the retry schedule
// (backoff steps, and the deadline checks before an attempt and before a pause) with the clock and jitter pinned.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

type Rpc = typeof import('../../src/cloud/rpc.js');
type Answer = { status: number; json: unknown; delayMs?: number };
interface Seen {
  method: string;
  url: string;
  body: string;
  remotePort: number;
}

let rpc: Rpc;
let server: Server;
let endpoint = '';
let answer: (req: IncomingMessage) => Answer = () => ({ status: 200, json: {} });
const seen: Seen[] = [];
const callers: InstanceType<Rpc['CloudCaller']>[] = [];
const KEYS = { accessKeyId: 'LTAI-test', accessKeySecret: 'test-secret' };

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', body: Buffer.concat(chunks).toString('utf8'), remotePort: req.socket.remotePort ?? 0 });
      const a = answer(req);
      const send = () => {
        res.writeHead(a.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(a.json));
      };
      if (a.delayMs) setTimeout(send, a.delayMs);
      else send();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

beforeEach(async () => {
  // A fresh module per test: pop-core is loaded once per module instance, and load-time constants count.
  vi.resetModules();
  rpc = await import('../../src/cloud/rpc.js');
  seen.length = 0;
  answer = () => ({ status: 200, json: {} });
});
afterEach(() => {
  vi.restoreAllMocks();
  for (const c of callers.splice(0)) c.close();
});

function caller(opts: ConstructorParameters<Rpc['CloudCaller']>[0] = {}) {
  const c = new rpc.CloudCaller(opts);
  callers.push(c);
  return c;
}

async function failure(p: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await p;
  } catch (e) {
    const { name, message, api, code, retryable, requestId, httpStatus } = e as Record<string, unknown>;
    return { name, message, api, code, retryable, requestId, httpStatus };
  }
  throw new Error('expected a failure');
}

const far = () => ({ deadline: Date.now() + 10_000 });

describe('IsSuccess:false answers (HTTP 200)', () => {
  it('become a non-retryable CloudError with the answer\'s Code and RequestId', async () => {
    answer = () => ({ status: 200, json: { IsSuccess: false, Code: 'OK', RequestId: 'REQ-1' } });
    expect(await failure(caller().rpc(endpoint, '2018-12-01', KEYS, 'ListInstance', {}, far()))).toEqual({
      name: 'CloudError',
      message: 'ListInstance failed: OK (request REQ-1)',
      api: 'ListInstance',
      code: 'OK',
      retryable: false,
      requestId: 'REQ-1',
      httpStatus: undefined,
    });
    expect(seen).toHaveLength(1);
  });

  it('without a string Code or RequestId: Unknown, no request ID', async () => {
    answer = () => ({ status: 200, json: { IsSuccess: false, Code: 0, RequestId: 42 } });
    expect(await failure(caller().rpc(endpoint, '2018-12-01', KEYS, 'ListInstance', {}, far()))).toEqual({
      name: 'CloudError',
      message: 'ListInstance failed: Unknown',
      api: 'ListInstance',
      code: 'Unknown',
      retryable: false,
      requestId: undefined,
      httpStatus: undefined,
    });
  });

  it('IsSuccess:true and an answer without it are answers', async () => {
    answer = () => ({ status: 200, json: { IsSuccess: true, Code: 'success', Instances: [] } });
    expect(await caller().rpc(endpoint, '2018-12-01', KEYS, 'ListInstance', {}, far())).toEqual({ IsSuccess: true, Code: 'success', Instances: [] });
  });
});

describe('observer', () => {
  beforeEach(() => {
    // A clock far from zero: a sum of two readings instead of their difference would be unmistakable.
    const real = performance.now.bind(performance);
    vi.spyOn(performance, 'now').mockImplementation(() => real() + 1e7);
  });

  it('records a success as "ok" with its duration in seconds', async () => {
    const calls: [string, string, number][] = [];
    answer = () => ({ status: 200, json: { AccountId: '1' }, delayMs: 60 });
    await caller({ observe: (api, code, s) => calls.push([api, code, s]) }).rpc(endpoint, '2015-04-01', KEYS, 'GetCallerIdentity', {}, far());
    expect(calls.map(([api, code]) => [api, code])).toEqual([['GetCallerIdentity', 'ok']]);
    expect(calls[0]![2]).toBeGreaterThanOrEqual(0.05);
    expect(calls[0]![2]).toBeLessThan(100);
  });

  it('records a failure with its code and duration in seconds', async () => {
    const calls: [string, string, number][] = [];
    answer = () => ({ status: 403, json: { Code: 'NoPermission', Message: 'no', RequestId: 'R' }, delayMs: 60 });
    const e = await failure(caller({ observe: (api, code, s) => calls.push([api, code, s]) }).rpc(endpoint, '2015-04-01', KEYS, 'AssumeRole', {}, far()));
    expect(e.code).toBe('NoPermission');
    expect(calls.map(([api, code]) => [api, code])).toEqual([['AssumeRole', 'NoPermission']]);
    expect(calls[0]![2]).toBeGreaterThanOrEqual(0.05);
    expect(calls[0]![2]).toBeLessThan(100);
  });
});

describe('connections', () => {
  it('RPC calls to one endpoint reuse one kept-alive connection', async () => {
    const c = caller();
    for (let i = 0; i < 3; i++) await c.rpc(endpoint, '2015-04-01', KEYS, 'GetCallerIdentity', {}, far());
    expect(seen).toHaveLength(3);
    expect(new Set(seen.map((s) => s.remotePort)).size).toBe(1);
  });

  it('ROA calls reuse one kept-alive connection too, and send no body', async () => {
    const c = caller();
    for (let i = 0; i < 3; i++) expect(await c.roa(endpoint, '2016-06-07', KEYS, 'GetAuthorizationToken', 'GET', '/tokens', far())).toEqual({});
    expect(seen.map((s) => [s.method, s.url, s.body])).toEqual([
      ['GET', '/tokens', ''],
      ['GET', '/tokens', ''],
      ['GET', '/tokens', ''],
    ]);
    expect(new Set(seen.map((s) => s.remotePort)).size).toBe(1);
  });
});

describe('loading pop-core', () => {
  it('loads it in the first constructor, calling beforeLoad once per process', () => {
    const first = vi.fn();
    const second = vi.fn();
    caller({ beforeLoad: first });
    expect(first).toHaveBeenCalledTimes(1);
    caller({ beforeLoad: second });
    expect(second).not.toHaveBeenCalled();
  });

  it('lazyLoad: loads it at the first call instead', async () => {
    const before = vi.fn();
    const c = caller({ lazyLoad: true, beforeLoad: before });
    expect(before).not.toHaveBeenCalled();
    await c.rpc(endpoint, '2015-04-01', KEYS, 'GetCallerIdentity', {}, far());
    expect(before).toHaveBeenCalledTimes(1);
    await c.rpc(endpoint, '2015-04-01', KEYS, 'GetCallerIdentity', {}, far());
    expect(before).toHaveBeenCalledTimes(1);
  });
});

describe('retries', () => {
  const T = 1_800_000_000_000;
  let pauses: number[];
  beforeEach(() => {
    answer = () => ({ status: 503, json: { Code: 'ServiceUnavailable', Message: 'busy', RequestId: 'R-503' } });
    // The clock stands still (only the budget arithmetic reads it) and the jitter is pinned at ×0.75.
    vi.spyOn(Date, 'now').mockReturnValue(T);
    vi.spyOn(Math, 'random').mockReturnValue(0.25);
    pauses = [];
    const realSetTimeout = globalThis.setTimeout;
    vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms?: number, ...args: unknown[]) => {
      // Only the caller's own pauses, not pop-core's or httpx's timers.
      const frames = (new Error().stack ?? '').split('\n').slice(1);
      const setter = frames.find((f) => !f.includes('rpc.test.ts') && !f.includes('node_modules'));
      if (setter?.includes('src/cloud/rpc.ts')) pauses.push(ms ?? 0);
      return realSetTimeout(fn, ms, ...args);
    }) as typeof setTimeout);
  });

  it('backs off 100 ms by default, doubling per attempt, 4 attempts in all', async () => {
    const e = await failure(caller().rpc(endpoint, '2015-04-01', KEYS, 'AssumeRole', {}, { deadline: T + 10_000 }));
    expect(e).toMatchObject({ code: 'ServiceUnavailable', retryable: true, requestId: 'R-503' });
    expect(seen).toHaveLength(4);
    expect(pauses).toEqual([75, 150, 300, 600]);
  });

  it('attempts with exactly the minimum 200 ms left, not with less', async () => {
    const e = await failure(caller().rpc(endpoint, '2015-04-01', KEYS, 'AssumeRole', {}, { deadline: T + 200 }));
    expect(e).toMatchObject({ code: 'ServiceUnavailable' });
    // After the first attempt a 75 ms pause would leave 125 ms: no second one.
    expect(seen).toHaveLength(1);
    expect(pauses).toEqual([]);
  });

  it('pauses only when 200 ms would be left after the pause', async () => {
    const e = await failure(caller({ backoffMs: 400 }).rpc(endpoint, '2015-04-01', KEYS, 'AssumeRole', {}, { deadline: T + 500 }));
    expect(e).toMatchObject({ code: 'ServiceUnavailable' });
    // 500 - 300 = 200 left: one pause and a second attempt; then 500 - 600: none.
    expect(seen).toHaveLength(2);
    expect(pauses).toEqual([300]);
  });

  it('no time for any attempt: a retryable Timeout, nothing sent', async () => {
    expect(await failure(caller().rpc(endpoint, '2015-04-01', KEYS, 'AssumeRole', {}, { deadline: T + 199 }))).toEqual({
      name: 'CloudError',
      message: 'AssumeRole failed: Timeout',
      api: 'AssumeRole',
      code: 'Timeout',
      retryable: true,
      requestId: undefined,
      httpStatus: undefined,
    });
    expect(seen).toHaveLength(0);
  });
});
