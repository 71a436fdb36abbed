// The emulated cloud and node for the credential provider's tests: the demo world plus a node identity (a RAM
// user allowed to pull from the cn-hangzhou instance), a cluster OIDC provider whose issuer key signs the
// ServiceAccount tokens, and roles trusting particular ServiceAccounts of namespace team-a.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createOidcSigningKey, demoState, makeOidcToken, oidcProviderArn, roleArn, type DemoWorld, type Emulator, type OidcSigningKey } from '../../emulator/index.js';

export const PLUGIN = resolve('dist/bin/acr-credential-provider.cjs');
export const ISSUER = 'https://kubernetes.default.svc';
export const AUDIENCE = 'sts.aliyuncs.com';
export const NODE_KEY = { id: 'LTAI5tNodeIdentity00000001', secret: 'node-identity-secret-0000000000001' };
/** A node identity that may also list the account's instances (cr:ListInstance on instance/*): discovery. */
export const DISCOVERING_NODE_KEY = { id: 'LTAI5tNodeDiscovery0000001', secret: 'node-discovery-secret-00000000001' };
/** An instance of the workload account in cn-hangzhou that is still being created. */
export const STARTING_INSTANCE = { id: 'cri-starting00000001', name: 'starting' };

export interface ProviderWorld {
  world: DemoWorld;
  issuerKey: OidcSigningKey;
  providerArn: string;
  /** Trusts system:serviceaccount:team-a:puller (and, like RRSA's default, only the sts.aliyuncs.com audience). */
  serviceRole: string;
  /** Exists, but trusts only another namespace's ServiceAccount. */
  untrustedRole: string;
}

export function providerWorld(): ProviderWorld {
  const world = demoState();
  const issuerKey = createOidcSigningKey('cluster-key-1');
  const [workload, owner] = world.accounts;
  const providerArn = oidcProviderArn(workload!.id, 'ack-rrsa-e2e');
  workload!.oidcProviders!.push({ name: 'ack-rrsa-e2e', issuer: ISSUER, clientIds: [AUDIENCE], jwks: { keys: [issuerKey.jwk] } });
  // The demo service role gets the cluster's ServiceAccounts as OIDC principals (RRSA trust statement).
  const service = workload!.roles!.find((r) => r.name === 'acr-pull')!;
  service.trust.push({ oidcProvider: providerArn, subjects: ['system:serviceaccount:team-a:puller', 'system:serviceaccount:team-a:by-id', 'system:serviceaccount:team-a:other'], audiences: [AUDIENCE] });
  workload!.roles!.push({ name: 'acr-pull-team-b', trust: [{ oidcProvider: providerArn, subjects: ['system:serviceaccount:team-b:puller'] }], permissions: { crGetAuthorizationToken: '*' } });
  workload!.users!.push({ name: 'node', accessKeys: [{ id: NODE_KEY.id, secret: NODE_KEY.secret }], permissions: { crGetAuthorizationToken: [world.demo.hangzhouInstanceId], crReadInstance: [world.demo.hangzhouInstanceId] } });
  workload!.users!.push({ name: 'node-discovery', accessKeys: [{ id: DISCOVERING_NODE_KEY.id, secret: DISCOVERING_NODE_KEY.secret }], permissions: { crGetAuthorizationToken: '*', crReadInstance: '*' } });
  world.instances!.push({ id: STARTING_INSTANCE.id, name: STARTING_INSTANCE.name, region: 'cn-hangzhou', accountId: workload!.id, status: 'STARTING' });
  void owner;
  return { world, issuerKey, providerArn, serviceRole: world.demo.serviceRoleArn, untrustedRole: roleArn(workload!.id, 'acr-pull-team-b') };
}

/** A ServiceAccount token as the API server issues it (bound to a Pod), signed with the issuer key. */
export function saToken(w: ProviderWorld, namespace: string, name: string, opts: { uid?: string; aud?: string; ttl?: number } = {}): string {
  const now = Math.floor(Date.now() / 1000);
  return makeOidcToken(
    {
      iss: ISSUER,
      sub: `system:serviceaccount:${namespace}:${name}`,
      aud: [opts.aud ?? AUDIENCE],
      exp: now + (opts.ttl ?? 3600),
      iat: now,
      nbf: now,
      jti: Math.random().toString(36).slice(2),
      'kubernetes.io': { namespace, pod: { name: 'p', uid: 'pod-uid' }, serviceaccount: { name, uid: opts.uid ?? `${name}-uid` } },
    },
    w.issuerKey,
  );
}

export interface Node {
  dir: string;
  /** The plugin as the kubelet finds it: a symlink in the plugin directory. */
  bin: string;
  cacheDir: string;
  configFile: string;
  env: NodeJS.ProcessEnv;
}

/** A node's plugin directory and configuration (JSON unless `yaml` is given). */
export function makeNode(emu: Emulator, w: ProviderWorld, config: Record<string, unknown> = {}, yaml?: string): Node {
  const dir = mkdtempSync(join(tmpdir(), 'acr-cp-'));
  mkdirSync(join(dir, 'bin'));
  const bin = join(dir, 'bin', 'acr-credential-provider');
  symlinkSync(PLUGIN, bin);
  const cacheDir = join(dir, 'cache');
  const configFile = join(dir, yaml === undefined ? 'config.json' : 'config.yaml');
  const body = {
    registries: [{ instanceId: w.world.demo.hangzhouInstanceId, region: 'cn-hangzhou', domains: ['demo-registry.cn-hangzhou.cr.aliyuncs.com', 'demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com'] }],
    credentialProvider: { cacheDir, oidcProviderArn: w.providerArn },
    ...config,
  };
  writeFileSync(configFile, yaml ?? JSON.stringify(body));
  const env = {
    PATH: process.env.PATH,
    ACR_CREDENTIAL_PROVIDER_CONFIG: configFile,
    ALIBABA_CLOUD_STS_ENDPOINT: emu.stsEndpoint,
    ALIBABA_CLOUD_CR_ENDPOINT: emu.crEndpointTemplate,
    ALIBABA_CLOUD_ACCESS_KEY_ID: NODE_KEY.id,
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: NODE_KEY.secret,
  };
  return { dir, bin, cacheDir, configFile, env };
}

export interface PluginRun {
  code: number | null;
  stdout: string;
  stderr: string;
  response?: { kind: string; apiVersion: string; cacheKeyType: string; cacheDuration: string; auth?: Record<string, { username: string; password: string }> };
}

export function request(image: string, sa?: { token: string; annotations?: Record<string, string> }): Record<string, unknown> {
  return {
    apiVersion: 'credentialprovider.kubelet.k8s.io/v1',
    kind: 'CredentialProviderRequest',
    image,
    ...(sa ? { serviceAccountToken: sa.token, serviceAccountAnnotations: sa.annotations ?? {} } : {}),
  };
}

/** Runs the plugin the way the kubelet does: exec, request on stdin, answer on stdout. Asynchronous: the emulator is in this process. */
export function runPlugin(node: Node, body: Record<string, unknown> | string, env: NodeJS.ProcessEnv = {}, args: string[] = []): Promise<PluginRun> {
  return new Promise((done, fail) => {
    const child = spawn(node.bin, args, { env: { ...node.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      let response;
      try {
        response = stdout ? JSON.parse(stdout) : undefined;
      } catch {
        response = undefined;
      }
      done({ code, stdout, stderr, response });
    });
    child.stdin.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
}
