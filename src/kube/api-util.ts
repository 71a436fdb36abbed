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

/** One API call as the logs name it: `list secrets (GET /api/v1/secrets)`. */
export interface ApiCall {
  verb: 'get' | 'list' | 'watch' | 'create' | 'update' | 'delete';
  /** Plural resource, with its group when not core: `secrets`, `leases.coordination.k8s.io`. */
  resource: string;
  method: string;
  path: string;
}

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|TLS|SSL|EPROTO/;

/**
 * Log fields for a failed API call that say what went wrong and what to check: the call, the HTTP status (or the
 * network error: errno code and the system call), the API server's address, and a hint (RBAC, the address, the CA).
 * Never a response body or message that could echo object content.
 */
export function apiFailure(err: unknown, call: ApiCall, server: string | undefined): { call: string; status?: number; error: string; server?: string; check: string } {
  const status = httpStatus(err);
  const name = `${call.verb} ${call.resource} (${call.method} ${call.path})`;
  const where = server ? ` at ${server}` : '';
  const base = { call: name, ...(status !== undefined ? { status } : {}), error: describeApiError(err), ...(server ? { server } : {}) };
  const code = errorCode(err);
  let check: string;
  if (status === 401) {
    check = `the API server${where} rejected the webhook's credentials: check the ServiceAccount token (in a Pod) or the KUBECONFIG user`;
  } else if (status === 403) {
    check = `check RBAC: the webhook's ServiceAccount may not ${call.verb} ${call.resource}; apply manifests/base/rbac.yaml (ClusterRole and Role acr-pull-webhook*), see manifests/README.md`;
  } else if (status === 404) {
    check = `the API server${where} has no such resource: check the API server address and version, and that the namespace exists`;
  } else if (status !== undefined) {
    check = `the API server${where} answered HTTP ${status}; retrying`;
  } else if (TLS_CODES.test(code ?? '')) {
    check = `the API server's certificate${where} was not accepted: check the CA (the ServiceAccount's ca.crt, or certificate-authority in KUBECONFIG)`;
  } else if (code !== undefined || aborted(err)) {
    check = `cannot reach the API server${where}: check the API server address (KUBERNETES_SERVICE_HOST/PORT in a Pod, the server in KUBECONFIG), DNS and network policies`;
  } else if (errorName(err) === 'Error' || errorName(err) === undefined) {
    // Neither a status nor a network error: raised by the client itself, before any request.
    check = `the Kubernetes client refused the call before sending it: check the client configuration (KUBECONFIG, or the ServiceAccount files in a Pod) named in the error`;
  } else {
    // A TypeError or SyntaxError without a network code: the answer came, and the client could not read it.
    check = `the API server${where} answered, but the Kubernetes client could not read the answer (an object it cannot parse, or a version it does not know): not a network problem; retrying`;
  }
  return { ...base, check };
}

function errorName(err: unknown): string | undefined {
  return err && typeof err === 'object' && typeof (err as { name?: unknown }).name === 'string' ? (err as { name: string }).name : undefined;
}

/** A request the client gave up on (its timeout) or that was cancelled: no answer came. */
function aborted(err: unknown): boolean {
  return errorName(err) === 'AbortError' || (!!err && typeof err === 'object' && (err as { type?: unknown }).type === 'aborted');
}

/** The errno-style code of a network error (`ECONNREFUSED`, `ENOTFOUND`, `DEPTH_ZERO_SELF_SIGNED_CERT`). */
function errorCode(err: unknown): string | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; errno?: unknown; cause?: unknown };
  for (const v of [e.code, e.errno, (e.cause as { code?: unknown } | undefined)?.code]) if (typeof v === 'string' && /^[A-Z0-9_]+$/.test(v)) return v;
  return undefined;
}

/**
 * A one-line description of an API error: `ApiException HTTP 403 Forbidden`, `FetchError ECONNREFUSED (connect)`,
 * `AbortError (timed out)`. For errors raised before any request (configuration), their message.
 */
export function describeApiError(err: unknown): string {
  if (!err || typeof err !== 'object') return String(err);
  const e = err as { name?: unknown; message?: unknown; erroredSysCall?: unknown; syscall?: unknown; body?: unknown; type?: unknown };
  const name = errorName(err) ?? 'Error';
  const status = httpStatus(err);
  if (status !== undefined) {
    let reason: string | undefined;
    if (typeof e.body === 'string') {
      try {
        const r = (JSON.parse(e.body) as { reason?: unknown }).reason;
        if (typeof r === 'string') reason = r;
      } catch {
        // not JSON: say nothing about it
      }
    } else if (e.body && typeof (e.body as { reason?: unknown }).reason === 'string') {
      reason = (e.body as { reason: string }).reason;
    }
    return [name, `HTTP ${status}`, reason].filter(Boolean).join(' ');
  }
  const code = errorCode(err);
  if (code) {
    const syscall = typeof e.erroredSysCall === 'string' ? e.erroredSysCall : typeof e.syscall === 'string' ? e.syscall : undefined;
    return `${name} ${code}${syscall ? ` (${syscall})` : ''}`;
  }
  if (aborted(err)) return `${name} (timed out or aborted)`;
  // No status and no network code: a plain Error is raised locally (client configuration) and carries no object
  // content; other kinds (a SyntaxError quotes the body it failed to parse) are named only.
  return name === 'Error' && typeof e.message === 'string' && e.message ? `${name}: ${e.message.slice(0, 300)}` : name;
}

/** The API server's address from a kubeconfig, for logs (scheme, host and port only). */
export function apiServerOf(kubeConfig: { getCurrentCluster(): { server: string } | null }): string | undefined {
  const server = kubeConfig.getCurrentCluster()?.server;
  if (!server) return undefined;
  try {
    return new URL(server).origin;
  } catch {
    return undefined;
  }
}
