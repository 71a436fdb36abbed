// AcrTokenSource against the emulator, for what the chain tests leave open: the keys its caches use (one per
// registry, instance, name and role, so two never share an answer or a remembered failure), the denials of each
// step, the token capped at its session, the renewal times, the cache names and sizes, and the progress record.
// The module is loaded per test so that its load-time constants and helpers count.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ECSRAMRoleCredentialsProvider } from '@alicloud/credentials';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { demoState, makeOidcToken, roleArn, startEmulator, DEMO_ACCOUNT_ID, DEMO_OWNER_ACCOUNT_ID, type DemoWorld, type Emulator } from '../../emulator/index.js';
import type { Binding, RegistryRef } from '../../src/acr/model.js';
import type { CacheOutcome, Expiring, PersistentStore } from '../../src/cloud/cache.js';
import type { Identity } from '../../src/cloud/identity.js';
import type { CloudCaller } from '../../src/cloud/rpc.js';

type TokenSourceModule = typeof import('../../src/cloud/token-source.js');
type Options = ConstructorParameters<TokenSourceModule['AcrTokenSource']>[0];

const SECOND_ID = 'cri-demo0000000003';
const NO_TRUST = roleArn(DEMO_ACCOUNT_ID, 'no-trust');
const OTHER_USER = roleArn(DEMO_OWNER_ACCOUNT_ID, 'acr-pull-user2');

let world: DemoWorld;
let emu: Emulator;
let mod: TokenSourceModule;
// Loaded with the token source, so that errors and denials are of the same module instances.
let rpc: typeof import('../../src/cloud/rpc.js');
let staticIdentity: typeof import('../../src/cloud/identity.js').staticIdentity;
let Progress: typeof import('../../src/pull-secrets/progress.js').Progress;
let caller: CloudCaller;

beforeAll(async () => {
  world = demoState();
  const [own, owner] = world.accounts;
  // The webhook's own user may also read instances and ask for tokens (chains without a role).
  own!.users![0]!.permissions = { assumeRole: '*', crGetAuthorizationToken: '*', crReadInstance: '*' };
  own!.roles![0]!.permissions!.crPersonalRegions = '*';
  own!.roles!.push({ name: 'no-trust', maxSessionDuration: 3600, trust: [], permissions: {} });
  owner!.roles!.push({ name: 'acr-pull-user2', maxSessionDuration: 3600, trust: [{ role: world.demo.serviceRoleArn }], permissions: { crGetAuthorizationToken: '*', crReadInstance: '*' } });
  world.instances!.push({ id: SECOND_ID, name: 'demo-second', region: 'cn-hangzhou', accountId: DEMO_ACCOUNT_ID });
  world.personalRegistries!.push({ accountId: DEMO_ACCOUNT_ID, region: 'cn-shanghai' });
  emu = await startEmulator({ world });
});
afterAll(async () => {
  await emu.close();
});
beforeEach(async () => {
  vi.resetModules();
  mod = await import('../../src/cloud/token-source.js');
  rpc = await import('../../src/cloud/rpc.js');
  ({ staticIdentity } = await import('../../src/cloud/identity.js'));
  ({ Progress } = await import('../../src/pull-secrets/progress.js'));
});
afterEach(() => {
  caller?.close();
  emu.reset();
});

function source(opts: Partial<Options> = {}, identity?: Identity) {
  caller = new rpc.CloudCaller({ backoffMs: 20, attemptTimeoutMs: 3000 });
  return new mod.AcrTokenSource({
    identity: identity ?? staticIdentity('test', { accessKeyId: world.demo.accessKeyId, accessKeySecret: world.demo.accessKeySecret }),
    endpoints: { sts: emu.stsEndpoint, cr: (r) => emu.crEndpoint(r) },
    caller,
    sessionDurationSeconds: 3600,
    refreshThresholdMs: 15 * 60_000,
    ...opts,
  });
}

