// Cloud failures as data: code, HTTP status, request ID and whether a retry may help. The raw messages of the
// services are never passed on: SignatureDoesNotMatch, for one, echoes the string to sign with the SecurityToken.

export class CloudError extends Error {
  constructor(
    readonly api: string,
    readonly code: string,
    readonly retryable: boolean,
    readonly requestId?: string,
    readonly httpStatus?: number,
    /** RAM's AccessDeniedDetail.AuthAction (e.g. `sts:AssumeRole`): the caller's own policy lacks it. */
    readonly deniedAction?: string,
  ) {
    super(`${api} failed: ${code}${requestId ? ` (request ${requestId})` : ''}`);
    this.name = 'CloudError';
  }
}

const RETRYABLE_CODES = /^(Throttling|ServiceUnavailable|InternalError|Unreachable|Timeout|BadResponse|SYSTEM_ERROR|InternalFailure)/i;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

const RAM_ACTION = /^[a-z]{2,20}:[A-Za-z*]{1,80}$/;

/**
 * RAM denials of the caller's own policy carry `AccessDeniedDetail` (AuthAction, PolicyType...); a trust policy
 * refusing AssumeRole does not. Only a well-formed action name is kept: it is shown in denial messages.
 */
function deniedAction(data: Record<string, unknown>): string | undefined {
  const detail = data.AccessDeniedDetail;
  const action = isObject(detail) ? detail.AuthAction : undefined;
  return typeof action === 'string' && RAM_ACTION.test(action) ? action : undefined;
}

/** Classifies whatever pop-core, httpx or the socket threw. Only codes and IDs survive, never messages. */
export function toCloudError(api: string, e: unknown): CloudError {
  if (e instanceof CloudError) return e;
  if (!isObject(e)) return new CloudError(api, 'Unknown', false);
  const data = isObject(e.data) ? e.data : isObject(e.result) ? e.result : undefined;
  const requestId = typeof data?.RequestId === 'string' ? data.RequestId : typeof data?.requestId === 'string' ? data.requestId : undefined;
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (typeof e.code === 'string' && data) return new CloudError(api, e.code, RETRYABLE_CODES.test(e.code), requestId, status, deniedAction(data));
  if (e.name === 'RequestTimeoutError' || e.code === 'ETIMEDOUT' || e.name === 'AbortError') return new CloudError(api, 'Timeout', true);
  if (typeof e.code === 'string' && /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|EPIPE|UND_ERR)/.test(e.code)) {
    return new CloudError(api, 'Unreachable', true);
  }
  // A non-JSON body (a proxy's HTML error page, a truncated reply): treat like a 5xx.
  if (e instanceof SyntaxError) return new CloudError(api, 'BadResponse', true);
  return new CloudError(api, typeof e.code === 'string' ? e.code : 'Unknown', false, requestId, status);
}
