// The credential chain with the real pop-core client against the emulator: hops, caching, single-flight,
// deadlines, retries and the denial each cloud error becomes.
import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Binding } from '../../src/acr/model.js';
import { timeoutDenial } from '../../src/cloud/denials.js';
import { CloudCaller } from '../../src/cloud/rpc.js';
import { staticIdentity } from '../../src/cloud/identity.js';
import { AcrTokenSource } from '../../src/cloud/token-source.js';
import { roleSessionName } from '../../src/cloud/sts.js';
import { demoState, makeOidcToken, startEmulator, type DemoWorld, type Emulator } from '../../emulator/index.js';
import { DenialError } from '../../src/pull-secrets/types.js';

let emu: Emulator;
let world: DemoWorld;
let caller: CloudCaller;

beforeAll(async () => {
  world = demoState();
  emu = await startEmulator({ world });
});
afterAll(async () => {
  caller?.close();
  await emu.close();
});
afterEach(() => {
  emu.reset();
  caller?.close();
});

function source(opts: { now?: () => number; sessionDurationSeconds?: number; identitySecret?: string; negativeTtlMs?: number } = {}) {
  caller = new CloudCaller({ backoffMs: 20 });
  return new AcrTokenSource({
    identity: staticIdentity('test', { accessKeyId: world.demo.accessKeyId, accessKeySecret: opts.identitySecret ?? world.demo.accessKeySecret }),
    endpoints: { sts: emu.stsEndpoint, cr: (r) => emu.crEndpoint(r) },
    caller,
    sessionDurationSeconds: opts.sessionDurationSeconds ?? 3600,
    refreshThresholdMs: 15 * 60_000,
    now: opts.now,
    negativeTtlMs: opts.negativeTtlMs,
  });
}

const budget = (ms = 5000) => ({ deadline: Date.now() + ms });
const crossAccount = (): Binding => ({
  chain: { serviceArn: world.demo.serviceRoleArn, userArn: world.demo.userRoleArn },
  registries: [{ kind: 'instance', instanceId: world.demo.beijingInstanceId, region: 'cn-beijing' }],
});
const count = (action: string) => emu.calls.count({ action });

async function denial(p: Promise<unknown>): Promise<DenialError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DenialError) return e;
    throw e;
  }
  throw new Error('expected a denial');
}

