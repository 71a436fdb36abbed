// Shared world and pop-core client helpers for the emulator tests.
import PopCore from '@alicloud/pop-core';
import { expect } from 'vitest';
import type { Emulator } from '../../emulator/server.js';
import type { WorldSpec } from '../../emulator/model.js';
import { createOidcSigningKey } from '../../emulator/oidc.js';

export const ACCT_A = '1111111111111111';
export const ACCT_B = '2222222222222222';
export const SERVICE_ROLE = `acs:ram::${ACCT_A}:role/ServiceRole`;
export const EXTERNAL_ROLE = `acs:ram::${ACCT_A}:role/external-role`;
export const OIDC_ROLE = `acs:ram::${ACCT_A}:role/oidc-role`;
export const USER_ROLE = `acs:ram::${ACCT_B}:role/user-role`;
export const UNTRUSTING_ROLE = `acs:ram::${ACCT_B}:role/untrusting`;
export const OIDC_PROVIDER = `acs:ram::${ACCT_A}:oidc-provider/ack`;
export const OIDC_ISSUER = 'https://oidc.example.test/cluster';
export const OIDC_SUBJECT = 'system:serviceaccount:ns:sa';
/** The fixture issuer's key: its public half is the provider's JWKS. */
export const OIDC_KEY = createOidcSigningKey('fixture-1');
export const INSTANCE_A1 = 'cri-aaaa000000000001';
export const INSTANCE_A2 = 'cri-aaaa000000000002';
export const INSTANCE_B1 = 'cri-bbbb000000000001';

export const KEYS = {
  ci: { accessKeyId: 'LTAI5tCiUserKey000000001', accessKeySecret: 'ci-secret-0000000000000000000' },
  noPerm: { accessKeyId: 'LTAI5tNoPermKey000000001', accessKeySecret: 'noperm-secret-00000000000000' },
  inactive: { accessKeyId: 'LTAI5tInactiveK000000001', accessKeySecret: 'inactive-secret-000000000000' },
  root: { accessKeyId: 'LTAI5tRootKey00000000001', accessKeySecret: 'root-secret-00000000000000000' },
};

export function testWorld(): WorldSpec {
  return {
    accounts: [
      {
        id: ACCT_A,
        rootAccessKeys: [{ id: KEYS.root.accessKeyId, secret: KEYS.root.accessKeySecret }],
        users: [
          { name: 'ci', accessKeys: [{ id: KEYS.ci.accessKeyId, secret: KEYS.ci.accessKeySecret }], permissions: { assumeRole: '*' } },
          { name: 'noperm', accessKeys: [{ id: KEYS.noPerm.accessKeyId, secret: KEYS.noPerm.accessKeySecret }] },
          {
            name: 'inactive',
            accessKeys: [{ id: KEYS.inactive.accessKeyId, secret: KEYS.inactive.accessKeySecret, status: 'Inactive' }],
            permissions: { assumeRole: '*' },
          },
        ],
        oidcProviders: [{ name: 'ack', issuer: OIDC_ISSUER, clientIds: ['sts.aliyuncs.com'], jwks: { keys: [OIDC_KEY.jwk] } }],
        roles: [
          {
            name: 'ServiceRole',
            maxSessionDuration: 7200,
            trust: [{ account: ACCT_A }],
            permissions: {
              assumeRole: '*',
              crGetAuthorizationToken: [INSTANCE_A1],
              crReadInstance: '*',
              crPersonalRegions: ['cn-hangzhou'],
            },
          },
          { name: 'external-role', trust: [{ account: ACCT_A, externalId: 'ext+id=1' }], permissions: {} },
          { name: 'oidc-role', trust: [{ oidcProvider: OIDC_PROVIDER, subjects: [OIDC_SUBJECT] }], permissions: { assumeRole: '*' } },
          { name: 'scoped-reader', trust: [{ account: ACCT_A }], permissions: { crReadInstance: [INSTANCE_A1] } },
        ],
      },
      {
        id: ACCT_B,
        roles: [
          {
            name: 'user-role',
            trust: [{ role: SERVICE_ROLE }],
            permissions: { crGetAuthorizationToken: '*', crReadInstance: '*', crPersonalRegions: '*' },
          },
          { name: 'untrusting', trust: [{ account: '9999999999999999' }] },
        ],
      },
    ],
    instances: [
      {
        id: INSTANCE_A1,
        name: 'alpha',
        region: 'cn-hangzhou',
        accountId: ACCT_A,
        customDomains: ['registry.example.com', 'mirror.example.org'],
        linkedVpcs: [{ vpcId: 'vpc-1', vswitchId: 'vsw-1', ip: '10.0.0.5' }],
      },
      { id: INSTANCE_A2, name: 'alpha-two', region: 'cn-hangzhou', accountId: ACCT_A },
      { id: INSTANCE_B1, name: 'beta', region: 'cn-beijing', accountId: ACCT_B },
    ],
    personalRegistries: [{ accountId: ACCT_A, region: 'cn-hangzhou' }],
  };
}

export interface Creds {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken?: string;
}

export interface StsCredentials {
  AccessKeyId: string;
  AccessKeySecret: string;
  SecurityToken: string;
  Expiration: string;
}

export const fromSts = (c: StsCredentials): Creds => ({
  accessKeyId: c.AccessKeyId,
  accessKeySecret: c.AccessKeySecret,
  securityToken: c.SecurityToken,
});

export function stsClient(emu: Emulator, creds: Creds): PopCore {
  return new PopCore({ endpoint: emu.stsEndpoint, apiVersion: '2015-04-01', ...creds });
}

export function crClient(emu: Emulator, region: string, creds: Creds): PopCore {
  return new PopCore({ endpoint: emu.crEndpoint(region), apiVersion: '2018-12-01', ...creds });
}

export function personalClient(emu: Emulator, region: string, creds: Creds): PopCore.ROAClient {
  return new PopCore.ROAClient({ endpoint: emu.crEndpoint(region), apiVersion: '2016-06-07', ...creds });
}

/** The way the webhook calls: POST form body. */
export function post<T = Record<string, unknown>>(client: PopCore, action: string, params: Record<string, unknown> = {}, timeout = 5000): Promise<T> {
  return client.request<T>(action, params, { method: 'POST', timeout });
}

export async function assumeRole(emu: Emulator, creds: Creds, roleArn: string, extra: Record<string, unknown> = {}): Promise<StsCredentials> {
  const res = await post<{ Credentials: StsCredentials }>(stsClient(emu, creds), 'AssumeRole', {
    RoleArn: roleArn,
    RoleSessionName: 'test-session',
    ...extra,
  });
  return res.Credentials;
}

interface PopRpcError {
  code: string;
  message: string;
  data: Record<string, unknown>;
  entry: { response: { statusCode: number } };
}

/** Awaits a pop-core RPC rejection and checks its JSON Code and HTTP status. */
export async function rpcError(promise: Promise<unknown>, code: string, status: number): Promise<PopRpcError> {
  const err = (await promise.then(
    () => {
      throw new Error(`expected ${code}, got success`);
    },
    (e: unknown) => e,
  )) as PopRpcError;
  expect(err).toBeInstanceOf(Error);
  expect({ code: err.code, status: err.entry?.response.statusCode }).toEqual({ code, status });
  return err;
}
