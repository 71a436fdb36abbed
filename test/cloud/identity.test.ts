// The webhook's own identity: the order of sources, and RRSA end to end through @alicloud/credentials against
// the emulator (behind an HTTPS front, since the library only speaks https to STS).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ECSRAMRoleCredentialsProvider, OIDCRoleArnCredentialsProvider } from '@alicloud/credentials';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { identityFromEnv, providerError } from '../../src/cloud/identity.js';
import { demoState, makeOidcToken, startEmulator, type DemoWorld, type Emulator } from '../../emulator/index.js';
import { ensureSelfSignedCert } from '../../src/standalone/self-signed.js';

describe('identity sources', () => {
  it('prefers AccessKey env, then RRSA, then the ECS RAM role', () => {
    expect(identityFromEnv({ ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 's', ALIBABA_CLOUD_ROLE_ARN: 'x' }).source).toBe('env (AccessKey)');
    expect(identityFromEnv({ ALIBABA_CLOUD_ACCESS_KEY_ID: 'STS.x', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 's', ALIBABA_CLOUD_SECURITY_TOKEN: 't' }).source).toBe('env (STS token)');
    expect(
      identityFromEnv({ ALIBABA_CLOUD_ROLE_ARN: 'acs:ram::1:role/r', ALIBABA_CLOUD_OIDC_PROVIDER_ARN: 'acs:ram::1:oidc-provider/p', ALIBABA_CLOUD_OIDC_TOKEN_FILE: '/t' }).source,
    ).toBe('rrsa (acs:ram::1:role/r)');
    expect(identityFromEnv({}).source).toBe('ecs-ram-role');
  });
});

/** What the library's providers send: method, URL and form body. */
interface SentRequest {
  method: string;
  host: string;
  path: string;
  bodyForm?: Record<string, string>;
}

/**
 * Answers the requests of every provider of `cls` built from now on (the library's providers take their HTTP
 * function from `this.doRequest`, set at construction and meant for mocking), recording them.
 */
function intercept(cls: unknown, answer: (req: SentRequest) => { status: number; body: string }): SentRequest[] {
  const sent: SentRequest[] = [];
  const proto = (cls as { prototype: Record<string, unknown> }).prototype;
  const original = proto.getCredentialsInternal as (this: unknown) => Promise<unknown>;
  vi.spyOn(proto as { getCredentialsInternal: () => Promise<unknown> }, 'getCredentialsInternal').mockImplementation(function (this: { doRequest: unknown }) {
    this.doRequest = async (req: SentRequest) => {
      sent.push({ method: req.method, host: req.host, path: req.path, ...(req.bodyForm ? { bodyForm: { ...req.bodyForm } } : {}) });
      const a = answer(req);
      return { statusCode: a.status, headers: {}, body: Buffer.from(a.body) };
    };
    return original.call(this);
  });
  return sent;
}

const IDENTITY_ENV = [
  'ALIBABA_CLOUD_ACCESS_KEY_ID',
  'ALIBABA_CLOUD_ACCESS_KEY_SECRET',
  'ALIBABA_CLOUD_SECURITY_TOKEN',
  'ALIBABA_CLOUD_ROLE_ARN',
  'ALIBABA_CLOUD_OIDC_PROVIDER_ARN',
  'ALIBABA_CLOUD_OIDC_TOKEN_FILE',
  'ALIBABA_CLOUD_ROLE_SESSION_NAME',
  'ALIBABA_CLOUD_ECS_METADATA',
  'ALIBABA_CLOUD_STS_REGION',
  'ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED',
  'ALIBABA_CLOUD_ECS_METADATA_DISABLED',
  'ALIBABA_CLOUD_IMDSV1_DISABLED',
];

/**
 * For each test of the calling describe block: the identity env blanked (the library falls back to process.env
 * for what it is not given: none of it may leak in from the machine) and a fresh directory, removed after with
 * the env stubs and the interceptions. The returned function gives the current test's directory.
 */
function blankEnvAndTmpdir(): () => string {
  let dir = '';
  beforeEach(() => {
    for (const name of IDENTITY_ENV) vi.stubEnv(name, '');
    dir = mkdtempSync(join(tmpdir(), 'identity-'));
  });
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });
  return () => dir;
}

