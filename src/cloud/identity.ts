// The webhook's own Alibaba Cloud identity (first hop of every chain), resolved with @alicloud/credentials in
// the documented order: AccessKey from env, then RRSA (OIDC token file, re-read on every refresh), then the
// ECS instance RAM role. Start-up logs `source`, never a secret.
import { ECSRAMRoleCredentialsProvider, OIDCRoleArnCredentialsProvider } from '@alicloud/credentials';
import { CloudError, toCloudError } from './errors.js';
import type { Credentials } from './rpc.js';

export interface Identity {
  /** Which source is in use, for the start-up log: "env", "rrsa", "ecs-ram-role", "static:<label>". */
  source: string;
  credentials(): Promise<Credentials>;
}

interface Provider {
  getCredentials(): Promise<{ accessKeyId: string; accessKeySecret: string; securityToken?: string }>;
}

/**
 * What a provider threw, as a CloudError: a socket failure is Unreachable or Timeout (toCloudError), and the
 * library's own failures (thrown as plain Errors, their code only in the text) get a code of what went wrong.
 * That text never leaves here (for RRSA it holds STS's whole reply, for the ECS role the metadata service's):
 * only STS's Code and RequestId, when they look like one.
 */
export function providerError(e: unknown): CloudError {
  const api = 'credentials';
  // An Error with a code of its own (a socket's, a file's) is classified by the code, whatever its text says.
  if (!(e instanceof Error) || typeof (e as { code?: unknown }).code === 'string') return toCloudError(api, e);
  const message = e.message;
  // RRSA, a non-200 answer: `get sts token failed with OIDC: <STS's reply>` (the greedy group takes all of it).
  const oidc = /^get sts token failed with OIDC: ([\s\S]*)/.exec(message);
  if (oidc) {
    let reply: { Code?: unknown; RequestId?: unknown } | undefined;
    try {
      reply = JSON.parse(oidc[1]!) as typeof reply;
    } catch {
      return new CloudError(api, 'BadResponse', true);
    }
    // Here, not at module level, so that each call builds them (Stryker's mutants of a module-level constant are
    // only seen by the tests that load the module).
    const code = typeof reply?.Code === 'string' && /^[A-Za-z][A-Za-z0-9.]{0,99}$/.test(reply.Code) ? reply.Code : 'Unknown';
    const requestId = typeof reply?.RequestId === 'string' && /^[0-9A-Za-z-]{1,64}$/.test(reply.RequestId) ? reply.RequestId : undefined;
    return new CloudError(api, code, /^(Throttling|ServiceUnavailable|InternalError)/.test(code), requestId);
  }
  // The ECS RAM role: the metadata service names no role (none is attached to the instance), not the one asked
  // for, or answers with another status (also for the session token, which fails loudly only with
  // ALIBABA_CLOUD_IMDSV1_DISABLED=true; otherwise the library falls back to IMDSv1).
  if (/^get role name failed: .* 404$/.test(message)) return new CloudError(api, 'EcsRamRole.NotAttached', false, undefined, 404);
  if (message.startsWith('get sts token failed, httpStatus: 404,')) return new CloudError(api, 'EcsRamRole.NotFound', false, undefined, 404);
  const status = /^get (?:role name failed: .* |sts token failed, httpStatus: |metadata token failed with )(\d{3})\b/.exec(message);
  if (status) return new CloudError(api, 'EcsMetadata.BadStatus', Number(status[1]) >= 500, undefined, Number(status[1]));
  // A 200 answer without usable credentials (RRSA or ECS): what a proxy's page or a truncated reply gives.
  if (/^(get sts token failed|refresh Ecs sts token err)/.test(message)) return new CloudError(api, 'BadResponse', true);
  return toCloudError(api, e);
}

function fromProvider(source: string, provider: Provider): Identity {
  return {
    source,
    credentials: async () => {
      let c: Awaited<ReturnType<Provider['getCredentials']>>;
      try {
        c = await provider.getCredentials();
      } catch (e) {
        throw providerError(e);
      }
      return { accessKeyId: c.accessKeyId, accessKeySecret: c.accessKeySecret, ...(c.securityToken ? { securityToken: c.securityToken } : {}) };
    },
  };
}

/**
 * The AccessKey of `env`, read at every call as @alicloud/credentials' EnvironmentVariableCredentialsProvider
 * does, but from the environment the source was chosen by: the library's reads process.env, so an `env` that is
 * not process.env (an embedding, a test) chose the env source and then failed on every call.
 */
function environmentProvider(env: NodeJS.ProcessEnv): Provider {
  return {
    getCredentials: async () => {
      const accessKeyId = env.ALIBABA_CLOUD_ACCESS_KEY_ID;
      const accessKeySecret = env.ALIBABA_CLOUD_ACCESS_KEY_SECRET;
      if (!accessKeyId || !accessKeySecret) throw new CloudError('credentials', 'EnvAccessKey.Missing', false);
      const securityToken = env.ALIBABA_CLOUD_SECURITY_TOKEN;
      return { accessKeyId, accessKeySecret, ...(securityToken ? { securityToken } : {}) };
    },
  };
}

export function identityFromEnv(env: NodeJS.ProcessEnv, stsEndpoint?: string): Identity {
  if (env.ALIBABA_CLOUD_ACCESS_KEY_ID && env.ALIBABA_CLOUD_ACCESS_KEY_SECRET) {
    return fromProvider(env.ALIBABA_CLOUD_SECURITY_TOKEN ? 'env (STS token)' : 'env (AccessKey)', environmentProvider(env));
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
