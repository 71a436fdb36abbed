// The credential provider under the kubelet's own plugin machinery (test/e2e/credprov-harness, built from
// k8s.io/kubernetes v1.33 pkg/credentialprovider/plugin), with the shipped CredentialProviderConfig examples
// loaded verbatim. Workload identity mode uses real ServiceAccount tokens issued by a real kube-apiserver
// (TokenRequest through the kubelet's token manager, bound to real Pods), and the emulator verifies them against
// that API server's /openid/v1/jwks, as RRSA verifies a cluster's tokens against its OIDC provider. The last block
// pulls real images with the plugin's credentials: test/e2e/kubelet-pull builds the kubelet's keyring for a Pod with
// the same plugin machinery (the node's keyring next to the Pod's pull Secrets, here none) and pulls from real
// registries (CNCF distribution, token auth against the emulator) under the instances' ACR host names.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOidcSigningKey, demoState, oidcProviderArn, roleArn, startEmulator, TEMP_USERNAME, type DemoWorld, type Emulator } from '../../emulator/index.js';
import { pushRandomImage, realmTls, registryLogin, startInstanceRegistries, type InstanceRegistries } from './support/acr-registries.js';
import { startCluster, type Cluster } from './support/cluster.js';
import { createPki, type Pki } from './support/pki.js';
import { controlPlaneBinary } from '../support/go-tools.js';

const ROOT = resolve('.');
const CONTROL_PLANE = controlPlaneBinary(ROOT);
const HARNESS = join(ROOT, 'test/e2e/.bin/credprov-harness/credprov-harness');
const REGISTRY = join(ROOT, 'test/e2e/.bin/registry/registry');
const PULLER = join(ROOT, 'test/e2e/.bin/kubelet-pull/kubelet-pull');
const WORK = join(ROOT, 'test/e2e/.work', `credprov-${Date.now()}`);
const NODE_CONFIG = join(ROOT, 'manifests/credential-provider/node-identity.yaml');
const WORKLOAD_CONFIG = join(ROOT, 'manifests/credential-provider/workload-identity.yaml');

const HZ = 'demo-registry.cn-hangzhou.cr.aliyuncs.com';
const HZ_VPC = 'demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com';
const BJ = 'demo-owner-registry.cn-beijing.cr.aliyuncs.com';
const PERSONAL = 'registry.cn-hangzhou.aliyuncs.com';
const CRPI = 'crpi-abc123.cn-hangzhou.personal.cr.aliyuncs.com';
const NODE_KEY = { id: 'LTAI5tE2eNodeIdentity0001', secret: 'e2e-node-identity-secret-000000001' };
/** Image publishers of the two instances: the only identities that may push. */
const PUBLISHER_HZ = { accessKeyId: 'LTAI5tE2ePublisherHz0001', accessKeySecret: 'e2e-publisher-hz-secret-000000001' };
const PUBLISHER_BJ = { accessKeyId: 'LTAI5tE2ePublisherBj0001', accessKeySecret: 'e2e-publisher-bj-secret-000000001' };

