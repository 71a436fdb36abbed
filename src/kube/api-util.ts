// Helpers around @kubernetes/client-node 1.4: HTTP status of an error, per-request timeouts, time fields.
import { Observable, type ConfigurationOptions, type ObservableMiddleware } from '@kubernetes/client-node';

/** The HTTP status carried by a client-node error: `ApiException.code`, the watch's `statusCode`, or a Status object's `code`. */
export function httpStatus(err: unknown): number | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

/**
 * Per-call options that abort the request after `ms` (client-node sets no timeout of its own, and a request
 * that never answers would otherwise hold a write, or a loop, forever).
 */
export function requestTimeout(ms: number): ConfigurationOptions {
  // The object-parameter API runs on the observable API: its middleware returns client-node's Observable stub.
  const middleware: ObservableMiddleware = {
    pre: (ctx) => {
      ctx.setSignal(AbortSignal.timeout(ms));
      return new Observable(Promise.resolve(ctx));
    },
    post: (ctx) => new Observable(Promise.resolve(ctx)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

/** Milliseconds since epoch of a time field that client-node leaves as a string (watch events, MicroTime) or turns into a Date. */
export function timeMs(v: unknown): number | undefined {
  if (v instanceof Date) return Number.isFinite(v.getTime()) ? v.getTime() : undefined;
  if (typeof v === 'string' && v) {
    const t = Date.parse(v);
    return Number.isFinite(t) ? t : undefined;
  }
  return undefined;
}
