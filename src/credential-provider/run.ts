// One plugin execution: read the kubelet's request, decide, answer from the disk cache or through the role
// chain, and say what to print and which exit code to use. The cloud clients (pop-core, @alicloud/credentials)
// are loaded only when a cloud call is needed (with V8's compile cache on, where Node has one): an answer from the
// disk cache loads neither.
import { existsSync } from 'node:fs';
import { endpointsFromEnv } from '../cloud/endpoints.js';
import type { Identity } from '../cloud/identity.js';
import { CloudCaller } from '../cloud/rpc.js';
import { AcrTokenSource, type WorkloadIdentity } from '../cloud/token-source.js';
import { loadConfigFile, parseConfig, type WebhookConfig } from '../config/config.js';
import { DenialError } from '../pull-secrets/types.js';
import { decide, type ProviderRules } from './decide.js';
import { enableCompileCache } from './compile-cache.js';
import { discoverInstance } from './discovery.js';
import { DiskCache } from './disk-cache.js';
import { parseRequest, RequestError, responseText } from './protocol.js';
import { readServiceAccountToken } from './sa-token.js';
import { providerRules } from './rules.js';

export const CONFIG_ENV = 'ACR_CREDENTIAL_PROVIDER_CONFIG';
/** Read when neither --config nor the environment names a file: the first that exists. */
export const DEFAULT_CONFIG_FILES = ['/etc/acr-credential-provider/config.json', '/etc/acr-credential-provider/config.yaml'];
/** The kubelet kills a plugin after one minute: answer (or deny) well before. */
const BUDGET_MS = 45_000;
/** Whose identity a chain without service ARN (and discovery) uses, in messages. */
const SELF = 'the node';

export interface RunIO {
  argv: string[];
  env: NodeJS.ProcessEnv;
  readStdin(): Promise<string>;
  now?: () => number;
}

export interface RunResult {
  code: 0 | 1 | 2;
  /** The CredentialProviderResponse, or '' when there is none to give. */
  stdout: string;
  /** Lines for stderr; the kubelet logs them when the exit code is not 0. Never a secret. */
  stderr: string[];
}

export const USAGE = 'usage: acr-credential-provider [--config <file>]   (a CredentialProviderRequest on stdin, as the kubelet sends it)';

function configPath(argv: string[], env: NodeJS.ProcessEnv): string | undefined {
  let path: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' && argv[i + 1] !== undefined) path = argv[++i];
    else if (a.startsWith('--config=')) path = a.slice('--config='.length);
    else throw new RequestError(`unknown argument ${JSON.stringify(a)}; ${USAGE}`);
  }
  path ??= env[CONFIG_ENV] || undefined;
  path ??= DEFAULT_CONFIG_FILES.find((f) => existsSync(f));
  return path;
}

