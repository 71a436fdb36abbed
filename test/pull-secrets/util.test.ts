// Exact behaviour of the small Secret helpers: backoff, sleep, deadlines, error summaries. Fake timers throughout;
// the listeners left on an AbortSignal are read with node:events' getEventListeners.
import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

type Util = typeof import('../../src/pull-secrets/util.js');
type Types = typeof import('../../src/pull-secrets/types.js');
let u: Util;
let types: Types;

beforeEach(async () => {
  vi.resetModules();
  u = await import('../../src/pull-secrets/util.js');
  types = await import('../../src/pull-secrets/types.js');
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

/** Watches a promise without awaiting it: what it settled with, if it has. */
function watch<T>(p: Promise<T>): { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } {
  const w: { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } = { state: 'pending' };
  p.then(
    (v) => {
      w.state = 'resolved';
      w.value = v;
    },
    (e: unknown) => {
      w.state = 'rejected';
      w.error = e;
    },
  );
  return w;
}

const abortListeners = (s: AbortSignal): number => getEventListeners(s, 'abort').length;

describe('backoffDelay', () => {
  it('is 0 before any failure', () => {
    expect(u.backoffDelay(0, { initialMs: 100, maxMs: 1000 })).toBe(0);
    expect(u.backoffDelay(-1, { initialMs: 100, maxMs: 1000 })).toBe(0);
  });

  it('doubles from initialMs up to maxMs, without calling random when there is no jitter', () => {
    const random = vi.fn(() => 0.5);
    expect(u.backoffDelay(1, { initialMs: 100, maxMs: 1000 }, random)).toBe(100);
    expect(u.backoffDelay(3, { initialMs: 100, maxMs: 1000 }, random)).toBe(400);
    expect(u.backoffDelay(5, { initialMs: 100, maxMs: 1000 }, random)).toBe(1000);
    expect(u.backoffDelay(3, { initialMs: 100, maxMs: 1000, jitter: 0 }, random)).toBe(400);
    expect(random).not.toHaveBeenCalled();
  });

  it('adds jitter * random() of the delay', () => {
    expect(u.backoffDelay(3, { initialMs: 100, maxMs: 1000, jitter: 0.5 }, () => 0.5)).toBe(500);
    expect(u.backoffDelay(3, { initialMs: 100, maxMs: 1000, jitter: 0.5 }, () => 0.25)).toBe(450);
  });
});

describe('sleep', () => {
  it('resolves after ms without a signal', async () => {
    const w = watch(u.sleep(100));
    await vi.advanceTimersByTimeAsync(99);
    expect(w.state).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(w.state).toBe('resolved');
  });

  it('resolves at once, with no timer, when the signal has already aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    const w = watch(u.sleep(10_000, ac.signal));
    await vi.advanceTimersByTimeAsync(0);
    expect(w.state).toBe('resolved');
    expect(vi.getTimerCount()).toBe(0);
    expect(abortListeners(ac.signal)).toBe(0);
  });

  it('resolves early when the signal aborts, leaving no timer and no listener', async () => {
    const ac = new AbortController();
    const w = watch(u.sleep(10_000, ac.signal));
    await vi.advanceTimersByTimeAsync(10);
    expect(w.state).toBe('pending');
    expect(abortListeners(ac.signal)).toBe(1);
    ac.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(w.state).toBe('resolved');
    expect(vi.getTimerCount()).toBe(0);
    expect(abortListeners(ac.signal)).toBe(0);
  });

  it('removes its abort listener when the time is up', async () => {
    const ac = new AbortController();
    const w = watch(u.sleep(100, ac.signal));
    await vi.advanceTimersByTimeAsync(100);
    expect(w.state).toBe('resolved');
    expect(abortListeners(ac.signal)).toBe(0);
  });

  it('works where timers are plain numbers without unref', async () => {
    const pending: (() => void)[] = [];
    vi.stubGlobal('setTimeout', (fn: () => void) => {
      pending.push(fn);
      return 7;
    });
    const w = watch(u.sleep(5));
    await Promise.resolve();
    expect(w.state).toBe('pending');
    for (const fn of pending.splice(0)) fn();
    await Promise.resolve();
    expect(w.state).toBe('resolved');
  });
});

describe('timeoutError', () => {
  it('is a 503 Timeout denial saying what timed out', () => {
    const e = u.timeoutError('writing the Secret');
    expect(e).toBeInstanceOf(types.DenialError);
    expect(e.message).toBe('timed out writing the Secret');
    expect(e.code).toBe(503);
    expect(e.reason).toBe('Timeout');
  });
});

describe('withDeadline', () => {
  const NOW = 1_000_000;
  const now = (): number => NOW;

  it('rejects at once with the timeout when the deadline has been reached, even for finished work', async () => {
    const w = watch(u.withDeadline(Promise.resolve(5), { deadline: NOW }, 'reading', now));
    await vi.advanceTimersByTimeAsync(0);
    expect(w.state).toBe('rejected');
    expect((w.error as Error).message).toBe('timed out reading');
    expect((w.error as InstanceType<Types['DenialError']>).reason).toBe('Timeout');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('builds the denial with the function given', async () => {
    const custom = new types.DenialError('waited on the token', 503, 'Slow');
    const w = watch(u.withDeadline(Promise.resolve(5), { deadline: NOW - 1 }, () => custom, now));
    await vi.advanceTimersByTimeAsync(0);
    expect(w.state).toBe('rejected');
    expect(w.error).toBe(custom);
  });

  it('rejects at once when the signal has already aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    const w = watch(u.withDeadline(Promise.resolve(5), { deadline: NOW + 10_000, signal: ac.signal }, 'reading', now));
    await vi.advanceTimersByTimeAsync(0);
    expect(w.state).toBe('rejected');
    expect((w.error as Error).message).toBe('timed out reading');
  });

  it('resolves with the work, leaving no timer and no listener', async () => {
    const ac = new AbortController();
    let release!: (v: number) => void;
    const work = new Promise<number>((r) => (release = r));
    const w = watch(u.withDeadline(work, { deadline: NOW + 10_000, signal: ac.signal }, 'reading', now));
    await vi.advanceTimersByTimeAsync(10);
    expect(vi.getTimerCount()).toBe(1);
    expect(abortListeners(ac.signal)).toBe(1);
    release(42);
    await vi.advanceTimersByTimeAsync(0);
    expect(w).toEqual({ state: 'resolved', value: 42 });
    expect(vi.getTimerCount()).toBe(0);
    expect(abortListeners(ac.signal)).toBe(0);
  });

  it('rejects with the work error, leaving no timer and no listener', async () => {
    const ac = new AbortController();
    const boom = new Error('boom');
    let fail!: (e: Error) => void;
    const work = new Promise<number>((_r, j) => (fail = j));
    const w = watch(u.withDeadline(work, { deadline: NOW + 10_000, signal: ac.signal }, 'reading', now));
    fail(boom);
    await vi.advanceTimersByTimeAsync(0);
    expect(w.state).toBe('rejected');
    expect(w.error).toBe(boom);
    expect(vi.getTimerCount()).toBe(0);
    expect(abortListeners(ac.signal)).toBe(0);
  });

  it('rejects with the timeout when the signal aborts, leaving no timer', async () => {
    const ac = new AbortController();
    const w = watch(u.withDeadline(new Promise<number>(() => {}), { deadline: NOW + 10_000, signal: ac.signal }, 'reading', now));
    await vi.advanceTimersByTimeAsync(10);
    expect(w.state).toBe('pending');
    ac.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(w.state).toBe('rejected');
    expect((w.error as Error).message).toBe('timed out reading');
    expect(vi.getTimerCount()).toBe(0);
    expect(abortListeners(ac.signal)).toBe(0);
  });

  it('rejects with the timeout when the remaining time runs out, leaving no listener', async () => {
    const ac = new AbortController();
    const w = watch(u.withDeadline(new Promise<number>(() => {}), { deadline: NOW + 100, signal: ac.signal }, 'reading', now));
    await vi.advanceTimersByTimeAsync(99);
    expect(w.state).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(w.state).toBe('rejected');
    expect((w.error as Error).message).toBe('timed out reading');
    expect(abortListeners(ac.signal)).toBe(0);
  });

  it('works where timers are plain numbers without unref', async () => {
    vi.stubGlobal('setTimeout', () => 7);
    vi.stubGlobal('clearTimeout', () => {});
    const w = watch(u.withDeadline(Promise.resolve(3), { deadline: NOW + 100 }, 'reading', now));
    await Promise.resolve();
    await Promise.resolve();
    expect(w).toEqual({ state: 'resolved', value: 3 });
  });
});

describe('describeError', () => {
  it('gives a DenialError message as it is', () => {
    expect(u.describeError(new types.DenialError('AssumeRole denied', 403, 'Forbidden'))).toBe('AssumeRole denied');
  });

  it('says "unknown error" for anything that is not an object', () => {
    expect(u.describeError(null)).toBe('unknown error');
    expect(u.describeError(undefined)).toBe('unknown error');
    expect(u.describeError('ECONNREFUSED')).toBe('unknown error');
    expect(u.describeError(404)).toBe('unknown error');
  });

  it('names the class, "Error" when it has no string name', () => {
    expect(u.describeError({})).toBe('Error');
    expect(u.describeError({ name: 5 })).toBe('Error');
    expect(u.describeError(new TypeError('x'))).toBe('TypeError');
  });

  it('adds a numeric HTTP status from code or statusCode', () => {
    expect(u.describeError({ name: 'HttpError', statusCode: 404 })).toBe('HttpError HTTP 404');
    expect(u.describeError({ name: 'ApiException', code: 409 })).toBe('ApiException HTTP 409');
    expect(u.describeError({ name: 'HttpError', statusCode: '404' })).toBe('HttpError');
  });

  it('adds a string reason, else the reason of a JSON body text', () => {
    expect(u.describeError({ name: 'HttpError', statusCode: 409, reason: 'Conflict' })).toBe('HttpError HTTP 409 Conflict');
    expect(u.describeError({ reason: 5 })).toBe('Error');
    expect(u.describeError({ body: '{"reason":"NotFound"}' })).toBe('Error NotFound');
    expect(u.describeError({ reason: 'Conflict', body: '{"reason":"NotFound"}' })).toBe('Error Conflict');
    expect(u.describeError({ body: '{"reason":5}' })).toBe('Error');
    expect(u.describeError({ body: 'not json' })).toBe('Error');
    expect(u.describeError({ body: Buffer.from('{"reason":"NotFound"}') })).toBe('Error');
  });

  it('adds a network errno only when the code is an upper-case identifier text', () => {
    expect(u.describeError({ name: 'FetchError', code: 'ECONNREFUSED' })).toBe('FetchError ECONNREFUSED');
    expect(u.describeError({ name: 'FetchError', code: 'econnrefused' })).toBe('FetchError');
    expect(u.describeError({ name: 'FetchError', code: 'xECONNREFUSED' })).toBe('FetchError');
    expect(u.describeError({ name: 'FetchError', code: 'ECONNREFUSED at 10.0.0.1' })).toBe('FetchError');
    expect(u.describeError({ name: 'FetchError', code: ['ECONNREFUSED'] })).toBe('FetchError');
  });
});
