import PopCore from '@alicloud/pop-core';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createOidcSigningKey, makeOidcToken } from '../../emulator/oidc.js';
import { startEmulator } from '../../emulator/server.js';
import {
  ACCT_A,
  ACCT_B,
  EXTERNAL_ROLE,
  fromSts,
  INSTANCE_B1,
  KEYS,
  OIDC_ISSUER,
  OIDC_KEY,
  OIDC_PROVIDER,
  OIDC_ROLE,
  OIDC_SUBJECT,
  SERVICE_ROLE,
  UNTRUSTING_ROLE,
  USER_ROLE,
  assumeRole,
  crClient,
  post,
  rpcError,
  stsClient,
  testWorld,
} from './fixture.js';

const world = testWorld();
const emu = await startEmulator({ world });
afterAll(() => emu.close());
beforeEach(() => emu.reset());

const sts = stsClient(emu, KEYS.ci);
const assume = (params: Record<string, unknown>) => post(sts, 'AssumeRole', { RoleSessionName: 'sess', ...params });

describe('AssumeRole', () => {
  it('runs the two-hop chain into another account and gets a registry token there', async () => {
    const first = await post<Record<string, any>>(sts, 'AssumeRole', { RoleArn: SERVICE_ROLE, RoleSessionName: 'hop-1' });
    expect(first.RequestId).toMatch(/^[0-9A-F-]{36}$/);
    expect(first.AssumedRoleUser).toEqual({
      Arn: `acs:ram::${ACCT_A}:role/servicerole/hop-1`,
      AssumedRoleId: expect.stringMatching(/^\d{17,19}:hop-1$/),
    });
    const c1 = first.Credentials;
    expect(c1.AccessKeyId).toMatch(/^STS\.[A-Za-z0-9]{28}$/);
    expect(c1.Expiration).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Date.parse(c1.Expiration) - Date.now()).toBeGreaterThan(3590_000);
    expect(Date.parse(c1.Expiration) - Date.now()).toBeLessThanOrEqual(3600_000);

    const second = await post<Record<string, any>>(stsClient(emu, fromSts(c1)), 'AssumeRole', {
      RoleArn: USER_ROLE,
      RoleSessionName: 'hop-2',
      DurationSeconds: 900,
    });
    expect(second.AssumedRoleUser.Arn).toBe(`acs:ram::${ACCT_B}:role/user-role/hop-2`);
    const c2 = second.Credentials;
    expect(Date.parse(c2.Expiration) - Date.now()).toBeLessThanOrEqual(900_000);

    const token = await post<Record<string, any>>(crClient(emu, 'cn-beijing', fromSts(c2)), 'GetAuthorizationToken', { InstanceId: INSTANCE_B1 });
    expect(token).toMatchObject({ Code: 'success', IsSuccess: true, TempUsername: 'cr_temp_user' });
    // Capped by the 900 s session, not the 1 h token lifetime.
    expect(token.ExpireTime).toBe(Date.parse(c2.Expiration));
    expect(emu.state.registryTokens.get(token.AuthorizationToken)).toMatchObject({
      instanceId: INSTANCE_B1,
      accountId: ACCT_B,
      principal: `acs:ram::${ACCT_B}:role/user-role/hop-2`,
    });

    expect(emu.calls.byAction()).toEqual({ AssumeRole: 2, GetAuthorizationToken: 1 });
    expect(emu.calls.count({ caller: KEYS.ci.accessKeyId })).toBe(1);
    expect(emu.calls.count({ caller: c1.AccessKeyId })).toBe(1);
    expect(emu.calls.count({ caller: `acs:ram::${ACCT_A}:role/servicerole/hop-1` })).toBe(1);
  });

  it('matches role names case-insensitively, like RAM', async () => {
    const c = await assumeRole(emu, KEYS.ci, `acs:ram::${ACCT_A}:role/SERVICEROLE`);
    expect(c.AccessKeyId).toMatch(/^STS\./);
  });

  it('also works with GET (everything in the query string)', async () => {
    const res = await sts.request<Record<string, any>>('AssumeRole', { RoleArn: SERVICE_ROLE, RoleSessionName: 'via-get' }, { timeout: 5000 });
    expect(res.Credentials.SecurityToken).toMatch(/^CAIS/);
  });

  it('answers GetCallerIdentity for users and sessions', async () => {
    expect(await post(sts, 'GetCallerIdentity')).toMatchObject({ AccountId: ACCT_A, IdentityType: 'RAMUser', Arn: `acs:ram::${ACCT_A}:user/ci` });
    const c = await assumeRole(emu, KEYS.ci, SERVICE_ROLE);
    expect(await post(stsClient(emu, fromSts(c)), 'GetCallerIdentity')).toMatchObject({ IdentityType: 'AssumedRoleUser', AccountId: ACCT_A });
  });

  it('refuses a role whose trust policy does not name the caller', async () => {
    const err = await rpcError(assume({ RoleArn: UNTRUSTING_ROLE }), 'NoPermission', 403);
    expect(err.data.Message).toBe('No permission perform sts:AssumeRole on this Role');
    // user-role trusts the service role only, not users of its account.
    await rpcError(assume({ RoleArn: USER_ROLE }), 'NoPermission', 403);
  });

  it('refuses callers without sts:AssumeRole and root accounts', async () => {
    const err = await rpcError(post(stsClient(emu, KEYS.noPerm), 'AssumeRole', { RoleArn: SERVICE_ROLE, RoleSessionName: 's1' }), 'NoPermission', 403);
    expect(err.data.Message).toMatch(/should be authorized by RAM/);
    expect(err.data.AccessDeniedDetail).toMatchObject({ AuthAction: 'sts:AssumeRole', NoPermissionType: 'ImplicitDeny' });
    const root = await rpcError(post(stsClient(emu, KEYS.root), 'AssumeRole', { RoleArn: SERVICE_ROLE, RoleSessionName: 's1' }), 'NoPermission', 403);
    expect(root.data.Message).toBe('Roles may not be assumed by root accounts.');
  });

  it('validates RoleArn, RoleSessionName and DurationSeconds', async () => {
    await rpcError(assume({ RoleArn: 'acs:ram::123:user/x' }), 'InvalidParameter.RoleArn', 400);
    await rpcError(assume({ RoleArn: `acs:ram::${ACCT_A}:role/no_underscore` }), 'InvalidParameter.RoleArn', 400);
    await rpcError(assume({ RoleArn: `acs:ram::${ACCT_A}:role/missing` }), 'EntityNotExist.Role', 404);
    for (const name of ['a', 'has space', 'x'.repeat(65), 'semi;colon']) {
      await rpcError(assume({ RoleArn: SERVICE_ROLE, RoleSessionName: name }), 'InvalidParameter.RoleSessionName', 400);
    }
    await assume({ RoleArn: SERVICE_ROLE, RoleSessionName: 'ok.name@x_y-z' });
    await rpcError(assume({ RoleArn: SERVICE_ROLE, DurationSeconds: 899 }), 'InvalidParameter.DurationSeconds', 400);
    await rpcError(assume({ RoleArn: SERVICE_ROLE, DurationSeconds: '1h' }), 'InvalidParameter.DurationSeconds', 400);
    // ServiceRole allows 7200; 7201 is over its max.
    const over = await rpcError(assume({ RoleArn: SERVICE_ROLE, DurationSeconds: 7201 }), 'InvalidParameter.DurationSeconds', 400);
    expect(over.data.Message).toBe('The Min/Max value of DurationSeconds is 15min/2hr.');
    const ok = await assume({ RoleArn: SERVICE_ROLE, DurationSeconds: 7200 });
    expect(Date.parse((ok as any).Credentials.Expiration) - Date.now()).toBeGreaterThan(7190_000);
    await rpcError(assume({ RoleArn: SERVICE_ROLE, Policy: '{not json' }), 'InvalidParameter.PolicyGrammar', 400);
  });

  it('reports missing required parameters', async () => {
    await rpcError(post(sts, 'AssumeRole', { RoleSessionName: 'x1' }), 'MissingRoleArn', 400);
    await rpcError(post(sts, 'AssumeRole', { RoleArn: SERVICE_ROLE }), 'MissingRoleSessionName', 400);
  });

  it('requires the ExternalId the trust policy names (and decodes + and = intact)', async () => {
    await rpcError(assume({ RoleArn: EXTERNAL_ROLE }), 'NoPermission', 403);
    await rpcError(assume({ RoleArn: EXTERNAL_ROLE, ExternalId: 'ext-id=1' }), 'NoPermission', 403);
    // A space is outside the ExternalId alphabet: a '+' decoded as space would land here.
    await rpcError(assume({ RoleArn: EXTERNAL_ROLE, ExternalId: 'ext id=1' }), 'InvalidParameter.ExternalId', 400);
    await rpcError(assume({ RoleArn: EXTERNAL_ROLE, ExternalId: 'x' }), 'InvalidParameter.ExternalId', 400);
    const res = await assume({ RoleArn: EXTERNAL_ROLE, ExternalId: 'ext+id=1' });
    expect(res).toHaveProperty('Credentials');
  });

  it('lets expired session credentials fail on their next use', async () => {
    const c = await assumeRole(emu, KEYS.ci, SERVICE_ROLE, { DurationSeconds: 900 });
    emu.clock.advance(901_000);
    await rpcError(post(stsClient(emu, fromSts(c)), 'AssumeRole', { RoleArn: USER_ROLE, RoleSessionName: 'late' }), 'InvalidSecurityToken.Expired', 400);
  });
});