const budget = (ms = 8000) => ({ deadline: Date.now() + ms });
const service = (w: DemoWorld) => ({ serviceArn: w.demo.serviceRoleArn });
const hangzhou: RegistryRef = { kind: 'instance', instanceId: 'cri-demo0000000001', region: 'cn-hangzhou' };
const second: RegistryRef = { kind: 'instance', instanceId: SECOND_ID, region: 'cn-hangzhou' };
const beijing = (): RegistryRef => ({ kind: 'instance', instanceId: world.demo.beijingInstanceId, region: 'cn-beijing' });
const count = (action: string, product?: 'sts' | 'cr' | 'cr-personal') => emu.calls.count(product ? { action, product } : { action });
/** Which instance each domain's password opens, as the emulator issued it. */
const opened = (auths: Record<string, { password: string }>) =>
  Object.fromEntries(Object.entries(auths).map(([domain, c]) => [domain, emu.state.registryTokens.get(c.password)?.instanceId]));

async function denial(p: Promise<unknown>): Promise<{ name: string; message: string; code: unknown; reason: unknown }> {
  try {
    await p;
  } catch (e) {
    const { name, message, code, reason } = e as { name: string; message: string; code: unknown; reason: unknown };
    return { name, message: message.replace(/\(request ID [0-9A-F-]+\)/, '(request ID <id>)'), code, reason };
  }
  throw new Error('expected a denial');
}

const HANGZHOU_DOMAINS = {
  'demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com': 'cri-demo0000000001',
  'demo-registry.cn-hangzhou.cr.aliyuncs.com': 'cri-demo0000000001',
  'registry.example.com': 'cri-demo0000000001',
};
const SECOND_DOMAINS = {
  'demo-second-registry-vpc.cn-hangzhou.cr.aliyuncs.com': SECOND_ID,
  'demo-second-registry.cn-hangzhou.cr.aliyuncs.com': SECOND_ID,
};

describe('cache keys: one answer per instance, name, region and role', () => {
  it('two instances of one chain: each its own token and domains', async () => {
    const auths = await source().dockerAuths({ chain: service(world), registries: [hangzhou, second] }, 'team-a', budget());
    expect(opened(auths.auths)).toEqual({ ...HANGZHOU_DOMAINS, ...SECOND_DOMAINS });
    expect(count('GetAuthorizationToken')).toBe(2);
    expect(count('ListInstanceEndpoint')).toBe(2);
  });

  it('two instance names of one chain: each looked up on its own', async () => {
    const byName = (instanceName: string): RegistryRef => ({ kind: 'instance-name', instanceName, region: 'cn-hangzhou' });
    const auths = await source().dockerAuths({ chain: service(world), registries: [byName('demo'), byName('demo-second')] }, 'team-a', budget());
    expect(opened(auths.auths)).toEqual({ ...HANGZHOU_DOMAINS, ...SECOND_DOMAINS });
  });

  it('an instance name nobody can see: a 400 naming the name, region and identity', async () => {
    const d = await denial(source().dockerAuths({ chain: service(world), registries: [{ kind: 'instance-name', instanceName: 'nope', region: 'cn-hangzhou' }] }, 'team-a', budget()));
    expect(d).toEqual({
      name: 'DenialError',
      message: `no ACR Enterprise Edition instance named nope in cn-hangzhou is visible to ${world.demo.serviceRoleArn}: check the image's registry domain, or name the instance in k8s.aliyun.com/acr-instance-ids`,
      code: 400,
      reason: 'BadRequest',
    });
  });

  it('Personal Edition in two regions: a token from each', async () => {
    const personal = (region: string): RegistryRef => ({ kind: 'personal', region, domains: [`registry.${region}.aliyuncs.com`] });
    const auths = await source().dockerAuths({ chain: service(world), registries: [personal('cn-hangzhou'), personal('cn-shanghai')] }, 'team-a', budget());
    expect(Object.keys(auths.auths).sort()).toEqual(['registry.cn-hangzhou.aliyuncs.com', 'registry.cn-shanghai.aliyuncs.com']);
    expect(count('GetAuthorizationToken', 'cr-personal')).toBe(2);
    expect(auths.auths['registry.cn-hangzhou.aliyuncs.com']!.password).not.toBe(auths.auths['registry.cn-shanghai.aliyuncs.com']!.password);
  });

  it('an instance without a region asks the endpoint of region ""', async () => {
    const regions: string[] = [];
    const src = source({ endpoints: { sts: emu.stsEndpoint, cr: (r) => (regions.push(r), emu.crEndpoint('cn-hangzhou')) } });
    const auths = await src.dockerAuths({ chain: service(world), registries: [{ kind: 'instance', instanceId: 'cri-demo0000000001', domains: ['registry.example.com'] }] }, 'team-a', budget());
    expect(opened(auths.auths)).toEqual({ 'registry.example.com': 'cri-demo0000000001' });
    expect(regions).toEqual(['']);
  });

  it('a long namespace gets a RoleSessionName cut to 55 characters and the start of its SHA-256', async () => {
    await source().dockerAuths({ chain: service(world), registries: [hangzhou] }, 'n'.repeat(60), budget());
    const principal = emu.calls.list({ action: 'GetAuthorizationToken' })[0]!.principal;
    expect(principal).toContain(`acr-pull@${'n'.repeat(46)}.fb886b45`);
  });

  it('what the disk cache is given, under which keys', async () => {
    const writes: [string, string][] = [];
    const persistent: PersistentStore = {
      read: () => undefined,
      write: <V>(cache: string, key: string, _entry: Expiring<V>) => void writes.push([cache, key]),
    };
    const src = source({ persistent });
    await src.dockerAuths({ chain: {}, registries: [hangzhou] }, 'team-a', budget());
    await src.dockerAuths({ chain: { serviceArn: world.demo.serviceRoleArn, userArn: world.demo.userRoleArn }, registries: [beijing()] }, 'team-a', budget());
    expect(writes.sort()).toEqual([
      ['instance', 'domains|cn-beijing|cri-demo0000000002|' + `${world.demo.serviceRoleArn}|${world.demo.userRoleArn}|acr-pull@team-a`],
      ['instance', 'domains|cn-hangzhou|cri-demo0000000001|self'],
      ['sts', `${world.demo.serviceRoleArn}|acr-pull@team-a`],
      ['sts', `${world.demo.serviceRoleArn}|${world.demo.userRoleArn}|acr-pull@team-a`],
      ['token', 'i|cn-beijing|cri-demo0000000002|' + `${world.demo.serviceRoleArn}|${world.demo.userRoleArn}|acr-pull@team-a`],
      ['token', 'i|cn-hangzhou|cri-demo0000000001|self'],
    ]);
  });
});

