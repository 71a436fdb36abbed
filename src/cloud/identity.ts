// The webhook's own Alibaba Cloud identity (first hop of every chain), resolved with @alicloud/credentials in
// the documented order: AccessKey from env, then RRSA (OIDC token file, re-read on every refresh), then the
// ECS instance RAM role. Start-up logs `source`, never a secret.
import {
  ECSRAMRoleCredentialsProvider,
  EnvironmentVariableCredentialsProvider,
  OIDCRoleArnCredentialsProvider,
} from '@alicloud/credentials';
import type { Credentials } from './rpc.js';

export interface Identity {
  /** Which source is in use, for the start-up log: "env", "rrsa", "ecs-ram-role", "static:<label>". */
  source: string;
  credentials(): Promise<Credentials>;
}

interface Provider {
  getCredentials(): Promise<{ accessKeyId: string; accessKeySecret: string; securityToken?: string }>;
}

function fromProvider(source: string, provider: Provider): Identity {
  return {
    source,
    credentials: async () => {
      const c = await provider.getCredentials();
      return { accessKeyId: c.accessKeyId, accessKeySecret: c.accessKeySecret, ...(c.securityToken ? { securityToken: c.securityToken } : {}) };
    },
  };
}

export function identityFromEnv(env: NodeJS.ProcessEnv, stsEndpoint?: string): Identity {
  if (env.ALIBABA_CLOUD_ACCESS_KEY_ID && env.ALIBABA_CLOUD_ACCESS_KEY_SECRET) {
    return fromProvider(env.ALIBABA_CLOUD_SECURITY_TOKEN ? 'env (STS token)' : 'env (AccessKey)', EnvironmentVariableCredentialsProvider.builder().build());
  }
  if (env.ALIBABA_CLOUD_ROLE_ARN && env.ALIBABA_CLOUD_OIDC_PROVIDER_ARN && env.ALIBABA_CLOUD_OIDC_TOKEN_FILE) {
    let builder = OIDCRoleArnCredentialsProvider.builder()
      .withRoleArn(env.ALIBABA_CLOUD_ROLE_ARN)
      .withOIDCProviderArn(env.ALIBABA_CLOUD_OIDC_PROVIDER_ARN)
      .withOIDCTokenFilePath(env.ALIBABA_CLOUD_OIDC_TOKEN_FILE)
      .withRoleSessionName(env.ALIBABA_CLOUD_ROLE_SESSION_NAME || 'acr-pull-webhook');
    // The library speaks https to a host; an https override (Apsara Stack, tests) is passed on as its host.
    if (stsEndpoint?.startsWith('https://')) builder = builder.withStsEndpoint(new URL(stsEndpoint).host);
    return fromProvider(`rrsa (${env.ALIBABA_CLOUD_ROLE_ARN})`, builder.build());
  }
  return fromProvider('ecs-ram-role', ECSRAMRoleCredentialsProvider.builder().withRoleName(env.ALIBABA_CLOUD_ECS_METADATA ?? '').build());
}

export function staticIdentity(label: string, creds: Credentials): Identity {
  return { source: `static:${label}`, credentials: async () => creds };
}