let cluster: Cluster;
let emu: Emulator;
let world: DemoWorld;
let providerArn: string;
let untrustedRole: string;
let binDir: string;
let pki: Pki;
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
  for (const [what, path] of [['control plane', CONTROL_PLANE], ['credprov-harness', HARNESS], ['registry', REGISTRY], ['kubelet-pull', PULLER]] as const) {
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
  account.users!.push({ name: 'node', accessKeys: [{ id: NODE_KEY.id, secret: NODE_KEY.secret }], permissions: { crGetAuthorizationToken: [world.demo.hangzhouInstanceId], crPullRepository: [world.demo.hangzhouInstanceId] } });
  const publisher = (key: typeof PUBLISHER_HZ, instance: string) => ({
    name: 'publisher',
    accessKeys: [{ id: key.accessKeyId, secret: key.accessKeySecret }],
    permissions: { crGetAuthorizationToken: [instance], crPullRepository: [instance], crPushRepository: [instance] },
  });
  account.users!.push(publisher(PUBLISHER_HZ, world.demo.hangzhouInstanceId));
  world.accounts[1]!.users = [publisher(PUBLISHER_BJ, world.demo.beijingInstanceId)];
  pki = createPki(join(WORK, 'pki'));
  // HTTPS too, for the registries' token realm.
  emu = await startEmulator({ world, tls: realmTls(pki, ['cn-hangzhou', 'cn-beijing']) });

  binDir = join(WORK, 'bin');
  mkdirSync(binDir);
  // As installed: the package's bin, reached through a symlink named as the config's provider.
  symlinkSync(join(ROOT, 'dist/bin/acr-credential-provider.cjs'), join(binDir, 'acr-credential-provider'));

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

interface PullAttempt {
  secret?: string;
  node?: boolean;
  username?: string;
  error?: string;
  status?: number;
}
interface PullReport {
  object: string;
  ok: boolean;
  secrets: string[];
  images: { container?: string; image: string; ok: boolean; digest?: string; layers?: number; credential?: PullAttempt; attempts: PullAttempt[]; error?: string }[];
  providers?: { execs: number; errors: number };
}

describe("images pull with the provider's credentials, through the kubelet's keyring, from Pods without pull Secrets", () => {
  let registries: InstanceRegistries | undefined;
  const digests = { hz: '', bj: '' };

  beforeAll(async () => {
    registries = await startInstanceRegistries({
      binary: REGISTRY,
      workDir: WORK,
      emu,
      pki,
      instances: [
        { instanceId: world.demo.hangzhouInstanceId, region: 'cn-hangzhou', domains: [HZ, HZ_VPC] },
        { instanceId: world.demo.beijingInstanceId, region: 'cn-beijing', domains: [BJ, BJ.replace('-registry.', '-registry-vpc.')] },
      ],
    });
    digests.hz = await pushRandomImage(PULLER, registries.network, `${HZ}/app/web:1`, await registryLogin(emu, PUBLISHER_HZ, 'cn-hangzhou', world.demo.hangzhouInstanceId));
    digests.bj = await pushRandomImage(PULLER, registries.network, `${BJ}/app/web:1`, await registryLogin(emu, PUBLISHER_BJ, 'cn-beijing', world.demo.beijingInstanceId));
    const pod = (name: string, serviceAccountName: string, images: Record<string, string>) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'team-a' },
      spec: { serviceAccountName, containers: Object.entries(images).map(([c, image]) => ({ name: c, image })) },
    });
    const items = [
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'plain', namespace: 'team-a' } },
      pod('pull-node', 'plain', { web: `${HZ}/app/web:1`, vpc: `${HZ_VPC}/app/web:1` }),
      pod('pull-cross-account', 'puller', { web: `${BJ}/app/web:1`, vpc: `${BJ.replace('-registry.', '-registry-vpc.')}/app/web:1` }),
      pod('pull-by-id', 'by-id', { vpc: `${HZ_VPC}/app/web:1` }),
    ];
    await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  });

  afterAll(async () => {
    await registries?.stop();
  });

  /** kubelet-pull for a Pod of team-a, with the kubelet's credential provider flags (or none). */
  async function pull(podName: string, provider?: { config: string; env: NodeJS.ProcessEnv; serviceAccountTokens?: boolean }): Promise<PullReport> {
    const args = ['pull', '--kubeconfig', cluster.kubeconfig, '--pod', `team-a/${podName}`, ...registries!.network];
    if (provider) args.push('--image-credential-provider-config', provider.config, '--image-credential-provider-bin-dir', binDir);
    if (provider?.serviceAccountTokens) args.push('--service-account-tokens');
    // The kubelet runs plugins with its own environment: the node's identity and endpoints are the puller's here.
    const r = await run(PULLER, args, { env: provider?.env ?? { PATH: process.env.PATH } });
    if (r.status !== 0 && r.status !== 1) throw new Error(`kubelet-pull ${podName} exited ${r.status}: ${r.stdout}${r.stderr}`);
    const report = JSON.parse(r.stdout) as PullReport;
    expect(r.status, JSON.stringify(report, null, 2)).toBe(report.ok ? 0 : 1);
    return report;
  }

  /** Every image pulled with the digest pushed, by one credential from the node's keyring (the plugin), no Secret. */
  function expectPulledByProvider(report: PullReport, digests: Record<string, string>): void {
    const why = JSON.stringify(report, null, 2);
    expect(report.ok, why).toBe(true);
    expect(report.secrets).toEqual([]);
    expect(Object.fromEntries(report.images.map((i) => [i.image, i.digest]))).toEqual(digests);
    for (const i of report.images) {
      expect(i.layers, why).toBe(2);
      expect(i.attempts, why).toEqual([{ node: true, username: TEMP_USERNAME }]);
    }
  }

  const lastPrincipals = (n: number) => emu.calls.list({ product: 'registry-auth' }).slice(-n).map((c) => [c.status, c.principal]);

  it('node identity (shipped node-identity.yaml): a Pod with no pull Secret pulls through the provider alone; without it, the same pull is refused', async () => {
    const anonymous = await pull('pull-node');
    expect(anonymous.ok).toBe(false);
    for (const i of anonymous.images) expect(i.attempts).toEqual([{ error: expect.stringContaining('UNAUTHORIZED'), status: 401 }]);

    const env = pluginEnv({ registries: [{ instanceId: world.demo.hangzhouInstanceId, region: 'cn-hangzhou', domains: [HZ, HZ_VPC] }] });
    const report = await pull('pull-node', { config: NODE_CONFIG, env });
    expectPulledByProvider(report, { [`${HZ}/app/web:1`]: digests.hz, [`${HZ_VPC}/app/web:1`]: digests.hz });
    // One plugin execution per registry host (cacheKeyType Registry), no failure.
    expect(report.providers).toEqual({ execs: 2, errors: 0 });
    // The registry's token service saw the node's own identity behind the passwords.
    expect(lastPrincipals(2)).toEqual([
      [200, `acs:ram::${world.accounts[0]!.id}:user/node`],
      [200, `acs:ram::${world.accounts[0]!.id}:user/node`],
    ]);
  });

  it("workload identity (shipped workload-identity.yaml): the ServiceAccount's real token and annotations run the cross-account chain, and the Pod pulls from the owner's instance", async () => {
    const oidc = emu.calls.count({ action: 'AssumeRoleWithOIDC' });
    const report = await pull('pull-cross-account', { config: WORKLOAD_CONFIG, env: pluginEnv({ registries: [] }), serviceAccountTokens: true });
    const vpc = BJ.replace('-registry.', '-registry-vpc.');
    expectPulledByProvider(report, { [`${BJ}/app/web:1`]: digests.bj, [`${vpc}/app/web:1`]: digests.bj });
    expect(report.providers).toEqual({ execs: 2, errors: 0 });
    // The token the kubelet's token manager got for the Pod was exchanged once; the VPC host's execution found the
    // chain's sessions in the plugin's disk cache.
    expect(emu.calls.count({ action: 'AssumeRoleWithOIDC' })).toBe(oidc + 1);
    const owner = world.accounts[1]!.id;
    expect(lastPrincipals(2)).toEqual([
      [200, `acs:ram::${owner}:role/acr-pull-user/acr-pull@team-a`],
      [200, `acs:ram::${owner}:role/acr-pull-user/acr-pull@team-a`],
    ]);
  });

  it('workload identity: the instance named by ID in the ServiceAccount annotations pulls on its VPC domain', async () => {
    const report = await pull('pull-by-id', { config: WORKLOAD_CONFIG, env: pluginEnv({ registries: [] }), serviceAccountTokens: true });
    expectPulledByProvider(report, { [`${HZ_VPC}/app/web:1`]: digests.hz });
    expect(lastPrincipals(1)).toEqual([[200, `acs:ram::${world.accounts[0]!.id}:role/acr-pull/acr-pull@team-a`]]);
  });

  it('node identity with discovery: an image of the node account\'s own instance pulls with no registries configured', async () => {
    // The node may list its account's instances (discovery); nothing is configured.
    const user = world.accounts[0]!.users!.find((u) => u.name === 'node')!;
    const before = user.permissions;
    user.permissions = { ...before, crReadInstance: '*' };
    try {
      const env = pluginEnv({ registries: [], discovery: { enabled: true, regions: ['cn-hangzhou'], personalEdition: false } });
      const report = await pull('pull-node', { config: NODE_CONFIG, env });
      expectPulledByProvider(report, { [`${HZ}/app/web:1`]: digests.hz, [`${HZ_VPC}/app/web:1`]: digests.hz });
      expect(emu.calls.count({ action: 'ListInstance', caller: NODE_KEY.id })).toBe(1);
    } finally {
      user.permissions = before;
    }
  });
});