describe('failures are remembered per role chain and call, not beyond', () => {
  it('a refused service role does not deny another service role', async () => {
    const src = source();
    const d = await denial(src.dockerAuths({ chain: { serviceArn: NO_TRUST }, registries: [hangzhou] }, 'team-a', budget()));
    expect(d.code).toBe(403);
    const auths = await src.dockerAuths({ chain: service(world), registries: [hangzhou] }, 'team-a', budget());
    expect(opened(auths.auths)).toEqual(HANGZHOU_DOMAINS);
  });

  it('a refused user role does not deny another user role behind the same service role', async () => {
    const src = source();
    const d = await denial(src.dockerAuths({ chain: { serviceArn: world.demo.serviceRoleArn, userArn: roleArn(DEMO_OWNER_ACCOUNT_ID, 'missing') }, registries: [beijing()] }, 'team-a', budget()));
    expect(d.code).toBe(403);
    const auths = await src.dockerAuths({ chain: { serviceArn: world.demo.serviceRoleArn, userArn: OTHER_USER }, registries: [beijing()] }, 'team-a', budget());
    expect(Object.values(opened(auths.auths))).toEqual([world.demo.beijingInstanceId, world.demo.beijingInstanceId]);
    expect(emu.calls.list({ action: 'GetAuthorizationToken' })[0]!.principal).toContain('acr-pull-user2');
  });

  it('a refused registry token does not deny another instance\'s', async () => {
    const src = source();
    const refusal = emu.inject({ kind: 'error', status: 403, code: 'NoPermission' }, { action: 'GetAuthorizationToken' });
    const d = await denial(src.dockerAuths({ chain: service(world), registries: [{ ...hangzhou, domains: ['registry.example.com'] }] }, 'team-a', budget()));
    expect(d.code).toBe(403);
    refusal.remove();
    const auths = await src.dockerAuths({ chain: service(world), registries: [{ ...second, domains: ['demo-second-registry.cn-hangzhou.cr.aliyuncs.com'] }] }, 'team-a', budget());
    expect(opened(auths.auths)).toEqual({ 'demo-second-registry.cn-hangzhou.cr.aliyuncs.com': SECOND_ID });
  });

  it('a refused domain listing does not deny another instance\'s, and names the call and its actions', async () => {
    const src = source();
    const refusal = emu.inject({ kind: 'error', status: 403, code: 'NoPermission' }, { action: 'ListInstanceEndpoint' });
    const d = await denial(src.dockerAuths({ chain: service(world), registries: [hangzhou] }, 'team-a', budget()));
    expect(d).toEqual({
      name: 'DenialError',
      message: `acr-pull-webhook failed listing the domains for ACR instance cri-demo0000000001 in cn-hangzhou as ${world.demo.serviceRoleArn}: NoPermission (request ID <id>). Grant cr:ListInstanceEndpoint and cr:GetInstanceVpcEndpoint on the instance to that identity in RAM, and cr:PullRepository for the pull itself (the webhook's README lists every action under "RAM permissions")`,
      code: 403,
      reason: 'Forbidden',
    });
    refusal.remove();
    const auths = await src.dockerAuths({ chain: service(world), registries: [second] }, 'team-a', budget());
    expect(opened(auths.auths)).toEqual(SECOND_DOMAINS);
  });

  it('a deadline passing is not remembered: the next review with time tries again', async () => {
    const src = source();
    const hang = emu.injectHang({ action: 'GetAuthorizationToken' });
    const d = await denial(src.dockerAuths({ chain: service(world), registries: [{ ...hangzhou, domains: ['registry.example.com'] }] }, 'team-a', budget(2000)));
    expect(d.reason).toBe('Timeout');
    hang.remove();
    const auths = await src.dockerAuths({ chain: service(world), registries: [{ ...hangzhou, domains: ['registry.example.com'] }] }, 'team-a', budget());
    expect(opened(auths.auths)).toEqual({ 'registry.example.com': 'cri-demo0000000001' });
  });
});

