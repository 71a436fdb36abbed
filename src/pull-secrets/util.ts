// Small helpers shared by the Secret logic: keys, backoff, deadlines, sleeping, error summaries.
import { DenialError, type Budget } from './types.js';

/** Cache key of a namespaced object. */
export function keyOf(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export interface BackoffOptions {
  /** Delay after the first failure. */
  initialMs: number;
  /** Upper bound of the delay. */
  maxMs: number;
  /** Fraction of random spread added to each delay (0 = deterministic). */
  jitter?: number;
}

/** Exponential backoff: `initialMs * 2^(failures-1)`, capped at `maxMs`, with optional jitter. */
export function backoffDelay(failures: number, opts: BackoffOptions, random: () => number = Math.random): number {
  if (failures <= 0) return 0;
  const base = Math.min(opts.maxMs, opts.initialMs * 2 ** Math.min(failures - 1, 30));
  const jitter = opts.jitter ?? 0;
  return Math.round(jitter > 0 ? base * (1 + jitter * random()) : base);
}

/** Resolves after `ms`, or early (without rejecting) when `signal` aborts. The timer never keeps the process alive. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    timer.unref?.();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function timeoutError(what: string): DenialError {
  return new DenialError(`timed out ${what}`, 503, 'Timeout');
}

/**
 * Races `work` against the budget's deadline (wall clock, `Date.now()` based like the API server's timeout) and
 * its abort signal. The work itself is not cancelled: a write that lands late still fills the cache. `what` is
 * the timeout's description, or a function that builds the denial when it happens (from what is then in flight).
 */
export function withDeadline<T>(work: Promise<T>, budget: Budget, what: string | (() => DenialError), now: () => number = Date.now): Promise<T> {
  const timedOut = (): DenialError => (typeof what === 'string' ? timeoutError(what) : what());
  const remaining = budget.deadline - now();
  if (remaining <= 0 || budget.signal?.aborted) {
    work.catch(() => {});
    return Promise.reject(timedOut());
  }
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const finish = (): boolean => {
      if (done) return false;
      done = true;
      clearTimeout(timer);
      budget.signal?.removeEventListener('abort', onAbort);
      return true;
    };
    const onAbort = (): void => {
      if (finish()) reject(timedOut());
    };
    const timer = setTimeout(onAbort, remaining);
    timer.unref?.();
    budget.signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        if (finish()) resolve(v);
      },
      (e: unknown) => {
        if (finish()) reject(e);
      },
    );
  });
}

/**
 * A one-line description of an error that is safe to log or show: DenialError messages are safe by contract;
 * for anything else only the class name and, when present, an HTTP status code or a network errno and a
 * Kubernetes `reason` (never a message or body, which could echo request content).
 */
export function describeError(err: unknown): string {
  if (err instanceof DenialError) return err.message;
  if (err && typeof err === 'object') {
    const e = err as { name?: unknown; code?: unknown; statusCode?: unknown; reason?: unknown; body?: unknown };
    const name = typeof e.name === 'string' ? e.name : 'Error';
    const code = typeof e.code === 'number' ? e.code : typeof e.statusCode === 'number' ? e.statusCode : undefined;
    let reason = typeof e.reason === 'string' ? e.reason : undefined;
    if (!reason && typeof e.body === 'string') {
      try {
        const parsed = JSON.parse(e.body) as { reason?: unknown };
        if (typeof parsed.reason === 'string') reason = parsed.reason;
      } catch {
        // not JSON: say nothing about it
      }
    }
    // A network error's errno (`FetchError ECONNREFUSED`): says why without quoting a message.
    const errno = typeof e.code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(e.code) ? e.code : undefined;
    return [name, code !== undefined ? `HTTP ${code}` : errno, reason].filter(Boolean).join(' ');
  }
  return 'unknown error';
}
