// The credential provider under the kubelet's own plugin machinery (test/e2e/credprov-harness, built from
// k8s.io/kubernetes v1.33 pkg/credentialprovider/plugin), with the shipped CredentialProviderConfig examples
// loaded verbatim. Workload identity mode uses real ServiceAccount tokens issued by a real kube-apiserver
// (TokenRequest through the kubelet's token manager, bound to real Pods), and the emulator verifies them against
// that API server's /openid/v1/jwks, as RRSA verifies a cluster's tokens against its OIDC provider.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOidcSigningKey, demoState, oidcProviderArn, roleArn, startEmulator, TEMP_USERNAME, type DemoWorld, type Emulator } from '../../emulator/index.js';
import { startCluster, type Cluster } from './support/cluster.js';

const ROOT = resolve('.');
const version = /k8s\.io\/kubernetes (v1\.\d+\.\d+)/.exec(readFileSync('test/e2e/controlplane/go.mod', 'utf8'))![1]!;
const CONTROL_PLANE = process.env.E2E_CONTROLPLANE ?? join(ROOT, 'test/e2e/.bin', version, 'controlplane');
const HARNESS = join(ROOT, 'test/e2e/.bin/credprov-harness/credprov-harness');
const WORK = join(ROOT, 'test/e2e/.work', `credprov-${Date.now()}`);
const NODE_CONFIG = join(ROOT, 'manifests/credential-provider/node-identity.yaml');
const WORKLOAD_CONFIG = join(ROOT, 'manifests/credential-provider/workload-identity.yaml');

const HZ = 'demo-registry.cn-hangzhou.cr.aliyuncs.com';
const HZ_VPC = 'demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com';
const BJ = 'demo-owner-registry.cn-beijing.cr.aliyuncs.com';
const PERSONAL = 'registry.cn-hangzhou.aliyuncs.com';
const CRPI = 'crpi-abc123.cn-hangzhou.personal.cr.aliyuncs.com';
const NODE_KEY = { id: 'LTAI5tE2eNodeIdentity0001', secret: 'e2e-node-identity-secret-000000001' };

let cluster: Cluster;
let emu: Emulator;
let world: DemoWorld;
let providerArn: string;
let untrustedRole: string;
let binDir: string;
const pods: Record<string, { namespace: string; name: string; uid: string; serviceAccount: string }> = {};

function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const out = { stdout: '', stderr: '' };
    child.stdout.on('data', (d) => (out.stdout += d));
    child.stderr.on('data', (d) => (out.stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 90_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ status: code ?? 1, ...out });
    });
    child.stdin.end(opts.input ?? '');
  });
}