describe('denials of each step', () => {
  it('own credentials that cannot be loaded: classified like a cloud call, naming the identity source', async () => {
    const identity: Identity = { ...staticIdentity('test', { accessKeyId: 'a', accessKeySecret: 'b' }), credentials: () => Promise.reject(Object.assign(new Error('no metadata'), { code: 'ECONNREFUSED' })) };
    const d = await denial(source({ self: 'the node' }, identity).dockerAuths({ chain: {}, registries: [hangzhou] }, 'team-a', budget()));
    expect(d).toEqual({
      name: 'DenialError',
      message:
        "acr-pull-webhook failed loading the node's own Alibaba Cloud credentials from static:test: Unreachable. The node's credential provider (RRSA token exchange or ECS metadata) could not be reached from the webhook: check its network and endpoint settings. Controllers (Deployments, Jobs, ...) create the Pod again by themselves; a Pod created directly can be created again",
      code: 503,
      reason: 'ServiceUnavailable',
    });
  });

  it('a Personal Edition token refused', async () => {
    emu.inject({ kind: 'error', status: 403, code: 'NoPermission' }, { action: 'GetAuthorizationToken', product: 'cr-personal' });
    const d = await denial(source().dockerAuths({ chain: service(world), registries: [{ kind: 'personal', region: 'cn-hangzhou', domains: ['registry.cn-hangzhou.aliyuncs.com'] }] }, 'team-a', budget()));
    expect(d).toEqual({
      name: 'DenialError',
      message: `acr-pull-webhook failed getting a Personal Edition registry token in cn-hangzhou as ${world.demo.serviceRoleArn}: NoPermission (request ID <id>). Grant cr:GetAuthorizationToken to that identity in RAM, and cr:PullRepository for the pull itself (the webhook's README lists every action under "RAM permissions")`,
      code: 403,
      reason: 'Forbidden',
    });
  });

  it('a service role whose trust policy refuses, without an explainer', async () => {
    const d = await denial(source().dockerAuths({ chain: { serviceArn: NO_TRUST }, registries: [hangzhou] }, 'team-a', budget()));
    expect(d).toEqual({
      name: 'DenialError',
      message: `acr-pull-webhook failed assuming service role ${NO_TRUST}: NoPermission (request ID <id>). The role's trust policy must allow the webhook's identity (its account or RAM role), and that identity needs sts:AssumeRole`,
      code: 403,
      reason: 'Forbidden',
    });
  });

  it('names the step in flight when the deadline passes', async () => {
    const progress = new Progress();
    emu.injectHang({ action: 'GetAuthorizationToken' });
    const p = denial(source().dockerAuths({ chain: service(world), registries: [{ ...hangzhou, domains: ['registry.example.com'] }] }, 'team-a', { ...budget(3000), progress }));
    for (let i = 0; i < 250 && count('GetAuthorizationToken') === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const d = progress.timedOut('fallback');
    expect({ message: d.message, code: d.code, reason: d.reason }).toEqual({
      message: `acr-pull-webhook timed out getting a registry token for ACR instance cri-demo0000000001 in cn-hangzhou as ${world.demo.serviceRoleArn}: Container Registry (${emu.crEndpoint('cn-hangzhou')}) did not answer before the admission deadline. Check that the webhook reaches that endpoint (network policy, proxy, VPC endpoint settings). Controllers (Deployments, Jobs, ...) create the Pod again by themselves; a Pod created directly can be created again`,
      code: 503,
      reason: 'Timeout',
    });
    await p;
  });
});

/** A loopback port nobody listens on: connections to it are refused. */
async function refusedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const a = s.address();
  await new Promise((r) => s.close(r));
  return typeof a === 'object' && a ? a.port : 0;
}