export async function run(io: RunIO): Promise<RunResult> {
  const now = io.now ?? Date.now;
  const stderr: string[] = [];
  let config: WebhookConfig;
  let request;
  try {
    const path = configPath(io.argv, io.env);
    const ctx = { ownNamespace: 'acr-pull-webhook', regionFromEnv: io.env.ALIBABA_CLOUD_REGION_ID };
    config = path ? loadConfigFile(path, ctx) : parseConfig({}, ctx, 'defaults');
    request = parseRequest(await io.readStdin());
  } catch (e) {
    return { code: 2, stdout: '', stderr: [(e as Error).message] };
  }

  let token;
  if (request.serviceAccountToken) {
    try {
      token = readServiceAccountToken(request.serviceAccountToken, now());
    } catch (e) {
      return { code: 1, stdout: '', stderr: [(e as Error).message] };
    }
  }
  const input = { image: request.image, annotations: request.serviceAccountAnnotations, token };
  let rules: ProviderRules = providerRules(config);
  let decision = decide(input, rules);
  const empty = () => responseText(request.apiVersion, {}, 'Registry', 0);
  if (decision.kind === 'deny') return { code: 1, stdout: '', stderr: [decision.message] };
  if (decision.kind === 'none') return { code: 0, stdout: empty(), stderr: [`no credentials for ${decision.host}: ${decision.why}`] };

  let endpoints;
  try {
    endpoints = endpointsFromEnv(io.env, config.endpoints);
  } catch (e) {
    return { code: 2, stdout: '', stderr: [(e as Error).message] };
  }
  const persistent = new DiskCache(config.credentialProvider.cacheDir, (m) => stderr.push(m));
  let compileCache = false;
  const beforeCloudLoad = () => {
    if (compileCache) return;
    compileCache = true;
    enableCompileCache(() => persistent.compileCacheDir());
  };
  const caller = new CloudCaller({ lazyLoad: true, beforeLoad: beforeCloudLoad });
  const tokens = new AcrTokenSource({
    identity: lazyIdentity(io.env, endpoints.sts, beforeCloudLoad),
    endpoints,
    caller,
    sessionDurationSeconds: config.credentials.sessionDurationSeconds,
    refreshThresholdMs: config.credentials.refreshThresholdMs,
    externalIdFor: (arn) => config.credentials.externalIds[arn],
    persistent,
    self: SELF,
    now,
  });
  const budget = { deadline: now() + BUDGET_MS };
  try {
    if (decision.kind === 'discover') {
      const { instanceName, region } = decision;
      const found = await discoverInstance(decision, {
        caller,
        endpoint: endpoints.cr(region),
        credentials: () => tokens.credentialsFor({}, 'node', budget),
        as: `${SELF}'s own identity`,
        store: persistent,
        intervalMs: config.discovery.intervalMs,
        missIntervalMs: config.discovery.missIntervalMs,
        budget,
        now,
        warn: (m) => stderr.push(m),
      });
      rules = providerRules(config, found ? [found] : []);
      decision = decide(input, rules);
      if (decision.kind === 'deny') return { code: 1, stdout: '', stderr: [...stderr, decision.message] };
      if (decision.kind !== 'fetch') {
        const why = `discovery found no running ACR Enterprise instance named ${instanceName} in ${region} in the account of ${SELF}'s own identity`;
        return { code: 0, stdout: empty(), stderr: [...stderr, `no credentials for ${decision.host}: ${why}`] };
      }
    }
    const workload: WorkloadIdentity | undefined =
      decision.workload && request.serviceAccountToken && rules.oidcProviderArn
        ? {
            oidcProviderArn: rules.oidcProviderArn,
            token: request.serviceAccountToken,
            issuer: decision.workload.issuer,
            subject: decision.workload.subject,
            audiences: decision.workload.audiences,
            partition: `${decision.workload.issuer}|${decision.workload.subject}|${decision.workload.uid}`,
          }
        : undefined;
    for (const binding of decision.bindings) {
      const auths = await tokens.dockerAuths(binding, decision.requester, budget, workload);
      const credential = auths.auths[decision.host];
      if (credential) {
        const seconds = (auths.expiresAt - config.credentials.refreshThresholdMs - now()) / 1000;
        const auth = { [decision.host]: { username: credential.username, password: credential.password } };
        return { code: 0, stdout: responseText(request.apiVersion, auth, 'Registry', seconds), stderr };
      }
    }
    stderr.push(
      `no credentials for ${decision.host}: it is not among the domains of the instances ${decision.workload ? "the ServiceAccount's annotations name" : 'this node is configured to serve'}`,
    );
    return { code: 0, stdout: empty(), stderr };
  } catch (e) {
    if (e instanceof DenialError) return { code: 1, stdout: '', stderr: [...stderr, e.message] };
    return { code: 1, stdout: '', stderr: [...stderr, `internal error: ${(e as Error | null | undefined)?.name ?? 'Error'}`] };
  } finally {
    caller.close();
  }
}

/** The node's own identity (AccessKey env, RRSA env, ECS RAM role), resolved only when a chain needs it. */
function lazyIdentity(env: NodeJS.ProcessEnv, sts: string, beforeLoad: () => void): Identity {
  let loaded: Promise<Identity> | undefined;
  return {
    source: 'node',
    credentials: async () => {
      if (!loaded) beforeLoad();
      loaded ??= import('../cloud/identity.js').then((m) => m.identityFromEnv(env, sts));
      return (await loaded).credentials();
    },
  };
}
