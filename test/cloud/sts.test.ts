// STS answers as the client reads them, from a loopback stub that answers what each test scripts: a session is
// taken only with all three keys and a parseable Expiration, a caller identity only with all three fields; anything
// less is a retryable BadResponse naming the API and the request. And the RoleSessionName's character and length rules.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CloudCaller } from '../../src/cloud/rpc.js';
import { assumeRole, assumeRoleWithOidc, getCallerIdentity, roleSessionName } from '../../src/cloud/sts.js';

let server: Server;
let endpoint = '';
let body: unknown = {};
let requests = 0;
let caller: CloudCaller;
const KEYS = { accessKeyId: 'LTAI-test', accessKeySecret: 'test-secret' };
const CREDS = { AccessKeyId: 'STS.AK', AccessKeySecret: 'sts-secret', SecurityToken: 'sts-token', Expiration: '2030-01-02T03:04:05Z' };

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});
beforeEach(() => {
  caller = new CloudCaller({ backoffMs: 1 });
  requests = 0;
});
afterEach(() => caller.close());

const budget = () => ({ deadline: Date.now() + 10_000 });
const roleReq = { roleArn: 'acs:ram::1234567890123456:role/acr-pull', roleSessionName: 'acr-pull@team-a', durationSeconds: 3600 };
const oidcReq = { ...roleReq, oidcProviderArn: 'acs:ram::1234567890123456:oidc-provider/ack', oidcToken: 'eyJ.test.token' };

async function failure(p: Promise<unknown>) {
  try {
    await p;
  } catch (e) {
    const { name, message, code, retryable, requestId } = e as Record<string, unknown>;
    return { name, message, code, retryable, requestId };
  }
  throw new Error('expected a failure');
}

describe('sessions', () => {
  it('AssumeRole and AssumeRoleWithOIDC give the keys and the expiry in ms', async () => {
    body = { RequestId: 'R-1', Credentials: CREDS };
    const session = { accessKeyId: 'STS.AK', accessKeySecret: 'sts-secret', securityToken: 'sts-token', expiresAt: 1893553445000 };
    expect(await assumeRole(caller, endpoint, KEYS, roleReq, budget())).toEqual(session);
    expect(await assumeRoleWithOidc(caller, endpoint, oidcReq, budget())).toEqual(session);
  });

  const incomplete: [string, unknown][] = [
    ['no Credentials', { RequestId: 'R-2' }],
    ['no AccessKeyId', { RequestId: 'R-2', Credentials: { ...CREDS, AccessKeyId: '' } }],
    ['no AccessKeySecret', { RequestId: 'R-2', Credentials: { ...CREDS, AccessKeySecret: undefined } }],
    ['no SecurityToken', { RequestId: 'R-2', Credentials: { ...CREDS, SecurityToken: '' } }],
    ['no Expiration', { RequestId: 'R-2', Credentials: { ...CREDS, Expiration: undefined } }],
    ['an Expiration that is no date', { RequestId: 'R-2', Credentials: { ...CREDS, Expiration: 'soon' } }],
  ];
  for (const [what, answer] of incomplete) {
    it(`${what}: a retryable BadResponse of the API that was called, asked once`, async () => {
      body = answer;
      expect(await failure(assumeRole(caller, endpoint, KEYS, roleReq, budget()))).toEqual({
        name: 'CloudError',
        message: 'AssumeRole failed: BadResponse (request R-2)',
        code: 'BadResponse',
        retryable: true,
        requestId: 'R-2',
      });
      expect(await failure(assumeRoleWithOidc(caller, endpoint, oidcReq, budget()))).toEqual({
        name: 'CloudError',
        message: 'AssumeRoleWithOIDC failed: BadResponse (request R-2)',
        code: 'BadResponse',
        retryable: true,
        requestId: 'R-2',
      });
      expect(requests).toBe(2);
    });
  }
});

describe('GetCallerIdentity', () => {
  it('gives the account, ARN and identity type', async () => {
    body = { RequestId: 'R-3', AccountId: '1234567890123456', Arn: 'acs:ram::1234567890123456:user/ci', IdentityType: 'RAMUser', PrincipalId: 'p' };
    expect(await getCallerIdentity(caller, endpoint, KEYS, budget())).toEqual({ accountId: '1234567890123456', arn: 'acs:ram::1234567890123456:user/ci', identityType: 'RAMUser' });
  });

  for (const missing of ['AccountId', 'Arn', 'IdentityType']) {
    it(`without ${missing}: a retryable BadResponse`, async () => {
      const full: Record<string, string> = { RequestId: 'R-4', AccountId: '1234567890123456', Arn: 'acs:ram::1234567890123456:root', IdentityType: 'Account' };
      delete full[missing];
      body = full;
      expect(await failure(getCallerIdentity(caller, endpoint, KEYS, budget()))).toEqual({
        name: 'CloudError',
        message: 'GetCallerIdentity failed: BadResponse (request R-4)',
        code: 'BadResponse',
        retryable: true,
        requestId: 'R-4',
      });
    });
  }
});

describe('roleSessionName', () => {
  const hash = (s: string) => `h${s.length}abcdefghij`;
  it('replaces characters outside [A-Za-z0-9.@_-] with "-"', () => {
    expect(roleSessionName('team a/b:c', hash)).toBe('acr-pull@team-a-b-c');
    expect(roleSessionName('Team_1.x', hash)).toBe('acr-pull@Team_1.x');
  });

  it('keeps a name of exactly 64 characters; cuts a longer one to 55 and a hash of the requester', () => {
    const ns55 = 'n'.repeat(55);
    expect(roleSessionName(ns55, hash)).toBe(`acr-pull@${ns55}`);
    expect(roleSessionName(`${ns55}x`, hash)).toBe(`acr-pull@${'n'.repeat(46)}.h56abcde`);
  });
});
