// The seeded world for the webhook's standalone mode and manual use: a workload account whose
// service role chains into a registry-owner account's user role. The user AccessKey is random per
// call and only ever returned to the caller (never printed).
import { oidcProviderArn, roleArn } from './arn.js';
import { randomAlnum } from './ids.js';
import type { WorldSpec } from './model.js';
import { createOidcSigningKey, type OidcSigningKey } from './oidc.js';

export const DEMO_ACCOUNT_ID = '1234567890123456';
export const DEMO_OWNER_ACCOUNT_ID = '6543210987654321';

export interface DemoInfo {
  /** RAM user `webhook` of the workload account. */
  accessKeyId: string;
  accessKeySecret: string;
  /** `acs:ram::1234567890123456:role/acr-pull`, trusted by its own account and the RRSA provider. */
  serviceRoleArn: string;
  /** `acs:ram::6543210987654321:role/acr-pull-user`, trusting only the service role. */
  userRoleArn: string;
  /** RRSA: provider, issuer, audience and the service account subject the service role trusts. */
  oidcProviderArn: string;
  oidcIssuer: string;
  oidcAudience: string;
  oidcSubject: string;
  /** The demo issuer's signing key (its public half is the provider's JWKS): `makeOidcToken(claims, key)`. */
  oidcSigningKey: OidcSigningKey;
  /** Enterprise instance `demo` in cn-hangzhou (workload account, custom domain registry.example.com). */
  hangzhouInstanceId: string;
  /** Enterprise instance `demo-owner` in cn-beijing (owner account, reached through the user role). */
  beijingInstanceId: string;
  /** Region of the workload account's Personal Edition registry. */
  personalRegion: string;
}

export type DemoWorld = WorldSpec & { demo: DemoInfo };

export function demoState(): DemoWorld {
  const accessKeyId = `LTAI5t${randomAlnum(18)}`;
  const accessKeySecret = randomAlnum(30);
  const serviceRoleArn = roleArn(DEMO_ACCOUNT_ID, 'acr-pull');
  const userRoleArn = roleArn(DEMO_OWNER_ACCOUNT_ID, 'acr-pull-user');
  const providerArn = oidcProviderArn(DEMO_ACCOUNT_ID, 'ack-rrsa-demo');
  const oidcIssuer = 'https://oidc-ack-cn-hangzhou.oss-cn-hangzhou.aliyuncs.com/demo';
  const oidcAudience = 'sts.aliyuncs.com';
  const oidcSubject = 'system:serviceaccount:acr-pull-webhook:acr-pull-webhook';
  const oidcSigningKey = createOidcSigningKey('demo-issuer-1');
  return {
    accounts: [
      {
        id: DEMO_ACCOUNT_ID,
        users: [{ name: 'webhook', accessKeys: [{ id: accessKeyId, secret: accessKeySecret }], permissions: { assumeRole: [serviceRoleArn] } }],
        oidcProviders: [{ name: 'ack-rrsa-demo', issuer: oidcIssuer, clientIds: [oidcAudience], jwks: { keys: [oidcSigningKey.jwk] } }],
        roles: [
          {
            name: 'acr-pull',
            maxSessionDuration: 3600,
            trust: [{ account: DEMO_ACCOUNT_ID }, { oidcProvider: providerArn, subjects: [oidcSubject] }],
            permissions: {
              assumeRole: '*',
              crGetAuthorizationToken: '*',
              crReadInstance: '*',
              crPersonalRegions: ['cn-hangzhou'],
              crPullRepository: '*',
            },
          },
        ],
      },
      {
        id: DEMO_OWNER_ACCOUNT_ID,
        roles: [
          {
            name: 'acr-pull-user',
            maxSessionDuration: 3600,
            trust: [{ role: serviceRoleArn }],
            permissions: { crGetAuthorizationToken: '*', crReadInstance: '*', crPersonalRegions: '*', crPullRepository: '*' },
          },
        ],
      },
    ],
    instances: [
      {
        id: 'cri-demo0000000001',
        name: 'demo',
        region: 'cn-hangzhou',
        accountId: DEMO_ACCOUNT_ID,
        customDomains: ['registry.example.com'],
        linkedVpcs: [{ vpcId: 'vpc-demo0000000001', vswitchId: 'vsw-demo0000000001' }],
      },
      { id: 'cri-demo0000000002', name: 'demo-owner', region: 'cn-beijing', accountId: DEMO_OWNER_ACCOUNT_ID },
    ],
    personalRegistries: [{ accountId: DEMO_ACCOUNT_ID, region: 'cn-hangzhou' }],
    demo: {
      accessKeyId,
      accessKeySecret,
      serviceRoleArn,
      userRoleArn,
      oidcProviderArn: providerArn,
      oidcIssuer,
      oidcAudience,
      oidcSubject,
      oidcSigningKey,
      hangzhouInstanceId: 'cri-demo0000000001',
      beijingInstanceId: 'cri-demo0000000002',
      personalRegion: 'cn-hangzhou',
    },
  };
}