/** The library's own HTTP function (what its providers call), to send their requests elsewhere. */
const libraryHttp = createRequire(import.meta.url)('@alicloud/credentials/dist/src/providers/http.js') as { doRequest: (req: unknown) => Promise<unknown> };

// The credential helper's acr-configuration without assumeRoleARN: a binding with the webhook's own identity
// (chain {}). With the cloud's endpoints on a port that refuses connections, the first call that fails is the
// identity's own (RRSA's AssumeRoleWithOIDC, or the ECS metadata service), before any Container Registry call.
describe('refused connections: the step that failed and Unreachable, never Unknown', () => {
  let port: number;
  let dir: string;
  let identityFromEnv: typeof import('../../src/cloud/identity.js').identityFromEnv;
  beforeEach(async () => {
    port = await refusedPort();
    dir = mkdtempSync(join(tmpdir(), 'refused-'));
    ({ identityFromEnv } = await import('../../src/cloud/identity.js'));
  });
  afterEach(() => {
    vi.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });
  const refused = () => source({ endpoints: { sts: `https://127.0.0.1:${port}`, cr: () => `http://127.0.0.1:${port}` } });
  const withPort = (m: string) => m.replaceAll(String(port), '<port>');
  const helperBinding: Binding = { chain: {}, registries: [hangzhou] };

  it('RRSA: STS refuses the token exchange', async () => {
    writeFileSync(join(dir, 'token'), 'oidc-token-text');
    const env = { ALIBABA_CLOUD_ROLE_ARN: 'acs:ram::1:role/webhook', ALIBABA_CLOUD_OIDC_PROVIDER_ARN: 'acs:ram::1:oidc-provider/ack', ALIBABA_CLOUD_OIDC_TOKEN_FILE: join(dir, 'token') };
    const identity = identityFromEnv(env, `https://127.0.0.1:${port}`);
    const src = new mod.AcrTokenSource({ ...refusedOptions(), identity });
    const d = await denial(src.dockerAuths(helperBinding, 'team-a', budget()));
    expect({ ...d, message: withPort(d.message) }).toEqual({
      name: 'DenialError',
      message:
        "acr-pull-webhook failed loading the webhook's own Alibaba Cloud credentials from rrsa (acs:ram::1:role/webhook): Unreachable. STS (the exchange of the webhook's RRSA token for credentials, AssumeRoleWithOIDC) could not be reached from the webhook: check its network and endpoint settings. Controllers (Deployments, Jobs, ...) create the Pod again by themselves; a Pod created directly can be created again",
      code: 503,
      reason: 'ServiceUnavailable',
    });
  });

  it('ECS RAM role: no metadata service (what the library meets outside Alibaba Cloud)', async () => {
    // The library's real HTTP call, to the refused loopback port instead of 100.100.100.200.
    const proto = ECSRAMRoleCredentialsProvider.prototype as unknown as { getCredentialsInternal: () => Promise<unknown> };
    const original = proto.getCredentialsInternal;
    const sent: string[] = [];
    vi.spyOn(proto, 'getCredentialsInternal').mockImplementation(function (this: { doRequest: unknown }) {
      this.doRequest = (req: { path: string; method: string }) => {
        sent.push(`${req.method} ${req.path}`);
        return libraryHttp.doRequest(Object.assign(Object.create(Object.getPrototypeOf(req) as object) as object, req, { url: `http://127.0.0.1:${port}${req.path}` }));
      };
      return original.call(this);
    });
    const src = new mod.AcrTokenSource({ ...refusedOptions(), identity: identityFromEnv({}) });
    const d = await denial(src.dockerAuths(helperBinding, 'team-a', budget()));
    expect(d).toEqual({
      name: 'DenialError',
      message:
        "acr-pull-webhook failed loading the webhook's own Alibaba Cloud credentials from ecs-ram-role: Unreachable. The ECS instance metadata service (100.100.100.200) that the webhook's ECS RAM role credentials come from could not be reached from the webhook: check its network and endpoint settings. Outside Alibaba Cloud ECS there is none: the cluster operator must configure ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET or RRSA instead. Controllers (Deployments, Jobs, ...) create the Pod again by themselves; a Pod created directly can be created again",
      code: 503,
      reason: 'ServiceUnavailable',
    });
    // The metadata token (its failure tolerated by the library), then the role name: refused, so no CR call (once
    // for the domain listing, once for the token: both need the credentials).
    expect(sent.sort()).toEqual(['GET /latest/meta-data/ram/security-credentials/', 'GET /latest/meta-data/ram/security-credentials/', 'PUT /latest/api/token', 'PUT /latest/api/token']);
  });

  it('credentials that load: the refused Container Registry call is named, Unreachable', async () => {
    // The instance's domains given (one call, not three racing to fail first).
    const d = await denial(refused().dockerAuths({ chain: {}, registries: [{ ...hangzhou, domains: ['registry.example.com'] }] }, 'team-a', budget()));
    expect({ ...d, message: withPort(d.message) }).toEqual({
      name: 'DenialError',
      message:
        'acr-pull-webhook failed getting a registry token for ACR instance cri-demo0000000001 in cn-hangzhou as the webhook\'s own identity: Unreachable. Container Registry (http://127.0.0.1:<port>) could not be reached from the webhook: check its network and endpoint settings. Controllers (Deployments, Jobs, ...) create the Pod again by themselves; a Pod created directly can be created again',
      code: 503,
      reason: 'ServiceUnavailable',
    });
  });

  function refusedOptions(): Options {
    caller = new rpc.CloudCaller({ backoffMs: 20, attemptTimeoutMs: 3000 });
    return {
      identity: staticIdentity('unused', { accessKeyId: 'a', accessKeySecret: 'b' }),
      endpoints: { sts: `https://127.0.0.1:${port}`, cr: () => `http://127.0.0.1:${port}` },
      caller,
      sessionDurationSeconds: 3600,
      refreshThresholdMs: 15 * 60_000,
    };
  }
});

