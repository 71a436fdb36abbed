// toCloudError: what each kind of failure (pop-core's coded errors, socket errors, timeouts, bodies that are not
// JSON, anything else) becomes, field by field. The module is loaded per test so its load-time patterns count.
import { beforeEach, describe, expect, it, vi } from 'vitest';

type Errors = typeof import('../../src/cloud/errors.js');
let errors: Errors;

beforeEach(async () => {
  vi.resetModules();
  errors = await import('../../src/cloud/errors.js');
});

const fields = (e: InstanceType<Errors['CloudError']>) => ({
  name: e.name,
  message: e.message,
  api: e.api,
  code: e.code,
  retryable: e.retryable,
  requestId: e.requestId,
  httpStatus: e.httpStatus,
  deniedAction: e.deniedAction,
});
const classify = (e: unknown) => fields(errors.toCloudError('AssumeRole', e));
const plain = (code: string, retryable: boolean) => ({
  name: 'CloudError',
  message: `AssumeRole failed: ${code}`,
  api: 'AssumeRole',
  code,
  retryable,
  requestId: undefined,
  httpStatus: undefined,
  deniedAction: undefined,
});

describe('CloudError', () => {
  it('names the API, the code and the request ID in its message, and nothing else', () => {
    const e = new errors.CloudError('GetAuthorizationToken', 'NoPermission', false, 'REQ-1', 403, 'cr:GetAuthorizationToken');
    expect(e).toBeInstanceOf(Error);
    expect(fields(e)).toEqual({
      name: 'CloudError',
      message: 'GetAuthorizationToken failed: NoPermission (request REQ-1)',
      api: 'GetAuthorizationToken',
      code: 'NoPermission',
      retryable: false,
      requestId: 'REQ-1',
      httpStatus: 403,
      deniedAction: 'cr:GetAuthorizationToken',
    });
    expect(new errors.CloudError('AssumeRole', 'Throttling.User', true).message).toBe('AssumeRole failed: Throttling.User');
  });
});

describe('toCloudError', () => {
  it('passes a CloudError through as it is', () => {
    const e = new errors.CloudError('AssumeRole', 'InternalError', true, 'REQ-2', 500);
    expect(errors.toCloudError('Other', e)).toBe(e);
  });

  it('a thrown non-object is Unknown and not retried', () => {
    expect(classify(null)).toEqual(plain('Unknown', false));
    expect(classify(undefined)).toEqual(plain('Unknown', false));
    expect(classify('boom')).toEqual(plain('Unknown', false));
  });

  it('a service error keeps its code, request ID (either spelling), HTTP status; retryable by code prefix', () => {
    expect(classify({ code: 'NoPermission', statusCode: 403, data: { RequestId: 'REQ-3', Message: 'secret text' } })).toEqual({
      ...plain('NoPermission', false),
      message: 'AssumeRole failed: NoPermission (request REQ-3)',
      requestId: 'REQ-3',
      httpStatus: 403,
    });
    // ROA (CR Personal Edition) errors put the body under `result`, with a lower-case requestId.
    expect(classify({ code: 'Throttling.User', statusCode: '400', result: { requestId: 'req-4' } })).toEqual({
      ...plain('Throttling.User', true),
      message: 'AssumeRole failed: Throttling.User (request req-4)',
      requestId: 'req-4',
    });
    expect(classify({ code: 'ServiceUnavailableTemporary', data: {} }).retryable).toBe(true);
    expect(classify({ code: 'internalerror', data: {} }).retryable).toBe(true);
    // Only a code that starts like a retryable one is retried.
    expect(classify({ code: 'Forbidden.Throttling', data: {} })).toEqual(plain('Forbidden.Throttling', false));
    expect(classify({ code: 'Forbidden.RAM', data: { RequestId: 7, requestId: 8 } })).toEqual(plain('Forbidden.RAM', false));
  });

  it('keeps a well-formed RAM AuthAction from AccessDeniedDetail, nothing else', () => {
    const action = (AuthAction: unknown) => errors.toCloudError('AssumeRole', { code: 'NoPermission', data: { AccessDeniedDetail: { AuthAction } } }).deniedAction;
    expect(action('sts:AssumeRole')).toBe('sts:AssumeRole');
    expect(action('cr:GetAuthorizationToken')).toBe('cr:GetAuthorizationToken');
    expect(action('cr:*')).toBe('cr:*');
    expect(action('ab:X')).toBe('ab:X');
    expect(action('abcdefghijklmnopqrst:AssumeRole')).toBe('abcdefghijklmnopqrst:AssumeRole');
    expect(action(`sts:${'A'.repeat(80)}`)).toBe(`sts:${'A'.repeat(80)}`);
    expect(action('s:AssumeRole')).toBeUndefined();
    expect(action('abcdefghijklmnopqrstu:AssumeRole')).toBeUndefined();
    expect(action(`sts:${'A'.repeat(81)}`)).toBeUndefined();
    expect(action('Use sts:AssumeRole')).toBeUndefined();
    expect(action('sts:AssumeRole now')).toBeUndefined();
    expect(action('sts:Assume-Role')).toBeUndefined();
    expect(action('AssumeRole')).toBeUndefined();
    expect(action(['sts:AssumeRole'])).toBeUndefined();
    expect(action(undefined)).toBeUndefined();
    expect(errors.toCloudError('AssumeRole', { code: 'NoPermission', data: { AccessDeniedDetail: 'sts:AssumeRole' } }).deniedAction).toBeUndefined();
  });

  it('timeouts of any kind are Timeout, retryable, without the original code', () => {
    expect(classify({ name: 'RequestTimeoutError', code: 'X' })).toEqual(plain('Timeout', true));
    expect(classify({ code: 'ETIMEDOUT' })).toEqual(plain('Timeout', true));
    expect(classify({ name: 'AbortError' })).toEqual(plain('Timeout', true));
  });

  it('socket failures are Unreachable and retryable; other codes without a body are kept, not retried', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'UND_ERR_SOCKET']) {
      expect(classify({ code, statusCode: 502 })).toEqual(plain('Unreachable', true));
    }
    expect(classify({ code: 'ERR_XECONNRESET' })).toEqual(plain('ERR_XECONNRESET', false));
    expect(classify({ code: ['ECONNREFUSED'] })).toEqual(plain('Unknown', false));
    expect(classify({ code: 'ERR_TLS_CERT_ALTNAME_INVALID', statusCode: 495 })).toEqual({ ...plain('ERR_TLS_CERT_ALTNAME_INVALID', false), httpStatus: 495 });
  });

  it('a body that is not JSON is BadResponse, retryable', () => {
    expect(classify(new SyntaxError('Unexpected token < in JSON'))).toEqual(plain('BadResponse', true));
  });

  it('an object without a string code is Unknown, not retried', () => {
    expect(classify({})).toEqual(plain('Unknown', false));
    expect(classify(new TypeError('x is not a function'))).toEqual(plain('Unknown', false));
    expect(classify({ code: 403, statusCode: 403, data: { RequestId: 'REQ-5' } })).toEqual({
      ...plain('Unknown', false),
      message: 'AssumeRole failed: Unknown (request REQ-5)',
      requestId: 'REQ-5',
      httpStatus: 403,
    });
  });
});