describe('identity sources, what each one sends', () => {
  const dir = blankEnvAndTmpdir();

  it('an AccessKey needs both the ID and the secret; an RRSA role needs the role, the provider and the token file', () => {
    expect(identityFromEnv({ ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI' }).source).toBe('ecs-ram-role');
    expect(identityFromEnv({ ALIBABA_CLOUD_ACCESS_KEY_SECRET: 's' }).source).toBe('ecs-ram-role');
    const rrsa = { ALIBABA_CLOUD_ROLE_ARN: 'acs:ram::1:role/r', ALIBABA_CLOUD_OIDC_PROVIDER_ARN: 'acs:ram::1:oidc-provider/p', ALIBABA_CLOUD_OIDC_TOKEN_FILE: '/t' };
    for (const missing of Object.keys(rrsa)) {
      expect(identityFromEnv({ ...rrsa, [missing]: undefined }).source).toBe('ecs-ram-role');
    }
    expect(identityFromEnv({ ALIBABA_CLOUD_OIDC_TOKEN_FILE: '/t' }).source).toBe('ecs-ram-role');
  });

  it('env credentials carry the STS token only when there is one', async () => {
    vi.stubEnv('ALIBABA_CLOUD_ACCESS_KEY_ID', 'STS.NUexample');
    vi.stubEnv('ALIBABA_CLOUD_ACCESS_KEY_SECRET', 'env-secret');
    vi.stubEnv('ALIBABA_CLOUD_SECURITY_TOKEN', 'env-token');
    const withToken = await identityFromEnv(process.env).credentials();
    expect(withToken).toStrictEqual({ accessKeyId: 'STS.NUexample', accessKeySecret: 'env-secret', securityToken: 'env-token' });
    vi.stubEnv('ALIBABA_CLOUD_SECURITY_TOKEN', '');
    expect(await identityFromEnv(process.env).credentials()).toStrictEqual({ accessKeyId: 'STS.NUexample', accessKeySecret: 'env-secret' });
  });

  it('env credentials come from the env given, not process.env; one emptied later is EnvAccessKey.Missing', async () => {
    const env: NodeJS.ProcessEnv = { ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI-given', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'given-secret' };
    const id = identityFromEnv(env);
    expect(id.source).toBe('env (AccessKey)');
    expect(await id.credentials()).toStrictEqual({ accessKeyId: 'LTAI-given', accessKeySecret: 'given-secret' });
    env.ALIBABA_CLOUD_SECURITY_TOKEN = 'later-token';
    expect(await id.credentials()).toStrictEqual({ accessKeyId: 'LTAI-given', accessKeySecret: 'given-secret', securityToken: 'later-token' });
    for (const name of ['ALIBABA_CLOUD_ACCESS_KEY_SECRET', 'ALIBABA_CLOUD_ACCESS_KEY_ID']) {
      delete env[name];
      const e = await id.credentials().then(() => undefined, (x: unknown) => x as { name: string; code: string; retryable: boolean; message: string });
      expect({ name: e?.name, code: e?.code, retryable: e?.retryable, message: e?.message }).toEqual({ name: 'CloudError', code: 'EnvAccessKey.Missing', retryable: false, message: 'credentials failed: EnvAccessKey.Missing' });
    }
  });

  function rrsaEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const tokenFile = join(dir(), 'token');
    writeFileSync(tokenFile, 'oidc-token-text');
    return { ALIBABA_CLOUD_ROLE_ARN: 'acs:ram::1:role/webhook', ALIBABA_CLOUD_OIDC_PROVIDER_ARN: 'acs:ram::1:oidc-provider/ack', ALIBABA_CLOUD_OIDC_TOKEN_FILE: tokenFile, ...extra };
  }
  const stsAnswer = () => ({
    status: 200,
    body: JSON.stringify({ Credentials: { AccessKeyId: 'STS.rrsa', AccessKeySecret: 'rrsa-secret', SecurityToken: 'rrsa-token', Expiration: '2099-01-01T00:00:00Z' } }),
  });

  it('RRSA: AssumeRoleWithOIDC as session "acr-pull-webhook" unless ALIBABA_CLOUD_ROLE_SESSION_NAME names one', async () => {
    const sent = intercept(OIDCRoleArnCredentialsProvider, stsAnswer);
    const id = identityFromEnv(rrsaEnv());
    expect(id.source).toBe('rrsa (acs:ram::1:role/webhook)');
    expect(await id.credentials()).toStrictEqual({ accessKeyId: 'STS.rrsa', accessKeySecret: 'rrsa-secret', securityToken: 'rrsa-token' });
    await identityFromEnv(rrsaEnv({ ALIBABA_CLOUD_ROLE_SESSION_NAME: 'my-session' })).credentials();
    expect(sent.map((r) => [r.method, r.host, r.bodyForm?.RoleSessionName, r.bodyForm?.RoleArn, r.bodyForm?.OIDCToken])).toEqual([
      ['POST', 'sts.aliyuncs.com', 'acr-pull-webhook', 'acs:ram::1:role/webhook', 'oidc-token-text'],
      ['POST', 'sts.aliyuncs.com', 'my-session', 'acs:ram::1:role/webhook', 'oidc-token-text'],
    ]);
  });

  it('RRSA: an https STS override is used as the host; an http one is not (the library speaks https only)', async () => {
    const sent = intercept(OIDCRoleArnCredentialsProvider, stsAnswer);
    await identityFromEnv(rrsaEnv(), 'https://sts.private.example.test:8443/path').credentials();
    await identityFromEnv(rrsaEnv(), 'http://127.0.0.1:9/sts').credentials();
    await identityFromEnv(rrsaEnv()).credentials();
    expect(sent.map((r) => r.host)).toEqual(['sts.private.example.test:8443', 'sts.aliyuncs.com', 'sts.aliyuncs.com']);
  });

  const ecsAnswer = (req: SentRequest) =>
    req.method === 'PUT'
      ? { status: 200, body: 'metadata-token' }
      : req.path === '/latest/meta-data/ram/security-credentials/'
        ? { status: 200, body: 'role-from-metadata' }
        : { status: 200, body: JSON.stringify({ Code: 'Success', AccessKeyId: 'STS.ecs', AccessKeySecret: 'ecs-secret', SecurityToken: 'ecs-token', Expiration: '2099-01-01T00:00:00Z' }) };

  it('ECS RAM role: the role named by ALIBABA_CLOUD_ECS_METADATA, else the one the metadata service names', async () => {
    const sent = intercept(ECSRAMRoleCredentialsProvider, ecsAnswer);
    const named = identityFromEnv({ ALIBABA_CLOUD_ECS_METADATA: 'node-role' });
    expect(named.source).toBe('ecs-ram-role');
    expect(await named.credentials()).toStrictEqual({ accessKeyId: 'STS.ecs', accessKeySecret: 'ecs-secret', securityToken: 'ecs-token' });
    expect(sent.filter((r) => r.method === 'GET').map((r) => `${r.host}${r.path}`)).toEqual(['100.100.100.200/latest/meta-data/ram/security-credentials/node-role']);
    sent.length = 0;
    await identityFromEnv({}).credentials();
    expect(sent.filter((r) => r.method === 'GET').map((r) => r.path)).toEqual([
      '/latest/meta-data/ram/security-credentials/',
      '/latest/meta-data/ram/security-credentials/role-from-metadata',
    ]);
  });
});

describe("a provider's failure: a code and request ID, never the library's or the service's text", () => {
  const dir = blankEnvAndTmpdir();

  /** What credentials() rejected with: the fields a denial reads, and the error's own text. */
  async function failure(p: Promise<unknown>) {
    const e = await p.then(
      () => undefined,
      (x: unknown) => x as { name: string; code: string; requestId?: string; httpStatus?: number; retryable: boolean; message: string },
    );
    if (!e) throw new Error('expected a failure');
    return { name: e.name, code: e.code, requestId: e.requestId, httpStatus: e.httpStatus, retryable: e.retryable, message: e.message };
  }
  const rrsa = () => {
    writeFileSync(join(dir(), 'token'), 'oidc-token-text');
    return identityFromEnv({ ALIBABA_CLOUD_ROLE_ARN: 'acs:ram::1:role/webhook', ALIBABA_CLOUD_OIDC_PROVIDER_ARN: 'acs:ram::1:oidc-provider/ack', ALIBABA_CLOUD_OIDC_TOKEN_FILE: join(dir(), 'token') });
  };

  it('RRSA: STS\'s Code and RequestId from its reply; its Message stays out', async () => {
    const reply = { RequestId: '8E0A5F6B-3C2D-4E1F-9A8B-7C6D5E4F3A2B', Code: 'AuthenticationFail.NoPermission', Message: 'token oidc-token-text is not trusted' };
    intercept(OIDCRoleArnCredentialsProvider, () => ({ status: 403, body: JSON.stringify(reply) }));
    expect(await failure(rrsa().credentials())).toEqual({
      name: 'CloudError',
      code: 'AuthenticationFail.NoPermission',
      requestId: '8E0A5F6B-3C2D-4E1F-9A8B-7C6D5E4F3A2B',
      httpStatus: undefined,
      retryable: false,
      message: 'credentials failed: AuthenticationFail.NoPermission (request 8E0A5F6B-3C2D-4E1F-9A8B-7C6D5E4F3A2B)',
    });
  });

  it('RRSA: a throttled STS may be retried; a Code or RequestId that does not look like one is dropped', async () => {
    intercept(OIDCRoleArnCredentialsProvider, () => ({ status: 400, body: JSON.stringify({ Code: 'Throttling.User', RequestId: 'R-1' }) }));
    expect(await failure(rrsa().credentials())).toMatchObject({ code: 'Throttling.User', requestId: 'R-1', retryable: true });
    vi.restoreAllMocks();
    intercept(OIDCRoleArnCredentialsProvider, () => ({ status: 400, body: JSON.stringify({ Code: 'Bad code <b>', RequestId: 'id with spaces' }) }));
    expect(await failure(rrsa().credentials())).toEqual({ name: 'CloudError', code: 'Unknown', requestId: undefined, httpStatus: undefined, retryable: false, message: 'credentials failed: Unknown' });
  });

  it('RRSA: a reply that is not STS\'s JSON, or a 200 without credentials, is BadResponse', async () => {
    intercept(OIDCRoleArnCredentialsProvider, () => ({ status: 502, body: '<html>proxy error</html>' }));
    expect(await failure(rrsa().credentials())).toEqual({ name: 'CloudError', code: 'BadResponse', requestId: undefined, httpStatus: undefined, retryable: true, message: 'credentials failed: BadResponse' });
    vi.restoreAllMocks();
    intercept(OIDCRoleArnCredentialsProvider, () => ({ status: 200, body: JSON.stringify({ RequestId: 'R-2' }) }));
    expect(await failure(rrsa().credentials())).toMatchObject({ code: 'BadResponse', retryable: true });
  });

  it('RRSA: a reply of JSON null, or with a Code or RequestId that is no string, gives neither', async () => {
    intercept(OIDCRoleArnCredentialsProvider, () => ({ status: 400, body: 'null' }));
    expect(await failure(rrsa().credentials())).toEqual({ name: 'CloudError', code: 'Unknown', requestId: undefined, httpStatus: undefined, retryable: false, message: 'credentials failed: Unknown' });
    // A boolean and a number that would pass for a code and a request ID once turned into text.
    const e = providerError(new Error(`get sts token failed with OIDC: ${JSON.stringify({ Code: true, RequestId: 12345 })}`));
    expect({ code: e.code, requestId: e.requestId, retryable: e.retryable }).toEqual({ code: 'Unknown', requestId: undefined, retryable: false });
  });

  it("RRSA: STS's reply is read whole, across spaces and lines; Code and RequestId must look like one from end to end", () => {
    // What the library throws for a non-200 answer (oidc_role_arn.js): the prefix, then the body as it came.
    const sts = (reply: unknown, indent?: number) => providerError(new Error(`get sts token failed with OIDC: ${JSON.stringify(reply, null, indent)}`));
    const pretty = sts({ RequestId: 'B5C1-7E', Message: 'not trusted', Code: 'InvalidParameter.OIDCToken' }, 2);
    expect({ code: pretty.code, requestId: pretty.requestId, retryable: pretty.retryable }).toEqual({ code: 'InvalidParameter.OIDCToken', requestId: 'B5C1-7E', retryable: false });
    // Words ending in a code-like word, a code followed by more: not a code.
    expect(sts({ Code: 'Not a code' }).code).toBe('Unknown');
    expect(sts({ Code: 'Throttling <b>' }).code).toBe('Unknown');
    expect(sts({ Code: `A${'b'.repeat(99)}` }).code).toBe(`A${'b'.repeat(99)}`);
    expect(sts({ Code: `A${'b'.repeat(100)}` }).code).toBe('Unknown');
    expect(sts({ Code: 'X', RequestId: `${'A'.repeat(64)}` }).requestId).toBe('A'.repeat(64));
    expect(sts({ Code: 'X', RequestId: `${'A'.repeat(65)}` }).requestId).toBeUndefined();
    expect(sts({ Code: 'X', RequestId: '' }).requestId).toBeUndefined();
    // Retryable: the codes that start with Throttling, ServiceUnavailable or InternalError, not those that contain one.
    expect(['Throttling.User', 'ServiceUnavailable', 'InternalError', 'NoPermission.Throttling', 'Forbidden.ServiceUnavailable'].map((Code) => sts({ Code }).retryable)).toEqual([true, true, true, false, false]);
  });

  it('RRSA: a token file that is not there keeps its system code', async () => {
    const id = identityFromEnv({ ALIBABA_CLOUD_ROLE_ARN: 'acs:ram::1:role/webhook', ALIBABA_CLOUD_OIDC_PROVIDER_ARN: 'acs:ram::1:oidc-provider/ack', ALIBABA_CLOUD_OIDC_TOKEN_FILE: join(dir(), 'missing') });
    expect(await failure(id.credentials())).toMatchObject({ name: 'CloudError', code: 'ENOENT', message: 'credentials failed: ENOENT' });
  });

  it('ECS RAM role: no role attached, the named role not there, another status, a reply without credentials', async () => {
    const ecs = (answer: (req: SentRequest) => { status: number; body: string }) => {
      vi.restoreAllMocks();
      intercept(ECSRAMRoleCredentialsProvider, (req) => (req.method === 'PUT' ? { status: 200, body: 'metadata-token' } : answer(req)));
    };
    ecs(() => ({ status: 404, body: 'Not Found' }));
    expect(await failure(identityFromEnv({}).credentials())).toEqual({
      name: 'CloudError', code: 'EcsRamRole.NotAttached', requestId: undefined, httpStatus: 404, retryable: false, message: 'credentials failed: EcsRamRole.NotAttached',
    });
    ecs(() => ({ status: 404, body: 'Not Found' }));
    expect(await failure(identityFromEnv({ ALIBABA_CLOUD_ECS_METADATA: 'node-role' }).credentials())).toEqual({
      name: 'CloudError', code: 'EcsRamRole.NotFound', requestId: undefined, httpStatus: 404, retryable: false, message: 'credentials failed: EcsRamRole.NotFound',
    });
    ecs(() => ({ status: 500, body: 'AccessKeySecret: s3cr3t' }));
    const named = await failure(identityFromEnv({ ALIBABA_CLOUD_ECS_METADATA: 'node-role' }).credentials());
    expect(named).toEqual({ name: 'CloudError', code: 'EcsMetadata.BadStatus', requestId: undefined, httpStatus: 500, retryable: true, message: 'credentials failed: EcsMetadata.BadStatus' });
    ecs(() => ({ status: 403, body: 'forbidden' }));
    expect(await failure(identityFromEnv({}).credentials())).toMatchObject({ code: 'EcsMetadata.BadStatus', httpStatus: 403, retryable: false });
    ecs((req) => (req.path.endsWith('/') ? { status: 200, body: 'r' } : { status: 200, body: JSON.stringify({ Code: 'Failed', AccessKeyId: 'a', AccessKeySecret: 's3cr3t', SecurityToken: 't' }) }));
    expect(await failure(identityFromEnv({}).credentials())).toMatchObject({ code: 'BadResponse', retryable: true, message: 'credentials failed: BadResponse' });
  });

  it('ECS RAM role with IMDSv1 disabled: a refused session token is a metadata status, not Unknown', async () => {
    vi.stubEnv('ALIBABA_CLOUD_IMDSV1_DISABLED', 'true');
    try {
      for (const [status, retryable] of [[403, false], [503, true]] as const) {
        vi.restoreAllMocks();
        intercept(ECSRAMRoleCredentialsProvider, (req) => (req.method === 'PUT' ? { status, body: 'no token' } : { status: 200, body: 'r' }));
        expect(await failure(identityFromEnv({}).credentials())).toEqual({
          name: 'CloudError', code: 'EcsMetadata.BadStatus', requestId: undefined, httpStatus: status, retryable, message: 'credentials failed: EcsMetadata.BadStatus',
        });
      }
    } finally {
      vi.unstubAllEnvs();
    }
    expect(providerError(new Error('refresh failed: get metadata token failed with 403')).code).toBe('Unknown');
  });

  it("the library's texts are recognised only at the start of the message: one quoted inside another error's is not", () => {
    const wrapped = (text: string) => {
      const e = providerError(new Error(`refresh failed: ${text}`));
      return { code: e.code, httpStatus: e.httpStatus, retryable: e.retryable };
    };
    const unknown = { code: 'Unknown', httpStatus: undefined, retryable: false };
    expect(wrapped('get sts token failed with OIDC: {"Code":"Throttling.User"}')).toEqual(unknown);
    expect(wrapped('get role name failed: GET http://100.100.100.200/latest/meta-data/ram/security-credentials/ 404')).toEqual(unknown);
    expect(wrapped('get sts token failed, httpStatus: 500, message = x')).toEqual(unknown);
    expect(wrapped('get sts token failed')).toEqual(unknown);
    expect(wrapped('refresh Ecs sts token err, Code is not Success')).toEqual(unknown);
    // No role attached is a 404 as the last word of the role-name failure; a 404 earlier in it is not that status.
    const notLast = providerError(new Error('get role name failed: GET http://100.100.100.200/latest/meta-data/ram/security-credentials/ 404 503'));
    expect({ code: notLast.code, httpStatus: notLast.httpStatus, retryable: notLast.retryable }).toEqual({ code: 'EcsMetadata.BadStatus', httpStatus: 503, retryable: true });
  });

  it('anything else: classified by toCloudError, its text dropped', () => {
    expect(providerError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))).toMatchObject({ code: 'Unreachable', retryable: true });
    expect(providerError(Object.assign(new Error('ConnectTimeout: Connect http://100.100.100.200/ failed.'), { name: 'RequestTimeoutError' }))).toMatchObject({ code: 'Timeout', retryable: true });
    expect(providerError(new Error('unable to get credentials from enviroment variables')).message).toBe('credentials failed: Unknown');
    // An Error with a code of its own is classified by the code, whatever its text says.
    expect(providerError(Object.assign(new Error('get role name failed: GET x 404'), { code: 'EPIPE' }))).toMatchObject({ code: 'Unreachable' });
    expect(providerError('a string')).toMatchObject({ code: 'Unknown', retryable: false });
  });
});

describe('RRSA against the emulator', () => {
  let emu: Emulator;
  let world: DemoWorld;
  let front: Server;
  let dir: string;
  let port = 0;

  beforeAll(async () => {
    world = demoState();
    emu = await startEmulator({ world });
    dir = mkdtempSync(join(tmpdir(), 'rrsa-'));
    const tls = ensureSelfSignedCert(dir);
    // The library posts to https://<host>/; the emulator serves STS under /sts.
    front = createServer({ key: readFileSync(tls.keyFile), cert: readFileSync(tls.certFile) }, (req, res) => {
      const up = httpRequest(`${emu.url}/sts${req.url}`, { method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    const a = front.address();
    port = typeof a === 'object' && a ? a.port : 0;
  });
  afterAll(async () => {
    front.close();
    await emu.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('exchanges the OIDC token file for STS credentials of the role', async () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, makeOidcToken({ iss: world.demo.oidcIssuer, aud: world.demo.oidcAudience, sub: world.demo.oidcSubject, exp: Math.floor(Date.now() / 1000) + 3600 }, world.demo.oidcSigningKey));
    // A child process, so NODE_EXTRA_CA_CERTS can make the self-signed front trusted.
    const script = `
      import { identityFromEnv } from ${JSON.stringify(resolve('dist/src/cloud/identity.js'))};
      const id = identityFromEnv(process.env, 'https://localhost:${port}');
      const c = await id.credentials();
      console.log(JSON.stringify({ source: id.source, ak: c.accessKeyId, hasSecret: !!c.accessKeySecret, hasToken: !!c.securityToken }));`;
    // Asynchronous: the HTTPS front lives in this process and must keep answering.
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: {
        PATH: process.env.PATH,
        NODE_EXTRA_CA_CERTS: join(dir, 'tls.crt'),
        ALIBABA_CLOUD_ROLE_ARN: world.demo.serviceRoleArn,
        ALIBABA_CLOUD_OIDC_PROVIDER_ARN: world.demo.oidcProviderArn,
        ALIBABA_CLOUD_OIDC_TOKEN_FILE: tokenFile,
      },
      timeout: 15_000,
    });
    const r = { stdout: '', stderr: '' };
    child.stdout.on('data', (d) => (r.stdout += d));
    child.stderr.on('data', (d) => (r.stderr += d));
    await new Promise((done) => child.on('close', done));
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out).toEqual({ source: `rrsa (${world.demo.serviceRoleArn})`, ak: expect.stringMatching(/^STS\./), hasSecret: true, hasToken: true });
    expect(emu.calls.count({ action: 'AssumeRoleWithOIDC', code: '' })).toBe(1);
  });
});