describe('expiry', () => {
  it('a registry token shorter than its session keeps its own expiry', async () => {
    emu.state.settings.tokenTtlSeconds = 600;
    try {
      const auths = await source().dockerAuths({ chain: service(world), registries: [{ ...hangzhou, domains: ['registry.example.com'] }] }, 'team-a', budget());
      const issued = emu.state.registryTokens.get(auths.auths['registry.example.com']!.password)!;
      expect(auths.expiresAt).toBe(issued.expiresAt);
    } finally {
      emu.state.settings.tokenTtlSeconds = 3600;
    }
  });

  it('instance domains are listed again after 10 minutes', async () => {
    let offset = 0;
    const src = source({ now: () => Date.now() + offset });
    const binding: Binding = { chain: service(world), registries: [hangzhou] };
    await src.dockerAuths(binding, 'team-a', budget());
    offset = 9 * 60_000;
    await src.dockerAuths(binding, 'team-a', budget());
    expect(count('ListInstanceEndpoint')).toBe(1);
    offset = 11 * 60_000;
    await src.dockerAuths(binding, 'team-a', budget());
    expect(count('ListInstanceEndpoint')).toBe(2);
  });

  it('a workload\'s session is renewed at its expiry minus the threshold', async () => {
    let offset = 0;
    const src = source({ now: () => Date.now() + offset });
    const workload = {
      oidcProviderArn: world.demo.oidcProviderArn,
      token: makeOidcToken({ iss: world.demo.oidcIssuer, sub: world.demo.oidcSubject, aud: world.demo.oidcAudience, exp: Math.floor(Date.now() / 1000) + 600 }, world.demo.oidcSigningKey),
      issuer: world.demo.oidcIssuer,
      subject: world.demo.oidcSubject,
      audiences: [world.demo.oidcAudience],
      partition: 'p1',
    };
    // Each review asks for a registry not cached yet, so each needs the session.
    const with1 = (r: RegistryRef): Binding => ({ chain: service(world), registries: [r] });
    await src.dockerAuths(with1({ ...hangzhou, domains: ['registry.example.com'] }), 'team-a', budget(), workload);
    offset = 44 * 60_000;
    await src.dockerAuths(with1({ ...second, domains: ['demo-second-registry.cn-hangzhou.cr.aliyuncs.com'] }), 'team-a', budget(), workload);
    expect(count('AssumeRoleWithOIDC')).toBe(1);
    offset = 46 * 60_000;
    await src.dockerAuths(with1({ kind: 'personal', region: 'cn-hangzhou', domains: ['registry.cn-hangzhou.aliyuncs.com'] }), 'team-a', budget(), workload);
    expect(count('AssumeRoleWithOIDC')).toBe(2);
  });
});

