// Service-principal trust (roles built the way ECI's docs say), RAM-user trust, RAM GetRole and GetCallerIdentity.
import PopCore from '@alicloud/pop-core';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../../emulator/server.js';
import type { WorldSpec } from '../../emulator/model.js';
import { createOidcSigningKey } from '../../emulator/oidc.js';
import { assumeRole, fromSts, post, rpcError, stsClient } from './fixture.js';

const A = '1609982529000001';
const B = '1298452580000002';
const KEYS = {
  webhook: { accessKeyId: 'LTAI5tWebhookKey00000001', accessKeySecret: 'webhook-secret-000000000000000' },
  reader: { accessKeyId: 'LTAI5tReaderKey000000001', accessKeySecret: 'reader-secret-0000000000000000' },
  bare: { accessKeyId: 'LTAI5tBareKey00000000001', accessKeySecret: 'bare-secret-00000000000000000' },
};
const ECI_ROLE = `acs:ram::${A}:role/role-assume`;

function world(): WorldSpec {
  return {
    accounts: [
      {
        id: A,
        users: [
          { name: 'webhook', accessKeys: [{ id: KEYS.webhook.accessKeyId, secret: KEYS.webhook.accessKeySecret }], permissions: { assumeRole: '*', ramGetRole: '*' } },
          { name: 'reader', accessKeys: [{ id: KEYS.reader.accessKeyId, secret: KEYS.reader.accessKeySecret }], permissions: { assumeRole: '*' } },
          { name: 'bare', accessKeys: [{ id: KEYS.bare.accessKeyId, secret: KEYS.bare.accessKeySecret }] },
        ],
        oidcProviders: [{ name: 'ack-rrsa', issuer: 'https://oidc.example.test/c1', clientIds: ['sts.aliyuncs.com'], jwks: { keys: [createOidcSigningKey('c1').jwk] } }],
        roles: [
          // As ECI's docs create it: trusted entity "Alibaba Cloud Service", role type "Normal Service Role", service ECI.
          { name: 'role-assume', description: 'for ECI', trust: [{ service: 'eci.aliyuncs.com' }], permissions: { assumeRole: '*' } },
          { name: 'for-webhook-user', trust: [{ user: `acs:ram::${A}:user/webhook` }] },
          {
            name: 'both',
            trust: [{ service: 'eci.aliyuncs.com' }, { role: `acs:ram::${A}:role/for-webhook-user`, externalId: 'x-1' }, { oidcProvider: `acs:ram::${A}:oidc-provider/ack-rrsa`, subjects: ['system:serviceaccount:acr:webhook'] }],
          },
        ],
      },
      { id: B, roles: [{ name: 'elsewhere', trust: [{ account: A }] }] },
    ],
  };
}

const emu = await startEmulator({ world: world() });
afterAll(() => emu.close());
beforeEach(() => emu.reset());

const ram = (creds: { accessKeyId: string; accessKeySecret: string; securityToken?: string }) =>
  new PopCore({ endpoint: emu.ramEndpoint, apiVersion: '2015-05-01', ...creds });

describe('trust principals', () => {
  it('a role that trusts only the ECI service refuses every customer identity with NoPermission, without AccessDeniedDetail', async () => {
    const err = await rpcError(assumeRole(emu, KEYS.webhook, ECI_ROLE), 'NoPermission', 403);
    expect(err.data.AccessDeniedDetail).toBeUndefined();
    expect(err.message).toContain('No permission perform sts:AssumeRole on this Role');
    // A role session of the same account is refused the same way.
    const session = fromSts(await assumeRole(emu, KEYS.webhook, `acs:ram::${A}:role/for-webhook-user`));
    await rpcError(assumeRole(emu, session, ECI_ROLE), 'NoPermission', 403);
  });

  it('the caller’s own missing sts:AssumeRole is a NoPermission with AccessDeniedDetail naming the action', async () => {
    const err = await rpcError(assumeRole(emu, KEYS.bare, ECI_ROLE), 'NoPermission', 403);
    expect(err.data.AccessDeniedDetail).toMatchObject({ AuthAction: 'sts:AssumeRole', AuthPrincipalType: 'SubUser' });
  });

  it('a RAM-user principal admits that user only', async () => {
    await expect(assumeRole(emu, KEYS.webhook, `acs:ram::${A}:role/for-webhook-user`)).resolves.toMatchObject({ AccessKeyId: expect.stringMatching(/^STS\./) });
    await rpcError(assumeRole(emu, KEYS.reader, `acs:ram::${A}:role/for-webhook-user`), 'NoPermission', 403);
  });
});