describe('credential chain against the emulator', () => {
  it('cross-account chain: two AssumeRole hops, then a token for every domain of the instance', async () => {
    const auths = await source().dockerAuths(crossAccount(), 'team-a', budget());
    expect(Object.keys(auths.auths).sort()).toEqual([
      'demo-owner-registry-vpc.cn-beijing.cr.aliyuncs.com',
      'demo-owner-registry.cn-beijing.cr.aliyuncs.com',
    ]);
    const cred = Object.values(auths.auths)[0]!;
    expect(emu.state.registryTokens.get(cred.password)).toMatchObject({ instanceId: world.demo.beijingInstanceId, accountId: '6543210987654321' });
    expect(count('AssumeRole')).toBe(2);
    expect(count('GetAuthorizationToken')).toBe(1);
    // The audit trail names the namespace: the token was asked for by the user role's session acr-pull@team-a.
    const tokenCall = emu.calls.list({ action: 'GetAuthorizationToken' })[0]!;
    expect(tokenCall.principal).toContain('acr-pull@team-a');
    expect(auths.expiresAt).toBeLessThanOrEqual(Date.now() + 3600_000 + 1000);
  });

  it('a burst of 1,000 identical requests costs one call per hop and per instance API', async () => {
    emu.injectLatency(50);
    const src = source();
    const results = await Promise.all(Array.from({ length: 1000 }, () => src.dockerAuths(crossAccount(), 'team-a', budget())));
    expect(new Set(results.map((r) => JSON.stringify(r.auths))).size).toBe(1);
    expect(count('AssumeRole')).toBe(2);
    expect(count('GetAuthorizationToken')).toBe(1);
    expect(count('ListInstanceEndpoint')).toBe(1);
    expect(count('GetInstanceVpcEndpoint')).toBe(1);
  });

  it('serves from cache until expiry minus the threshold, then renews', async () => {
    let now = Date.now();
    const src = source({ now: () => now });
    await src.dockerAuths(crossAccount(), 'team-a', budget());
    now += 40 * 60_000; // 1 h tokens, 15 min threshold: still fresh at 40 min
    await src.dockerAuths(crossAccount(), 'team-a', budget());
    expect(count('GetAuthorizationToken')).toBe(1);
    now += 6 * 60_000; // 46 min: inside the threshold
    await src.dockerAuths(crossAccount(), 'team-a', budget());
    expect(count('GetAuthorizationToken')).toBe(2);
    expect(count('AssumeRole')).toBe(4);
  });

  it('a registry token never outlives the STS session that obtained it, in the Secret or in the cache', async () => {
    // A service that hands out 2 h tokens to a 30 min session: the webhook caps them itself.
    emu.state.settings.tokenOutlivesSession = true;
    emu.state.settings.tokenTtlSeconds = 7200;
    try {
      let now = Date.now();
      const src = source({ now: () => now, sessionDurationSeconds: 1800 });
      const t0 = Date.now();
      const auths = await src.dockerAuths(crossAccount(), 'team-a', budget());
      const issued = emu.state.registryTokens.get(Object.values(auths.auths)[0]!.password)!;
      expect(issued.expiresAt).toBeGreaterThan(t0 + 7000_000);
      expect(auths.expiresAt).toBeGreaterThan(t0 + 1790_000);
      expect(auths.expiresAt).toBeLessThanOrEqual(Date.now() + 1800_000 + 1000);
      // 16 min later (for the services too: new sessions expire 30 min from then) the session is inside the 15 min
      // threshold: the token it obtained is not served again.
      now += 16 * 60_000;
      emu.clock.advance(16 * 60_000);
      await src.dockerAuths(crossAccount(), 'team-a', budget());
      expect(count('GetAuthorizationToken')).toBe(2);
      expect(count('AssumeRole')).toBe(4);
    } finally {
      emu.state.settings.tokenOutlivesSession = false;
      emu.state.settings.tokenTtlSeconds = 3600;
    }
  });

  it('default domain: the instance is found by name with ListInstance', async () => {
    const auths = await source().dockerAuths(
      { chain: { serviceArn: world.demo.serviceRoleArn }, registries: [{ kind: 'instance-name', instanceName: 'demo', region: 'cn-hangzhou' }] },
      'team-a',
      budget(),
    );
    expect(Object.keys(auths.auths)).toEqual(expect.arrayContaining(['demo-registry.cn-hangzhou.cr.aliyuncs.com', 'registry.example.com']));
    expect(count('ListInstance')).toBe(1);
  });

  it('Personal Edition: ROA token for the hosts seen', async () => {
    const auths = await source().dockerAuths(
      { chain: { serviceArn: world.demo.serviceRoleArn }, registries: [{ kind: 'personal', region: 'cn-hangzhou', domains: ['registry.cn-hangzhou.aliyuncs.com'] }] },
      'team-a',
      budget(),
    );
    expect(Object.keys(auths.auths)).toEqual(['registry.cn-hangzhou.aliyuncs.com']);
    expect(emu.calls.count({ product: 'cr-personal' })).toBe(1);
  });

  it('operator-listed domains replace the endpoint lookup', async () => {
    const auths = await source().dockerAuths(
      { chain: { serviceArn: world.demo.serviceRoleArn }, registries: [{ kind: 'instance', instanceId: world.demo.hangzhouInstanceId, region: 'cn-hangzhou', domains: ['registry.example.com'] }] },
      'team-a',
      budget(),
    );
    expect(Object.keys(auths.auths)).toEqual(['registry.example.com']);
    expect(count('ListInstanceEndpoint')).toBe(0);
    expect(count('AssumeRole')).toBe(1);
  });

  it('the webhook\'s own identity without CR permission: a 403 that says which permission to grant', async () => {
    const d = await denial(
      source().dockerAuths({ chain: {}, registries: [{ kind: 'instance', instanceId: world.demo.hangzhouInstanceId, region: 'cn-hangzhou', domains: ['registry.example.com'] }] }, 'team-a', budget()),
    );
    expect(d.code).toBe(403);
    expect(d.message).toContain("as the webhook's own identity: NoPermission");
    expect(d.message).toContain('Grant cr:GetAuthorizationToken');
    expect(count('AssumeRole')).toBe(0);
  });

  it('a NoPermission names the RAM action of the step that was refused', async () => {
    const d = await denial(
      source().dockerAuths({ chain: {}, registries: [{ kind: 'instance-name', instanceName: 'demo', region: 'cn-hangzhou' }] }, 'team-a', budget()),
    );
    expect(d.code).toBe(403);
    expect(d.message).toContain("failed looking up the instance by name for ACR instance demo in cn-hangzhou as the webhook's own identity: NoPermission");
    expect(d.message).toContain('Grant cr:ListInstance (on all instances of the account) to that identity in RAM');
  });

  it('retries throttling while budget remains', async () => {
    emu.injectThrottle({ action: 'AssumeRole', times: 2 });
    await source().dockerAuths(crossAccount(), 'team-a', budget());
    expect(emu.calls.count({ action: 'AssumeRole', code: 'Throttling.User' })).toBe(2);
  });

  it('answers before the deadline when the cloud hangs', async () => {
    emu.injectHang({ action: 'GetAuthorizationToken' });
    const t0 = Date.now();
    const d = await denial(source().dockerAuths(crossAccount(), 'team-a', budget(1500)));
    expect(Date.now() - t0).toBeLessThan(1600);
    expect(d.code).toBe(503);
    expect(d.message).toContain(`timed out getting a registry token for ACR instance ${world.demo.beijingInstanceId} in cn-beijing`);
    expect(d.message).toContain(`Container Registry (${emu.crEndpoint('cn-beijing')}) did not answer before the admission deadline`);
  });

  it.each([
    ['STS AssumeRole', 503, { action: 'AssumeRole' }, 'ServiceUnavailable', 'assuming service role acs:ram::1234567890123456:role/acr-pull'],
    ['CR GetAuthorizationToken', 500, { action: 'GetAuthorizationToken' }, 'InternalError', 'getting a registry token for ACR instance cri-demo0000000002 in cn-beijing'],
  ] as const)('a %s %i is a transient service error of that step: 503, like throttling, and a retry will do', async (_name, status, target, code, step) => {
    emu.injectServerError(status, target);
    const d = await denial(source().dockerAuths(crossAccount(), 'team-a', budget(3000)));
    expect(d.code).toBe(503);
    expect(d.message).toContain(`acr-pull-webhook failed ${step}`);
    expect(d.message).toContain(`: ${code} (request ID `);
    expect(d.message).toContain('a transient Alibaba Cloud service error');
    expect(d.message).toContain('Controllers (Deployments, Jobs, ...) create the Pod again by themselves; a Pod created directly can be created again');
    // Throttling lands in the same status code family.
    emu.reset();
    emu.injectThrottle({ action: 'AssumeRole' });
    expect((await denial(source().dockerAuths(crossAccount(), 'team-b', budget(3000)))).code).toBe(503);
  });

  it('one throttled service role used from 20 namespaces makes a bounded number of AssumeRole calls', async () => {
    emu.injectThrottle({ action: 'AssumeRole' });
    const src = source();
    // A burst: every namespace waits for the first one's answer instead of calling (and retrying) STS itself.
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => denial(src.dockerAuths(crossAccount(), `ns-${i}`, budget()))));
    for (const d of burst) expect(d.message).toContain('assuming service role acs:ram::1234567890123456:role/acr-pull: Throttling.User');
    const afterBurst = count('AssumeRole');
    expect(afterBurst).toBeGreaterThan(0);
    expect(afterBurst).toBeLessThanOrEqual(4); // one namespace's attempts (the caller retries throttling 3 times)
    // Then one at a time: the failure is remembered for the role chain, not per namespace.
    for (let i = 20; i < 40; i++) await denial(src.dockerAuths(crossAccount(), `ns-${i}`, budget()));
    expect(count('AssumeRole')).toBe(afterBurst);
  });

  it('a role chain that worked and then fails: the failure is shared by the next namespaces too', async () => {
    const src = source();
    await src.dockerAuths(crossAccount(), 'team-a', budget());
    emu.injectThrottle({ action: 'AssumeRole' });
    const before = count('AssumeRole');
    await denial(src.dockerAuths(crossAccount(), 'team-b', budget()));
    const afterFirst = count('AssumeRole');
    expect(afterFirst - before).toBeLessThanOrEqual(4);
    for (const ns of ['team-c', 'team-d', 'team-e']) await denial(src.dockerAuths(crossAccount(), ns, budget()));
    expect(count('AssumeRole')).toBe(afterFirst);
  });

  it('a review that ran out of its own time is not remembered against the role for reviews with more time', async () => {
    emu.injectLatency(800, { action: 'AssumeRole', times: 1 });
    const src = source();
    const short = await denial(src.dockerAuths(crossAccount(), 'team-a', budget(400)));
    expect(short.reason).toBe('Timeout');
    expect(short.message).toContain('timed out assuming service role');
    await src.dockerAuths(crossAccount(), 'team-b', budget());
    await src.dockerAuths(crossAccount(), 'team-a', budget());
  });

  it('a role chain\'s failure is remembered briefly; successes keep one session per namespace', async () => {
    emu.injectThrottle({ action: 'AssumeRole', times: 4 });
    const src = source({ negativeTtlMs: 150 });
    await denial(src.dockerAuths(crossAccount(), 'team-a', budget()));
    await denial(src.dockerAuths(crossAccount(), 'team-b', budget()));
    await new Promise((r) => setTimeout(r, 200));
    await Promise.all(['team-a', 'team-b', 'team-c'].map((ns) => src.dockerAuths(crossAccount(), ns, budget())));
    // Two hops per namespace, each under the namespace's own RoleSessionName (the owner's audit trail).
    expect(count('AssumeRole')).toBe(4 + 6);
    const principals = emu.calls.list({ action: 'GetAuthorizationToken' }).map((c) => c.principal);
    for (const ns of ['team-a', 'team-b', 'team-c']) expect(principals.some((p) => p?.endsWith(`/acr-pull@${ns}`))).toBe(true);
  });

  it('maps a second hop that is not trusted to a message about the trust policy, and caches the failure briefly', async () => {
    // The user role trusts only acr-pull; a second service role in the same account is not trusted.
    world.accounts[0]!.roles!.push({ name: 'other', maxSessionDuration: 3600, trust: [{ account: '1234567890123456' }], permissions: { assumeRole: '*' } });
    world.accounts[0]!.users![0]!.permissions = { assumeRole: '*' };
    const src = source();
    const binding: Binding = { ...crossAccount(), chain: { serviceArn: 'acs:ram::1234567890123456:role/other', userArn: world.demo.userRoleArn } };
    const d = await denial(src.dockerAuths(binding, 'team-a', budget()));
    expect(d.code).toBe(403);
    expect(d.message).toContain('failed assuming user role acs:ram::6543210987654321:role/acr-pull-user with service role acs:ram::1234567890123456:role/other: NoPermission');
    expect(d.message).toContain("user role's trust policy must name the service role");
    const calls = count('AssumeRole');
    await denial(src.dockerAuths(binding, 'team-a', budget()));
    expect(count('AssumeRole')).toBe(calls);
  });

  it.each([
    ['a role that does not exist', { serviceArn: 'acs:ram::1234567890123456:role/nope' }, 'EntityNotExist.Role', 403],
    ['an instance that does not exist', { serviceArn: 'acs:ram::1234567890123456:role/acr-pull' }, 'INSTANCE_NOT_EXIST', 400],
  ])('maps %s', async (_name, chain, code, status) => {
    const d = await denial(
      source().dockerAuths({ chain, registries: [{ kind: 'instance', instanceId: 'cri-doesnotexist0001', region: 'cn-hangzhou' }] }, 'team-a', budget()),
    );
    expect(d.code).toBe(status);
    expect(d.message).toContain(code);
  });

  it('a rejected identity is the operator\'s problem, not the user\'s', async () => {
    const d = await denial(source({ identitySecret: 'wrong-secret' }).dockerAuths(crossAccount(), 'team-a', budget()));
    expect(d.code).toBe(500);
    expect(d.message).toContain('SignatureDoesNotMatch');
    expect(d.message).not.toContain('string to sign');
  });

  it("a cached token costs no hop: the front end's own identity is only loaded on a miss", async () => {
    caller = new CloudCaller({ backoffMs: 20 });
    let loads = 0;
    const creds = { accessKeyId: 'LTAI5tChainNoHop000001', accessKeySecret: 'chain-no-hop-secret-000000001' };
    world.accounts[0]!.users!.push({ name: 'puller', accessKeys: [{ id: creds.accessKeyId, secret: creds.accessKeySecret }], permissions: { crGetAuthorizationToken: '*', crReadInstance: '*' } });
    const src = new AcrTokenSource({
      identity: { source: 'counting', credentials: async () => (loads++, creds) },
      endpoints: { sts: emu.stsEndpoint, cr: (r) => emu.crEndpoint(r) },
      caller,
      sessionDurationSeconds: 3600,
      refreshThresholdMs: 15 * 60_000,
    });
    // No role: the chain is the identity itself, which used to be loaded on every call.
    const binding: Binding = { chain: {}, registries: [{ kind: 'instance', instanceId: world.demo.hangzhouInstanceId, region: 'cn-hangzhou', domains: ['registry.example.com'] }] };
    await src.dockerAuths(binding, 'team-a', budget());
    // The first fetch may take a retry on a loaded machine; the second must cost no call at all.
    const first = count('GetAuthorizationToken');
    const loadsFirst = loads;
    expect(first).toBeGreaterThanOrEqual(1);
    await src.dockerAuths(binding, 'team-a', budget());
    expect(count('GetAuthorizationToken')).toBe(first);
    expect(loads).toBe(loadsFirst);
    expect(loadsFirst).toBeGreaterThanOrEqual(1);
  });

  it('workload identity: the service hop is AssumeRoleWithOIDC with the token, unsigned; sessions are per token subject', async () => {
    const key = world.demo.oidcSigningKey;
    const jwt = (sub: string) => makeOidcToken({ iss: world.demo.oidcIssuer, sub, aud: world.demo.oidcAudience, exp: Math.floor(Date.now() / 1000) + 600 }, key);
    const workload = (sub: string) => ({
      oidcProviderArn: world.demo.oidcProviderArn,
      token: jwt(sub),
      issuer: world.demo.oidcIssuer,
      subject: sub,
      audiences: [world.demo.oidcAudience],
      partition: `${world.demo.oidcIssuer}|${sub}|uid`,
    });
    const src = source();
    const auths = await src.dockerAuths(crossAccount(), 'acr-pull-webhook', budget(), workload(world.demo.oidcSubject));
    expect(Object.keys(auths.auths)).toContain('demo-owner-registry.cn-beijing.cr.aliyuncs.com');
    expect(count('AssumeRoleWithOIDC')).toBe(1);
    expect(emu.calls.byCaller().anonymous).toBe(1);
    expect(count('AssumeRole')).toBe(1);
    // Not trusted for another subject: the denial names the trust conditions to add.
    const d = await denial(src.dockerAuths(crossAccount(), 'team-b', budget(), workload('system:serviceaccount:team-b:app')));
    expect(d.code).toBe(403);
    expect(d.message).toContain(`assuming service role ${world.demo.serviceRoleArn} with the token of ServiceAccount team-b/app (AssumeRoleWithOIDC): AuthenticationFail.NoPermission`);
    expect(d.message).toContain('oidc:sub = system:serviceaccount:team-b:app');
    expect(count('AssumeRoleWithOIDC')).toBe(2);
  });

  it('RoleSessionName is 2-64 of [A-Za-z0-9.@_-] and distinct for long namespaces', () => {
    const hash = (s: string) => createHash('sha256').update(s).digest('hex');
    expect(roleSessionName('team-a', hash)).toBe('acr-pull@team-a');
    const a = roleSessionName('x'.repeat(63), hash);
    const b = roleSessionName(`${'x'.repeat(62)}y`, hash);
    expect(a).toMatch(/^[A-Za-z0-9.@_-]{2,64}$/);
    expect(a).not.toBe(b);
  });
});

describe('endpoints in denials', () => {
  it('show scheme, host and path only, never userinfo or a query', () => {
    const d = timeoutDenial({ kind: 'assume-service', roleArn: 'acs:ram::1:role/x', endpoint: 'https://user:s3cret@sts.example.com/sts?token=abc' });
    expect(d.message).toContain('STS (https://sts.example.com/sts) did not answer');
    expect(d.message).not.toMatch(/s3cret|token=abc/);
  });
});