describe('caches', () => {
  it('are named sts, token, instance and role; cachedEntries counts all four', async () => {
    const seen: [string, CacheOutcome][] = [];
    const src = source({ observeCache: (cache, outcome) => seen.push([cache, outcome]) });
    const binding: Binding = { chain: { serviceArn: world.demo.serviceRoleArn, userArn: world.demo.userRoleArn }, registries: [beijing()] };
    await src.dockerAuths(binding, 'team-a', budget());
    await src.dockerAuths(binding, 'team-a', budget());
    const tally: Record<string, number> = {};
    for (const [cache, outcome] of seen) tally[`${cache} ${outcome}`] = (tally[`${cache} ${outcome}`] ?? 0) + 1;
    expect(tally).toEqual({
      // First review: the two hops, the domains and the token miss, each through its group's health ('role');
      // the token's wait for the user session joins the domains' and then finds it cached.
      'role miss': 4,
      'sts miss': 2,
      'instance miss': 1,
      'token miss': 1,
      'role join': 1,
      'sts hit': 1,
      // Second: domains and token from the caches, through their healthy groups.
      'role hit': 2,
      'instance hit': 1,
      'token hit': 1,
    });
    expect(src.cachedEntries).toBe(8);
  });

  it('maxEntries bounds each cache', async () => {
    const src = source({ maxEntries: 1 });
    const one: Binding = { chain: service(world), registries: [{ ...hangzhou, domains: ['registry.example.com'] }] };
    const two: Binding = { chain: service(world), registries: [{ ...second, domains: ['demo-second-registry.cn-hangzhou.cr.aliyuncs.com'] }] };
    await src.dockerAuths(one, 'team-a', budget());
    await src.dockerAuths(two, 'team-a', budget());
    await src.dockerAuths(one, 'team-a', budget());
    expect(count('GetAuthorizationToken')).toBe(3);
  });

  it('a probe that ran out of time leaves no entry', async () => {
    const src = source();
    emu.injectHang({ action: 'GetAuthorizationToken' });
    await denial(src.dockerAuths({ chain: service(world), registries: [{ ...hangzhou, domains: ['registry.example.com'] }] }, 'team-a', budget(2000)));
    // The service session and its group's health; nothing for the token.
    expect(src.cachedEntries).toBe(2);
  });
});