describe('RAM GetRole', () => {
  it('shows the trust policy as RAM writes it: Service, RAM with ExternalId, Federated with oidc conditions', async () => {
    const res = await post<{ Role: Record<string, unknown> }>(ram(KEYS.webhook), 'GetRole', { RoleName: 'both' });
    expect(res.Role).toMatchObject({ RoleName: 'both', Arn: `acs:ram::${A}:role/both`, MaxSessionDuration: 3600, RoleId: expect.stringMatching(/^\d+$/) });
    expect(JSON.parse(res.Role.AssumeRolePolicyDocument as string)).toEqual({
      Version: '1',
      Statement: [
        { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: ['eci.aliyuncs.com'] } },
        { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { RAM: [`acs:ram::${A}:role/for-webhook-user`] }, Condition: { StringEquals: { 'sts:ExternalId': 'x-1' } } },
        {
          Action: 'sts:AssumeRole',
          Effect: 'Allow',
          Principal: { Federated: [`acs:ram::${A}:oidc-provider/ack-rrsa`] },
          Condition: { StringEquals: { 'oidc:iss': 'https://oidc.example.test/c1', 'oidc:aud': ['sts.aliyuncs.com'], 'oidc:sub': ['system:serviceaccount:acr:webhook'] } },
        },
      ],
    });
    const eci = await post<{ Role: { AssumeRolePolicyDocument: string; Description: string } }>(ram(KEYS.webhook), 'GetRole', { RoleName: 'ROLE-ASSUME' });
    expect(JSON.parse(eci.Role.AssumeRolePolicyDocument).Statement).toEqual([{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: ['eci.aliyuncs.com'] } }]);
    expect(eci.Role.Description).toBe('for ECI');
  });

  it('looks only in the caller’s account, needs ram:GetRole, and names missing parameters', async () => {
    await rpcError(post(ram(KEYS.webhook), 'GetRole', { RoleName: 'elsewhere' }), 'EntityNotExist.Role', 404);
    const denied = await rpcError(post(ram(KEYS.reader), 'GetRole', { RoleName: 'both' }), 'NoPermission', 403);
    expect(denied.data.AccessDeniedDetail).toMatchObject({ AuthAction: 'ram:GetRole' });
    await rpcError(post(ram(KEYS.webhook), 'GetRole', {}), 'MissingRoleName', 400);
    await rpcError(post(new PopCore({ endpoint: emu.ramEndpoint, apiVersion: '2015-04-01', ...KEYS.webhook }), 'GetRole', { RoleName: 'both' }), 'InvalidVersion', 400);
    expect(emu.calls.count({ product: 'ram', action: 'GetRole' })).toBe(4);
  });
});

describe('GetCallerIdentity', () => {
  it('reports a RAM user and a role session with the fields the API documents', async () => {
    const user = await post<Record<string, unknown>>(stsClient(emu, KEYS.webhook), 'GetCallerIdentity');
    expect(user).toMatchObject({ AccountId: A, Arn: `acs:ram::${A}:user/webhook`, IdentityType: 'RAMUser', PrincipalId: expect.any(String), UserId: expect.any(String) });
    const session = fromSts(await assumeRole(emu, KEYS.webhook, `acs:ram::${A}:role/for-webhook-user`));
    const role = await post<Record<string, unknown>>(stsClient(emu, session), 'GetCallerIdentity');
    expect(role).toMatchObject({ AccountId: A, IdentityType: 'AssumedRoleUser', RoleId: expect.stringMatching(/^\d+$/), Arn: `acs:ram::${A}:role/for-webhook-user/test-session` });
  });
});
