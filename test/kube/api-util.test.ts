// The helpers around client-node errors and fields: the HTTP status of an error, time fields, the API server's
// address, and the exact one-line description and hint of odd errors (no name, a body object, a thrown function).
import { describe, expect, it } from 'vitest';
import { apiFailure, apiServerOf, describeApiError, httpStatus, timeMs } from '../../src/kube/api-util.js';

const LIST = { verb: 'list', resource: 'pods', method: 'GET', path: '/api/v1/pods' } as const;
const SERVER = 'https://10.0.0.1:6443';
const REFUSED_TO_SEND = 'the Kubernetes client refused the call before sending it: check the client configuration (KUBECONFIG, or the ServiceAccount files in a Pod) named in the error';
const UNREACHABLE = `cannot reach the API server at ${SERVER}: check the API server address (KUBERNETES_SERVICE_HOST/PORT in a Pod, the server in KUBECONFIG), DNS and network policies`;

describe('httpStatus', () => {
  it('reads a numeric code or statusCode of an object, nothing else', () => {
    expect(httpStatus({ code: 409 })).toBe(409);
    expect(httpStatus({ statusCode: 410 })).toBe(410);
    expect(httpStatus({ statusCode: '500' })).toBeUndefined();
    expect(httpStatus({ code: 'ECONNREFUSED' })).toBeUndefined();
    // A thrown function is not an error object, whatever properties it carries.
    expect(httpStatus(Object.assign(() => undefined, { code: 404 }))).toBeUndefined();
    expect(httpStatus(null)).toBeUndefined();
  });
});

describe('timeMs', () => {
  it('parses an RFC 3339 string or a Date, and refuses anything else', () => {
    expect(timeMs('2024-01-02T03:04:05Z')).toBe(1704164645000);
    expect(timeMs(new Date(1704164645000))).toBe(1704164645000);
    expect(timeMs('')).toBeUndefined();
    expect(timeMs('not a time')).toBeUndefined();
    expect(timeMs(new Date(Number.NaN))).toBeUndefined();
    // Not strings, though their text is a time.
    expect(timeMs(['2024-01-02T03:04:05Z'])).toBeUndefined();
    expect(timeMs({ toString: () => '2024-01-02T03:04:05Z' })).toBeUndefined();
    expect(timeMs(undefined)).toBeUndefined();
  });
});

describe('apiServerOf', () => {
  it('gives the origin of the current cluster, or nothing without a cluster or a parsable address', () => {
    expect(apiServerOf({ getCurrentCluster: () => ({ server: 'https://10.0.0.1:6443/some/path?x=1' }) })).toBe('https://10.0.0.1:6443');
    expect(apiServerOf({ getCurrentCluster: () => null })).toBeUndefined();
    expect(apiServerOf({ getCurrentCluster: () => ({ server: '' }) })).toBeUndefined();
    expect(apiServerOf({ getCurrentCluster: () => ({ server: 'not a url' }) })).toBeUndefined();
  });
});

describe('describeApiError', () => {
  it('an HTTP error: the name (Error when it has none), the status and the reason from a JSON body or a Status object', () => {
    expect(describeApiError({ code: 500 })).toBe('Error HTTP 500');
    expect(describeApiError({ name: 5, code: 500 })).toBe('Error HTTP 500');
    expect(describeApiError({ name: 'ApiException', code: 404, body: { kind: 'Status', reason: 'NotFound' } })).toBe('ApiException HTTP 404 NotFound');
    expect(describeApiError({ name: 'ApiException', code: 404, body: { reason: 7 } })).toBe('ApiException HTTP 404');
    expect(describeApiError({ name: 'ApiException', code: 422, body: '{"reason":42}' })).toBe('ApiException HTTP 422');
    expect(describeApiError({ name: 'ApiException', code: 422, body: 'not json' })).toBe('ApiException HTTP 422');
  });

  it('a network error: the errno-style code (from code, errno or cause) and the system call', () => {
    expect(describeApiError({ name: 'FetchError', code: 'ECONNRESET' })).toBe('FetchError ECONNRESET');
    expect(describeApiError({ name: 'FetchError', code: 'ECONNREFUSED', syscall: 'connect' })).toBe('FetchError ECONNREFUSED (connect)');
    expect(describeApiError({ name: 'FetchError', code: 'ECONNREFUSED', erroredSysCall: 'connect', syscall: 'other' })).toBe('FetchError ECONNREFUSED (connect)');
    expect(describeApiError({ name: 'FetchError', code: 'ECONNREFUSED', syscall: 5 })).toBe('FetchError ECONNREFUSED');
    expect(describeApiError({ name: 'TypeError', cause: { code: 'ECONNRESET' } })).toBe('TypeError ECONNRESET');
    // Only an all-capitals code counts: not a number, not a phrase around one.
    expect(describeApiError({ name: 'FetchError', errno: 111 })).toBe('FetchError');
    expect(describeApiError({ name: 'FetchError', code: 'EAI_AGAIN later', errno: 'ENOTFOUND' })).toBe('FetchError ENOTFOUND');
    expect(describeApiError({ name: 'FetchError', code: 'see EAI_AGAIN', errno: 'ENOTFOUND' })).toBe('FetchError ENOTFOUND');
  });

  it('anything else: the text of a non-object, the message of a plain Error (at most 300 characters), else the name', () => {
    expect(describeApiError('thrown text')).toBe('thrown text');
    expect(describeApiError(null)).toBe('null');
    expect(describeApiError({ message: 42 })).toBe('Error');
    expect(describeApiError(new Error('x'.repeat(400)))).toBe(`Error: ${'x'.repeat(300)}`);
  });
});

describe('apiFailure', () => {
  it('404: no such resource; the status is a field only when there is one', () => {
    expect(apiFailure({ name: 'ApiException', code: 404 }, LIST, SERVER)).toStrictEqual({
      call: 'list pods (GET /api/v1/pods)',
      status: 404,
      error: 'ApiException HTTP 404',
      server: SERVER,
      check: `the API server at ${SERVER} has no such resource: check the API server address and version, and that the namespace exists`,
    });
    expect(apiFailure({ name: 'FetchError', code: 'ECONNRESET' }, LIST, undefined)).toStrictEqual({
      call: 'list pods (GET /api/v1/pods)',
      error: 'FetchError ECONNRESET',
      check: 'cannot reach the API server: check the API server address (KUBERNETES_SERVICE_HOST/PORT in a Pod, the server in KUBECONFIG), DNS and network policies',
    });
  });

  it('a thrown null or function is no network error, whatever it carries', () => {
    expect(apiFailure(null, LIST, SERVER)).toStrictEqual({ call: 'list pods (GET /api/v1/pods)', error: 'null', server: SERVER, check: REFUSED_TO_SEND });
    expect(apiFailure(Object.assign(() => undefined, { code: 'ECONNREFUSED' }), LIST, SERVER).check).toBe(REFUSED_TO_SEND);
    expect(apiFailure(Object.assign(() => undefined, { type: 'aborted' }), LIST, SERVER).check).toBe(REFUSED_TO_SEND);
    expect(apiFailure({ code: 'ECONNREFUSED' }, LIST, SERVER).check).toBe(UNREACHABLE);
  });
});