describe('AssumeRoleWithOIDC', () => {
  const anonymous = new PopCore({
    endpoint: emu.stsEndpoint,
    apiVersion: '2015-04-01',
    credentialsProvider: { getCredentials: async () => ({}) },
  });
  const jwt = (over: Partial<{ iss: string; sub: string; aud: string | string[]; exp: number }> = {}) =>
    makeOidcToken({ iss: OIDC_ISSUER, sub: OIDC_SUBJECT, aud: 'sts.aliyuncs.com', exp: Math.floor(Date.now() / 1000) + 3600, ...over }, OIDC_KEY);
  const withOidc = (params: Record<string, unknown>) =>
    post<Record<string, any>>(anonymous, 'AssumeRoleWithOIDC', {
      OIDCProviderArn: OIDC_PROVIDER,
      RoleArn: OIDC_ROLE,
      RoleSessionName: 'rrsa',
      OIDCToken: jwt(),
      ...params,
    });

  it('issues credentials for a valid unsigned request and they chain on', async () => {
    const res = await withOidc({});
    expect(res.OIDCTokenInfo).toMatchObject({ Subject: OIDC_SUBJECT, Issuer: OIDC_ISSUER, ClientIds: 'sts.aliyuncs.com' });
    expect(res.AssumedRoleUser.Arn).toBe(`acs:ram::${ACCT_A}:role/oidc-role/rrsa`);
    const next = await assumeRole(emu, fromSts(res.Credentials), SERVICE_ROLE);
    expect(next.AccessKeyId).toMatch(/^STS\./);
    expect(emu.calls.count({ action: 'AssumeRoleWithOIDC', caller: 'anonymous' })).toBe(0);
    expect(emu.calls.byCaller().anonymous).toBe(1);
  });

  it('checks provider, issuer, audience, subject and expiry', async () => {
    await rpcError(withOidc({ OIDCProviderArn: `acs:ram::${ACCT_A}:oidc-provider/other` }), 'AuthenticationFail.NoPermission', 401);
    await rpcError(withOidc({ OIDCToken: jwt({ iss: 'https://evil.example' }) }), 'AuthenticationFail.OIDCToken.IssuerNotMatch', 401);
    await rpcError(withOidc({ OIDCToken: jwt({ aud: ['someone-else'] }) }), 'AuthenticationFail.OIDCToken.AudienceNotMatch', 401);
    await rpcError(withOidc({ OIDCToken: jwt({ sub: 'system:serviceaccount:ns:other' }) }), 'AuthenticationFail.NoPermission', 401);
    await rpcError(withOidc({ OIDCToken: 'not-a-jwt' }), 'AuthenticationFail.OIDCToken.Invalid', 401);
    await rpcError(withOidc({ OIDCToken: jwt({ exp: Math.floor(Date.now() / 1000) - 1 }) }), 'AuthenticationFail.OIDCToken.Expired', 401);
    // The service clock decides expiry.
    const token = jwt({ exp: Math.floor(Date.now() / 1000) + 600 });
    emu.clock.advance(601_000);
    await rpcError(withOidc({ OIDCToken: token }), 'AuthenticationFail.OIDCToken.Expired', 401);
    // A role that does not trust the provider.
    await rpcError(withOidc({ RoleArn: SERVICE_ROLE }), 'AuthenticationFail.NoPermission', 401);
  });

  it('verifies the signature against the provider JWKS before looking at any claim', async () => {
    const claims = { iss: OIDC_ISSUER, sub: OIDC_SUBJECT, aud: 'sts.aliyuncs.com', exp: Math.floor(Date.now() / 1000) + 3600 };
    const invalid = async (token: string) => {
      const e = await rpcError(withOidc({ OIDCToken: token }), 'AuthenticationFail.OIDCToken.Invalid', 401);
      return e.data.Message;
    };
    // Same kid, another key: a forger who knows the kid.
    const forged = makeOidcToken(claims, { ...createOidcSigningKey(OIDC_KEY.kid), kid: OIDC_KEY.kid });
    expect(await invalid(forged)).toBe('The signature of the Jwt is invalid.');
    // Claims changed after signing (even a wrong issuer is reported as a bad signature, not as IssuerNotMatch).
    const [h, , sig] = jwt().split('.');
    const payload = Buffer.from(JSON.stringify({ ...claims, iss: 'https://evil.example', sub: 'system:serviceaccount:ns:admin' })).toString('base64url');
    expect(await invalid(`${h}.${payload}.${sig}`)).toBe('The signature of the Jwt is invalid.');
    // A kid the provider does not publish, an unsigned token, a symmetric algorithm.
    expect(await invalid(makeOidcToken(claims, { ...OIDC_KEY, kid: 'rotated-away' }))).toBe('The signature of the Jwt is invalid.');
    expect(await invalid(`${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`)).toBe('The signature of the Jwt is invalid.');
    const none = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
    expect(await invalid(`${none}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`)).toMatch(/algorithm none .* unknown/);
    const hs = Buffer.from(JSON.stringify({ alg: 'HS256', kid: OIDC_KEY.kid })).toString('base64url');
    expect(await invalid(`${hs}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`)).toMatch(/algorithm HS256/);
    // Not valid before a time well ahead.
    expect(await invalid(makeOidcToken({ ...claims, nbf: Math.floor(Date.now() / 1000) + 600 }, OIDC_KEY))).toBe('The Jwt is not yet valid.');
  });

  it('accepts RS256 tokens from a key the provider publishes next to others (key rotation)', async () => {
    const rsa = createOidcSigningKey('rsa-2', 'RS256');
    const provider = world.accounts[0]!.oidcProviders![0]!;
    provider.jwks.keys.push(rsa.jwk);
    try {
      const token = makeOidcToken({ iss: OIDC_ISSUER, sub: OIDC_SUBJECT, aud: ['other', 'sts.aliyuncs.com'], exp: Math.floor(Date.now() / 1000) + 600 }, rsa);
      const res = await withOidc({ OIDCToken: token });
      expect(res.Credentials.AccessKeyId).toMatch(/^STS\./);
    } finally {
      provider.jwks.keys.pop();
    }
  });

  it("checks the trust policy's oidc:aud condition", async () => {
    const role = world.accounts[0]!.roles!.find((r) => r.name === 'oidc-role')!;
    const trust = role.trust;
    role.trust = [{ oidcProvider: OIDC_PROVIDER, subjects: [OIDC_SUBJECT], audiences: ['acr-credential-provider'] }];
    try {
      await rpcError(withOidc({}), 'AuthenticationFail.NoPermission', 401);
      world.accounts[0]!.oidcProviders![0]!.clientIds.push('acr-credential-provider');
      const token = makeOidcToken({ iss: OIDC_ISSUER, sub: OIDC_SUBJECT, aud: 'acr-credential-provider', exp: Math.floor(Date.now() / 1000) + 600 }, OIDC_KEY);
      expect((await withOidc({ OIDCToken: token })).OIDCTokenInfo.ClientIds).toBe('acr-credential-provider');
    } finally {
      role.trust = trust;
      world.accounts[0]!.oidcProviders![0]!.clientIds.pop();
    }
  });

  it('is the only STS action served unsigned', async () => {
    await rpcError(post(anonymous, 'AssumeRole', { RoleArn: SERVICE_ROLE, RoleSessionName: 'x1' }), 'MissingAccessKeyId', 400);
  });
});