async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await run('kubectl', ['--kubeconfig', cluster.kubeconfig, ...args], { input });
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The plugin's environment as the kubelet would pass it on (its own environment, plus the config's env). */
function pluginEnv(providerConfig: Record<string, unknown>): NodeJS.ProcessEnv {
  const file = join(WORK, `provider-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ credentialProvider: { cacheDir: join(WORK, `cache-${Math.random().toString(36).slice(2)}`), oidcProviderArn: providerArn }, ...providerConfig }));
  return {
    PATH: process.env.PATH,
    ACR_CREDENTIAL_PROVIDER_CONFIG: file,
    ALIBABA_CLOUD_STS_ENDPOINT: emu.stsEndpoint,
    ALIBABA_CLOUD_CR_ENDPOINT: emu.crEndpointTemplate,
    ALIBABA_CLOUD_ACCESS_KEY_ID: NODE_KEY.id,
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: NODE_KEY.secret,
  };
}

interface HarnessResult {
  image: string;
  found: boolean;
  auth: { username: string; password: string }[];
  execs: number;
  errors: number;
}

/** One kubelet process: the config is registered once, then each step is a Lookup(image) for a Pod. */
async function kubelet(config: string, env: NodeJS.ProcessEnv, steps: { image: string; pod?: string; sleepMs?: number }[], serviceAccountTokens = false): Promise<{ results: HarnessResult[]; log: string }> {
  const args = ['--config', config, '--bin-dir', binDir, '--v=2'];
  if (serviceAccountTokens) args.push('--service-account-tokens', '--kubeconfig', cluster.kubeconfig);
  const input = JSON.stringify({ steps: steps.map((s) => ({ image: s.image, pod: s.pod ? pods[s.pod] : {}, sleepMs: s.sleepMs ?? 0 })) });
  const r = await run(HARNESS, args, { input, env });
  if (r.status !== 0) throw new Error(`credprov-harness failed (${r.status}): ${r.stderr}`);
  return { results: JSON.parse(r.stdout).results, log: r.stderr };
}

const issued = (password: string) => emu.state.registryTokens.get(password);
const trustedSubjects = ['puller', 'by-id', 'personal'].map((sa) => `system:serviceaccount:team-a:${sa}`);

beforeAll(async () => {
  for (const [what, path] of [['control plane', CONTROL_PLANE], ['credprov-harness', HARNESS]] as const) {
    if (!existsSync(path)) throw new Error(`${path} (${what}) is missing: npm run e2e builds it`);
  }
  mkdirSync(WORK, { recursive: true });
  cluster = await startCluster(CONTROL_PLANE, join(WORK, 'cluster'));
  // The cluster's issuer and keys, as an RRSA OIDC provider learns them.
  const discovery = JSON.parse(await kubectl(['get', '--raw', '/.well-known/openid-configuration']));
  const jwks = JSON.parse(await kubectl(['get', '--raw', '/openid/v1/jwks']));
  expect(jwks.keys.length).toBeGreaterThan(0);
  world = demoState();
  const account = world.accounts[0]!;
  providerArn = oidcProviderArn(account.id, 'ack-rrsa-e2e');
  account.oidcProviders!.push({ name: 'ack-rrsa-e2e', issuer: discovery.issuer, clientIds: ['sts.aliyuncs.com'], jwks });
  account.roles!.find((r) => r.name === 'acr-pull')!.trust.push({ oidcProvider: providerArn, subjects: trustedSubjects, audiences: ['sts.aliyuncs.com'] });
  account.roles!.push({ name: 'acr-pull-team-b', trust: [{ oidcProvider: providerArn, subjects: ['system:serviceaccount:team-b:puller'] }], permissions: { crGetAuthorizationToken: '*' } });
  untrustedRole = roleArn(account.id, 'acr-pull-team-b');
  account.users!.push({ name: 'node', accessKeys: [{ id: NODE_KEY.id, secret: NODE_KEY.secret }], permissions: { crGetAuthorizationToken: [world.demo.hangzhouInstanceId] } });
  emu = await startEmulator({ world });

  binDir = join(WORK, 'bin');
  mkdirSync(binDir);
  // As installed: the package's bin, reached through a symlink named as the config's provider.
  symlinkSync(join(ROOT, 'dist/src/credential-provider/main.js'), join(binDir, 'acr-credential-provider'));

  await kubectl(['create', 'namespace', 'team-a']);
  const sas: Record<string, Record<string, string>> = {
    puller: { 'k8s.aliyun.com/acr-service-arns': world.demo.serviceRoleArn, 'k8s.aliyun.com/acr-user-arns': world.demo.userRoleArn },
    'by-id': { 'k8s.aliyun.com/acr-service-arns': world.demo.serviceRoleArn, 'k8s.aliyun.com/acr-instance-id': `cn-hangzhou:${world.demo.hangzhouInstanceId}` },
    personal: { 'k8s.aliyun.com/acr-service-arns': world.demo.serviceRoleArn },
    untrusted: { 'k8s.aliyun.com/acr-service-arns': untrustedRole },
  };
  const docs = Object.entries(sas).flatMap(([name, annotations]) => [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: 'team-a', annotations } },
    // Pods to bind the tokens to (there is no node: they stay Pending, as a Pod does until its images are pulled).
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: `${name}-1`, namespace: 'team-a' }, spec: { serviceAccountName: name, containers: [{ name: 'app', image: `${BJ}/team/app:1` }] } },
  ]);
  docs.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'puller-2', namespace: 'team-a' }, spec: { serviceAccountName: 'puller', containers: [{ name: 'app', image: `${BJ}/team/app:1` }] } });
  await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: docs }));
  for (const p of JSON.parse(await kubectl(['get', 'pods', '-n', 'team-a', '-o', 'json'])).items) {
    pods[p.metadata.name] = { namespace: 'team-a', name: p.metadata.name, uid: p.metadata.uid, serviceAccount: p.spec.serviceAccountName };
  }
});

afterAll(async () => {
  await cluster?.stop();
  await emu?.close();
  if (process.env.E2E_KEEP !== '1') rmSync(WORK, { recursive: true, force: true });
});

describe('credential provider under the kubelet plugin machinery', () => {
  it('node identity (shipped node-identity.yaml): configured registry served with the node identity, cached per registry; docker.io never reaches the plugin', async () => {
    const env = pluginEnv({ registries: [{ instanceId: world.demo.hangzhouInstanceId, region: 'cn-hangzhou', domains: [HZ, HZ_VPC] }] });
    const { results } = await kubelet(NODE_CONFIG, env, [{ image: `${HZ}/team/app:1` }, { image: `${HZ}/team/other:2` }, { image: `${HZ_VPC}/team/app:1` }, { image: 'docker.io/library/nginx:1.27' }]);
    const [first, sameRegistry, vpc, dockerHub] = results;
    expect(first!.found).toBe(true);
    expect(first!.auth).toHaveLength(1);
    expect(first!.auth[0]!.username).toBe(TEMP_USERNAME);
    expect(issued(first!.auth[0]!.password)).toMatchObject({ instanceId: world.demo.hangzhouInstanceId, principal: `acs:ram::${world.accounts[0]!.id}:user/node` });
    expect(first!.execs).toBe(1);
    // cacheKeyType Registry: another image of the same registry comes from the kubelet's cache, another registry does not.
    expect(sameRegistry!.auth).toEqual(first!.auth);
    expect(sameRegistry!.execs).toBe(1);
    expect(vpc!.auth).toEqual(first!.auth);
    expect(vpc!.execs).toBe(2);
    // matchImages: Docker Hub is not the plugin's to answer.
    expect(dockerHub).toMatchObject({ found: false, auth: [], execs: 2, errors: 0 });
    expect(emu.calls.count({ action: 'GetAuthorizationToken', caller: NODE_KEY.id })).toBe(1);
  });

  it('answers docker.io with an empty answer when the kubelet does ask it', async () => {
    const config = join(WORK, 'docker-io.yaml');
    writeFileSync(config, readFileSync(NODE_CONFIG, 'utf8').replace('matchImages:', 'matchImages:\n      - "docker.io"\n      - "*.docker.io"'));
    const { results } = await kubelet(config, pluginEnv({}), [{ image: 'docker.io/library/nginx:1.27' }]);
    expect(results[0]).toMatchObject({ found: false, auth: [], execs: 1, errors: 0 });
  });

  it('the kubelet honours cacheDuration (token expiry minus the refresh threshold)', async () => {
    // Tokens live 3600 s; a threshold of 3591 s leaves about 9 s.
    const env = pluginEnv({ registries: [{ instanceId: world.demo.hangzhouInstanceId, region: 'cn-hangzhou', domains: [HZ] }], credentials: { refreshThreshold: '3591s' } });
    const direct = await run(join(binDir, 'acr-credential-provider'), [], {
      env,
      input: JSON.stringify({ apiVersion: 'credentialprovider.kubelet.k8s.io/v1', kind: 'CredentialProviderRequest', image: `${HZ}/a` }),
    });
    const response = JSON.parse(direct.stdout);
    expect(response.cacheKeyType).toBe('Registry');
    const seconds = Number(/^(\d+)s$/.exec(response.cacheDuration)![1]);
    expect(seconds).toBeGreaterThanOrEqual(5);
    expect(seconds).toBeLessThanOrEqual(9);
    const { results } = await kubelet(NODE_CONFIG, env, [{ image: `${HZ}/a` }, { image: `${HZ}/b` }, { image: `${HZ}/c`, sleepMs: (seconds + 2) * 1000 }]);
    expect(results.map((r) => r.execs)).toEqual([1, 1, 2]);
    expect(results.every((r) => r.found)).toBe(true);
  });

  it('workload identity (shipped workload-identity.yaml): the cross-account chain, an instance named by ID, Personal Edition hosts, and an untrusted role, with real ServiceAccount tokens', async () => {
    const env = pluginEnv({ registries: [] });
    const { results, log } = await kubelet(
      WORKLOAD_CONFIG,
      env,
      [
        { image: `${BJ}/team/app:1`, pod: 'puller-1' },
        // Same ServiceAccount, another Pod and image: the kubelet's cache is per ServiceAccount and registry.
        { image: `${BJ}/team/other:2`, pod: 'puller-2' },
        // The instance named by ID: its domains are listed to find the image's registry among them.
        { image: `${HZ}/team/app:1`, pod: 'by-id-1' },
        { image: `${PERSONAL}/ns/app:1`, pod: 'personal-1' },
        { image: `${CRPI}/ns/app:1`, pod: 'personal-1' },
        { image: `${HZ}/team/app:1`, pod: 'untrusted-1' },
      ],
      true,
    );
    const [cross, samePod2, byId, personal, crpi, untrusted] = results;
    const owner = world.accounts[1]!.id;
    expect(cross!.found).toBe(true);
    expect(issued(cross!.auth[0]!.password)).toMatchObject({ instanceId: world.demo.beijingInstanceId, accountId: owner, principal: `acs:ram::${owner}:role/acr-pull-user/acr-pull@team-a` });
    expect(cross!.execs).toBe(1);
    expect(samePod2).toMatchObject({ found: true, auth: cross!.auth, execs: 1 });
    expect(issued(byId!.auth[0]!.password)).toMatchObject({ instanceId: world.demo.hangzhouInstanceId, principal: expect.stringContaining(':role/acr-pull/acr-pull@team-a') });
    expect(emu.calls.count({ action: 'ListInstanceEndpoint' })).toBeGreaterThan(0);
    expect(issued(personal!.auth[0]!.password)).toMatchObject({ edition: 'personal', region: 'cn-hangzhou', principal: expect.stringContaining(':role/acr-pull/acr-pull@team-a') });
    expect(crpi!.auth).toEqual(personal!.auth);
    expect(crpi!.execs).toBe(personal!.execs + 1);
    // The untrusted role: no credentials, a plugin failure the kubelet counts and logs with the plugin's message.
    expect(untrusted).toMatchObject({ found: false, auth: [], errors: 1 });
    expect(log).toContain(`acr-pull-webhook failed assuming service role ${untrustedRole} with the token of ServiceAccount team-a/untrusted (AssumeRoleWithOIDC): AuthenticationFail.NoPermission`);
    expect(log).toContain('oidc:sub = system:serviceaccount:team-a:untrusted');
    // Every first hop was AssumeRoleWithOIDC, unsigned; the node's AccessKey never assumed a role.
    expect(emu.calls.count({ action: 'AssumeRoleWithOIDC', code: 'AuthenticationFail.NoPermission' })).toBe(1);
    expect(emu.calls.count({ action: 'AssumeRole', caller: NODE_KEY.id })).toBe(0);
  });

  it('a custom domain of the instance named by ID, once the config matches it', async () => {
    const config = join(WORK, 'custom-domain.yaml');
    const text = readFileSync(WORKLOAD_CONFIG, 'utf8');
    expect(text).toContain('# - "registry.example.com"');
    writeFileSync(config, text.replace('# - "registry.example.com"', '- "registry.example.com"'));
    const { results } = await kubelet(config, pluginEnv({ registries: [] }), [{ image: 'registry.example.com/team/app:1', pod: 'by-id-1' }], true);
    expect(results[0]!.found).toBe(true);
    expect(issued(results[0]!.auth[0]!.password)).toMatchObject({ instanceId: world.demo.hangzhouInstanceId, principal: expect.stringContaining(':role/acr-pull/acr-pull@team-a') });
  });

  it('the raw answer to a real token: cacheKeyType Registry, a duration bounded by the token expiry minus the threshold', async () => {
    const token = (await kubectl(['create', 'token', 'puller', '-n', 'team-a', '--audience', 'sts.aliyuncs.com', '--bound-object-kind', 'Pod', '--bound-object-name', 'puller-1', '--bound-object-uid', pods['puller-1']!.uid])).trim();
    const r = await run(join(binDir, 'acr-credential-provider'), [], {
      env: pluginEnv({ credentials: { refreshThreshold: '20m' } }),
      input: JSON.stringify({
        apiVersion: 'credentialprovider.kubelet.k8s.io/v1',
        kind: 'CredentialProviderRequest',
        image: `${BJ}/team/app:1`,
        serviceAccountToken: token,
        serviceAccountAnnotations: { 'k8s.aliyun.com/acr-service-arns': world.demo.serviceRoleArn, 'k8s.aliyun.com/acr-user-arns': world.demo.userRoleArn },
      }),
    });
    expect(r.stderr).toBe('');
    const response = JSON.parse(r.stdout);
    expect(response.cacheKeyType).toBe('Registry');
    expect(Object.keys(response.auth)).toEqual([BJ]);
    const token2 = issued(response.auth[BJ].password)!;
    const bound = (token2.expiresAt - 20 * 60_000 - Date.now()) / 1000;
    const seconds = Number(/^(\d+)s$/.exec(response.cacheDuration)![1]);
    expect(seconds).toBeLessThanOrEqual(bound + 1);
    expect(seconds).toBeGreaterThan(bound - 60);
  });

  it("STS refuses the cluster's tokens once the OIDC provider holds other keys (signatures are checked against the JWKS)", async () => {
    const provider = world.accounts[0]!.oidcProviders!.find((p) => p.name === 'ack-rrsa-e2e')!;
    const keys = provider.jwks;
    provider.jwks = { keys: [createOidcSigningKey('rotated', 'RS256').jwk] };
    try {
      const token = (await kubectl(['create', 'token', 'puller', '-n', 'team-a', '--audience', 'sts.aliyuncs.com'])).trim();
      const r = await run(join(binDir, 'acr-credential-provider'), [], {
        env: pluginEnv({}),
        input: JSON.stringify({
          apiVersion: 'credentialprovider.kubelet.k8s.io/v1',
          kind: 'CredentialProviderRequest',
          image: `${BJ}/team/app:1`,
          serviceAccountToken: token,
          serviceAccountAnnotations: { 'k8s.aliyun.com/acr-service-arns': world.demo.serviceRoleArn },
        }),
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('AuthenticationFail.OIDCToken.Invalid');
      expect(r.stderr).toContain(`STS could not verify the ServiceAccount token: ${providerArn} must have the issuer https://kubernetes.default.svc and the cluster's current service-account signing keys`);
    } finally {
      provider.jwks = keys;
    }
  });
});
