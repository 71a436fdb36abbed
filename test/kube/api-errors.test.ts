// What a failed API call says in the log: enough to act on (status, errno, address, what to check), never a body.
import { describe, expect, it } from 'vitest';
import { apiFailure, describeApiError } from '../../src/kube/api-util.js';
import { describeError } from '../../src/pull-secrets/util.js';

const LIST = { verb: 'list', resource: 'secrets', method: 'GET', path: '/api/v1/secrets' } as const;
const refused = Object.assign(new Error('request to https://10.0.0.1:6443/api/v1/secrets?labelSelector=x failed, reason: connect ECONNREFUSED 10.0.0.1:6443'), {
  name: 'FetchError',
  type: 'system',
  code: 'ECONNREFUSED',
  errno: 'ECONNREFUSED',
  erroredSysCall: 'connect',
});
const forbidden = Object.assign(new Error('HTTP-Code: 403 Body: {...}'), { name: 'ApiException', code: 403, body: JSON.stringify({ kind: 'Status', reason: 'Forbidden', message: 'secrets is forbidden: User "x" cannot list' }) });

describe('API failure descriptions', () => {
  it('name the HTTP status and reason, or the network errno and system call, never the message or body', () => {
    expect(describeApiError(forbidden)).toBe('ApiException HTTP 403 Forbidden');
    expect(describeApiError(refused)).toBe('FetchError ECONNREFUSED (connect)');
    expect(describeError(refused)).toBe('FetchError ECONNREFUSED');
    expect(describeApiError(Object.assign(new Error('aborted'), { name: 'AbortError', type: 'aborted' }))).toBe('AbortError (timed out or aborted)');
    // A local configuration error says what it is; a parse error could quote the body: named only.
    expect(describeApiError(new Error('HTTP protocol is not allowed when skipTLSVerify is not set or false'))).toBe('Error: HTTP protocol is not allowed when skipTLSVerify is not set or false');
    expect(describeApiError(new SyntaxError('Unexpected token \'s\', "s3cr3t" is not valid JSON'))).toBe('SyntaxError');
  });

  it('say what to check: RBAC for 403, credentials for 401, the address for network errors, the CA for TLS', () => {
    const server = 'https://10.0.0.1:6443';
    expect(apiFailure(forbidden, LIST, server)).toEqual({
      call: 'list secrets (GET /api/v1/secrets)',
      status: 403,
      error: 'ApiException HTTP 403 Forbidden',
      server,
      check: 'check RBAC: the webhook\'s ServiceAccount may not list secrets; apply manifests/base/rbac.yaml (ClusterRole and Role acr-pull-webhook*), see manifests/README.md',
    });
    expect(apiFailure({ code: 401 }, LIST, server).check).toContain('rejected the webhook\'s credentials');
    const net = apiFailure(refused, LIST, server);
    expect(net.status).toBeUndefined();
    expect(net.check).toBe(`cannot reach the API server at ${server}: check the API server address (KUBERNETES_SERVICE_HOST/PORT in a Pod, the server in KUBECONFIG), DNS and network policies`);
    const tls = apiFailure(Object.assign(new Error('self-signed certificate'), { name: 'FetchError', code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), LIST, server);
    expect(tls.check).toContain('certificate');
    expect(tls.check).toContain('CA');
    expect(apiFailure({ code: 503 }, LIST, server).check).toBe(`the API server at ${server} answered HTTP 503; retrying`);
  });

  it('tell a timeout (no answer) from an answer the client could not read, and from a client refusing to send', () => {
    const server = 'https://10.0.0.1:6443';
    const unreachable = `cannot reach the API server at ${server}: check the API server address (KUBERNETES_SERVICE_HOST/PORT in a Pod, the server in KUBECONFIG), DNS and network policies`;
    expect(apiFailure(Object.assign(new Error('aborted'), { name: 'AbortError' }), LIST, server).check).toBe(unreachable);
    expect(apiFailure(Object.assign(new Error('aborted'), { name: 'FetchError', type: 'aborted' }), LIST, server)).toEqual({
      call: 'list secrets (GET /api/v1/secrets)',
      error: 'FetchError (timed out or aborted)',
      server,
      check: unreachable,
    });
    // undici's fetch: a TypeError whose cause has the errno code.
    expect(apiFailure(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } }), LIST, server).check).toBe(unreachable);
    const unreadable = `the API server at ${server} answered, but the Kubernetes client could not read the answer (an object it cannot parse, or a version it does not know): not a network problem; retrying`;
    expect(apiFailure(new TypeError("Cannot read properties of undefined (reading 'name')"), LIST, server)).toEqual({
      call: 'list secrets (GET /api/v1/secrets)',
      error: 'TypeError',
      server,
      check: unreadable,
    });
    expect(apiFailure(new SyntaxError('Unexpected token'), LIST, undefined).check).toBe(
      'the API server answered, but the Kubernetes client could not read the answer (an object it cannot parse, or a version it does not know): not a network problem; retrying',
    );
    const refusedToSend = 'the Kubernetes client refused the call before sending it: check the client configuration (KUBECONFIG, or the ServiceAccount files in a Pod) named in the error';
    expect(apiFailure(new Error('No active cluster!'), LIST, server)).toEqual({ call: 'list secrets (GET /api/v1/secrets)', error: 'Error: No active cluster!', server, check: refusedToSend });
    expect(apiFailure('thrown text', LIST, server).check).toBe(refusedToSend);
  });
});
