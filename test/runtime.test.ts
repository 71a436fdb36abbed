// createRuntime in-process with stand-in cluster parts: the caches it waits for (by name), what start and stop do
// to them, the generated send condition and when it is recomputed, the credential helper's failure paths (Event,
// metric) and the namespace rule it is given.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { vi } from 'vitest';
import type { ConfigMapData } from '../src/kube/config-map-watch.js';
import type { Desired } from '../src/kube/webhook-conditions.js';
import { recordingLogger } from './support/recording-logger.js';
import { startEmulator, type Emulator, type WorldSpec } from '../emulator/index.js';
import type { Endpoints } from '../src/cloud/endpoints.js';
import { staticIdentity } from '../src/cloud/identity.js';

// The emulator's account: the webhook's own user may assume roles, read roles and list instances, but gets no
// registry token with its own identity (so every renewal through the own identity fails at once, NoPermission).
const A = '1609982529000001';
const KEY = { accessKeyId: 'LTAI5tRuntimeKey00000001', accessKeySecret: 'runtime-secret-000000000000000' };
const ECI_ROLE = `acs:ram::${A}:role/role-assume`;
const PULLER = `acs:ram::${A}:role/puller`;
const OWN_INSTANCE = 'cri-own0000000000001';
const WORLD: WorldSpec = {
  accounts: [
    {
      id: A,
      users: [{ name: 'webhook', accessKeys: [{ id: KEY.accessKeyId, secret: KEY.accessKeySecret }], permissions: { assumeRole: '*', ramGetRole: '*', crReadInstance: '*' } }],
      roles: [
        { name: 'role-assume', trust: [{ service: 'eci.aliyuncs.com' }], permissions: { crGetAuthorizationToken: '*' } },
        { name: 'puller', trust: [{ user: `acs:ram::${A}:user/webhook` }], permissions: { crGetAuthorizationToken: '*', crReadInstance: '*' } },
      ],
    },
  ],
  instances: [{ id: OWN_INSTANCE, name: 'own', region: 'cn-hangzhou', accountId: A }],
};

type RuntimeMod = typeof import('../src/runtime.js');
let createRuntime: RuntimeMod['createRuntime'];
let parseConfig: typeof import('../src/config/config.js')['parseConfig'];
let Metrics: typeof import('../src/metrics.js')['Metrics'];
let MemorySecretStore: typeof import('../src/pull-secrets/memory-store.js')['MemorySecretStore'];
let buildPullSecret: typeof import('../src/pull-secrets/docker-config.js')['buildPullSecret'];
let AlwaysLeader: typeof import('../src/pull-secrets/leadership.js')['AlwaysLeader'];

const ANNOTATED = { namespace: 'ns1', name: 'sa1', vendorAnnotations: { 'k8s.aliyun.com/acr-instance-id': 'cri-x' } };

function harness(withMetrics = true, sts = 'http://127.0.0.1:9', more: { endpoints?: Endpoints; doc?: unknown; referenced?: string[] } = {}) {
  const { logger, lines } = recordingLogger();
  const metrics = withMetrics ? new Metrics({ defaultMetrics: false }) : undefined;
  let cm: ConfigMapData | undefined;
  let rv = 0;
  const cmListeners: Array<() => void> = [];
  const put = (data: Record<string, string>) => {
    cm = { namespace: 'kube-system', name: 'acr-configuration', uid: 'u', resourceVersion: String(++rv), data };
    for (const l of cmListeners) l();
  };
  const state = { nsSynced: false, saSynced: false, cmSynced: false };
  const calls: string[] = [];
  const accounts: Array<typeof ANNOTATED> = [];
  const saListeners: Array<() => void> = [];
  let desired: (() => Desired) | undefined;
  const indexes: unknown[] = [];
  const config = parseConfig(more.doc ?? {}, { ownNamespace: 'acr-pull-webhook', regionFromEnv: 'cn-hangzhou' });
  const store = new MemorySecretStore();
  const runtime = createRuntime({
    ...(metrics ? { metrics } : {}),
    config,
    identity: more.endpoints ? staticIdentity('test', KEY) : { source: 'test', credentials: async () => ({ accessKeyId: 'a', accessKeySecret: 'b' }) },
    endpoints: more.endpoints ?? { sts, cr: () => 'http://127.0.0.1:9' },
    ownNamespace: 'acr-pull-webhook',
    logger,
    onIndex: (i) => indexes.push(i),
    isExcludedNamespace: (ns) => ns === 'kube-system',
    cluster: {
      store,
      leader: new AlwaysLeader(),
      usage: { referenced: async () => new Set<string>(more.referenced ?? []) },
      namespaces: { name: 'namespaces', labels: () => ({}), start: async () => {}, stop: async () => {}, synced: () => state.nsSynced },
      serviceAccounts: {
        list: () => accounts,
        get: () => undefined,
        synced: () => state.saSynced,
        addPullSecrets: async () => {},
        recordEvent: async (sa, type, reason, message) => void calls.push(`sa event ${sa.namespace}/${sa.name} ${type} ${reason}: ${message}`),
        start: async () => void calls.push('sa start'),
        stop: async () => void calls.push('sa stop'),
        onEvent: (l) => void saListeners.push(() => l({ type: 'ADDED' } as never)),
      },
      webhookConditions: { start: (d) => void (desired = d), stop: () => void calls.push('conditions stop') },
      helperConfigMap: {
        location: 'kube-system/acr-configuration',
        current: () => cm,
        onChange: (l) => void cmListeners.push(l),
        synced: () => state.cmSynced,
        start: async () => void calls.push('cm start'),
        stop: async () => void calls.push('cm stop'),
        recordEvent: async (c, type, reason, message) => void calls.push(`cm event ${c.namespace}/${c.name} ${type} ${reason}: ${message}`),
      },
    },
  });
  return { runtime, store, metrics, lines, put, state, calls, accounts, saEvent: () => saListeners.forEach((l) => l()), desired: () => desired!(), indexes, config, setCm: (data: Record<string, string>) => (cm = { namespace: 'kube-system', name: 'acr-configuration', uid: 'u', resourceVersion: String(++rv), data }) };
}

const counter = async (metrics: InstanceType<typeof Metrics>, name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values.filter((v) => v.value > 0).map((v) => [v.labels, v.value]);

describe('createRuntime', () => {
  let stops: Array<() => Promise<void>>;
  beforeEach(async () => {
    vi.resetModules();
    ({ createRuntime } = await import('../src/runtime.js'));
    ({ parseConfig } = await import('../src/config/config.js'));
    ({ Metrics } = await import('../src/metrics.js'));
    ({ MemorySecretStore } = await import('../src/pull-secrets/memory-store.js'));
    ({ AlwaysLeader } = await import('../src/pull-secrets/leadership.js'));
    ({ buildPullSecret } = await import('../src/pull-secrets/docker-config.js'));
    stops = [];
  });
  afterEach(async () => {
    vi.useRealTimers();
    for (const s of stops) await s();
  });

  it('waits for every cache by name; start reads the helper ConfigMap once it is loaded; stop stops each', async () => {
    const h = harness();
    expect(h.runtime.caches.pending()).toEqual(['secrets', 'namespaces', 'serviceaccounts', 'credential helper ConfigMap']);
    h.setCm({ 'service-account': 'default', 'watch-namespace': 'all', 'acr-registry-info': '- instanceId: cri-demo0000000001' });
    h.runtime.start();
    stops.push(() => h.runtime.stop());
    expect(h.desired()).toBe('unknown');
    Object.assign(h.state, { nsSynced: true, saSynced: true, cmSynced: true });
    await h.runtime.caches.whenSynced();
    expect(h.calls.slice(0, 2)).toEqual(['sa start', 'cm start']);
    expect(h.runtime.credentialHelper()?.covers('ns1', 'default')).toBe(true);
    // The namespace rule it was given ends the helper's scope.
    expect(h.runtime.credentialHelper()?.covers('kube-system', 'default')).toBe(false);
    await vi.waitFor(() => expect(h.lines.filter((l) => l[2] === 'ready: every cache has synced')).toEqual([['info', { ms: expect.any(Number) }, 'ready: every cache has synced']]), { timeout: 2000 });
    stops.pop();
    await h.runtime.stop();
    expect(h.calls).toEqual(['sa start', 'cm start', 'conditions stop', 'sa stop', 'cm stop']);
  });

  it('the send condition: recomputed when a ServiceAccount, the helper or the registry index changed, else the same', async () => {
    const h = harness();
    Object.assign(h.state, { nsSynced: true, saSynced: true, cmSynced: true });
    h.runtime.start();
    stops.push(() => h.runtime.stop());
    await h.runtime.caches.whenSynced();
    const plain = h.desired();
    expect(plain).not.toBe('unknown');
    expect(h.desired()).toBe(plain);
    const plainText = (plain as { expression: string }).expression;
    // A ServiceAccount changes only with its event.
    h.accounts.push(ANNOTATED);
    expect(h.desired()).toBe(plain);
    h.saEvent();
    const withSa = h.desired() as { expression: string };
    expect(withSa.expression).toContain("in {'ns1/sa1': true}");
    expect(h.desired()).toBe(withSa);
    // A helper (every valid one has at least one credential chain) adds its ServiceAccount test.
    h.put({ 'service-account': 'default' });
    const helper = h.desired() as { expression: string };
    expect(helper.expression).toContain(" || (request.namespace in {'default': true} && (has(object.spec.serviceAccountName)");
    expect(withSa.expression).not.toContain("request.namespace in {'default': true}");
    expect(plainText).not.toContain("'ns1/sa1'");
    // A new registry index (configuration reloaded): recomputed, and the caller told.
    const told = h.indexes.length;
    h.runtime.discovery.setConfig(h.config);
    expect(h.indexes.length).toBe(told + 1);
    expect(h.indexes[told]).toBe(h.runtime.discovery.current);
    const again = h.desired();
    expect(again).not.toBe(helper);
    expect(again).toEqual(helper);
  });

  it('a bad helper ConfigMap: Warning Event on it and the config failure metric', async () => {
    const h = harness();
    h.put({ 'expiring-threshold': 'soon' });
    expect(h.calls).toEqual([
      'cm event kube-system/acr-configuration Warning InvalidConfiguration: acr-pull-webhook cannot use this ConfigMap: kube-system/acr-configuration: expiring-threshold: expected a duration such as 15m or 1h, got "soon"',
    ]);
    expect(await counter(h.metrics!, 'acr_webhook_credential_helper_failures_total')).toEqual([[{ stage: 'config' }, 1]]);
  });

  it('without metrics: a bad ConfigMap and a helper failure at admission still go through', async () => {
    const h = harness(false);
    h.put({ 'expiring-threshold': 'soon' });
    h.runtime.reportHelperFailure({ namespace: 'ns1', serviceAccount: 'sa1', secret: 'acr-pull-x', error: 'boom' } as never);
    expect(h.calls.length).toBe(2);
  });

  it('a helper Secret not ready at admission: metric, warning, Event on the ServiceAccount', async () => {
    const h = harness();
    h.runtime.reportHelperFailure({ namespace: 'ns1', serviceAccount: 'sa1', secret: 'acr-pull-x', error: 'boom' } as never);
    expect(await counter(h.metrics!, 'acr_webhook_credential_helper_failures_total')).toEqual([[{ stage: 'secret' }, 1]]);
    expect(h.calls).toEqual([
      'sa event ns1/sa1 Warning PullSecretNotReady: acr-pull-webhook (acr-configuration) could not prepare the pull Secret acr-pull-x at admission: boom; the reference is in place and the webhook keeps trying',
    ]);
  });

  it('without the namespace rule, the helper covers every namespace its scope names', async () => {
    const { logger } = recordingLogger();
    let cm: ConfigMapData | undefined = { namespace: 'kube-system', name: 'acr-configuration', uid: 'u', resourceVersion: '1', data: { 'service-account': 'default', 'watch-namespace': 'all', 'acr-registry-info': '- instanceId: cri-demo0000000001' } };
    const runtime = createRuntime({
      config: parseConfig({}, { ownNamespace: 'acr-pull-webhook', regionFromEnv: 'cn-hangzhou' }),
      identity: { source: 'test', credentials: async () => ({ accessKeyId: 'a', accessKeySecret: 'b' }) },
      endpoints: { sts: 'http://127.0.0.1:9', cr: () => 'http://127.0.0.1:9' },
      ownNamespace: 'acr-pull-webhook',
      logger,
      cluster: {
        store: new MemorySecretStore(),
        leader: new AlwaysLeader(),
        usage: { referenced: async () => new Set<string>() },
        namespaces: { name: 'namespaces', labels: () => ({}), start: async () => {}, stop: async () => {}, synced: () => true },
        serviceAccounts: { list: () => [], get: () => undefined, synced: () => true, addPullSecrets: async () => {}, recordEvent: async () => {}, start: async () => {}, stop: async () => {}, onEvent: () => {} },
        helperConfigMap: { location: 'kube-system/acr-configuration', current: () => cm, onChange: () => {}, synced: () => true, start: async () => {}, stop: async () => {}, recordEvent: async () => {} },
      },
    });
    runtime.caches.start();
    await runtime.caches.whenSynced();
    await vi.waitFor(() => expect(runtime.credentialHelper()).toBeDefined(), { timeout: 2000 });
    expect(runtime.credentialHelper()!.covers('kube-system', 'default')).toBe(true);
    cm = undefined;
    await runtime.caches.stop();
  });

  it('the soonest token expiry, read at scrape time from the managed Secrets', async () => {
    const h = harness();
    expect(h.metrics!.soonestTokenExpiry()).toBe(undefined);
    const T0 = Date.parse('2030-01-01T00:00:00Z');
    const binding = { chain: {}, registries: [{ kind: 'instance', instanceId: 'cri-x', region: 'cn-hangzhou' }] } as const;
    for (const [name, at] of [['acr-pull-a', T0 + 7_200_000], ['acr-pull-b', T0 + 3_600_000], ['acr-pull-c', T0 + 5_400_000]] as const) {
      await h.store.create(buildPullSecret({ namespace: 'apps', name, requester: 'apps', binding } as never, { auths: { 'a.cr.aliyuncs.com': { username: 'u', password: 'p' } }, expiresAt: at }, { now: T0 }));
    }
    expect(h.metrics!.soonestTokenExpiry()).toBe(T0 + 3_600_000);
  });

  it('standalone, without metrics or an index listener: reloads and helper failures go through', async () => {
    const { logger } = recordingLogger();
    const config = parseConfig({}, { ownNamespace: 'acr-pull-webhook', regionFromEnv: 'cn-hangzhou' });
    const runtime = createRuntime({
      config,
      identity: { source: 'test', credentials: async () => ({ accessKeyId: 'a', accessKeySecret: 'b' }) },
      endpoints: { sts: 'http://127.0.0.1:9', cr: () => 'http://127.0.0.1:9' },
      ownNamespace: 'acr-pull-webhook',
      logger,
    });
    const before = runtime.discovery.current;
    runtime.discovery.setConfig(config);
    expect(runtime.discovery.current).not.toBe(before);
    expect(() => runtime.reportHelperFailure({ namespace: 'ns1', serviceAccount: 'sa1', secret: 'acr-pull-x', error: 'boom' } as never)).not.toThrow();
    expect(runtime.serviceAccount).toBe(undefined);
    // Nothing of the cluster to stop (no ServiceAccount sync either): stop still resolves.
    runtime.start();
    await expect(runtime.stop()).resolves.toBe(undefined);
  });

  it.each([
    [200, { AccountId: '123', Arn: 'acs:ram::123:user/me', IdentityType: 'RAMUser', RequestId: 'r1' }, 'ok', ['info', { principal: 'acs:ram::123:user/me', trustAs: 'acs:ram::123:user/me' }, "the webhook's own Alibaba Cloud principal"]],
    [404, { Code: 'InvalidAccessKeyId.NotFound', Message: 'no such key', RequestId: 'r2' }, 'InvalidAccessKeyId.NotFound', ['warn', {}, "GetCallerIdentity failed: denials will not name the webhook's principal until it succeeds"]],
  ])('start looks up its own principal once (STS answers %i): logged, the call observed', async (status, answer, code, line) => {
    const server = createServer((_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    stops.push(() => new Promise((r) => server.close(() => r())));
    const h = harness(true, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    Object.assign(h.state, { nsSynced: true, saSynced: true, cmSynced: true });
    h.runtime.start();
    stops.push(() => h.runtime.stop());
    const info = "the webhook's own Alibaba Cloud principal";
    const warning = "GetCallerIdentity failed: denials will not name the webhook's principal until it succeeds";
    const principalLines = () => h.lines.filter((l) => l[2] === info || l[2] === warning);
    await vi.waitFor(() => expect(principalLines().length).toBe(1), { timeout: 5000, interval: 10 });
    expect(principalLines()).toEqual([line]);
    const calls = (await h.metrics!.registry.getSingleMetric('acr_webhook_cloud_call_duration_seconds')!.get()).values.filter((v) => (v as { metricName?: string }).metricName?.endsWith('_count') && v.value > 0);
    expect(calls.map((v) => [v.labels, v.value])).toEqual([[{ api: 'GetCallerIdentity', code }, 1]]);
  });

  // Timers and Date under the test's control; everything else (sockets, setImmediate) real.
  const FAKE = { toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] } as const;

  it('the collector keeps a Secret the cluster says is in use, and deletes an unused one once idle', async () => {
    vi.useFakeTimers({ toFake: [...FAKE.toFake] });
    const h = harness(true, undefined, { doc: { secrets: { idleTimeout: '1m' } }, referenced: ['apps/acr-pull-used'] });
    const binding = { chain: {}, registries: [{ kind: 'instance', instanceId: 'cri-x', region: 'cn-hangzhou' }] } as const;
    for (const name of ['acr-pull-used', 'acr-pull-idle']) {
      // Valid for a day: nothing for the refresher to do.
      await h.store.create(buildPullSecret({ namespace: 'apps', name, requester: 'apps', binding } as never, { auths: { 'a.cr.aliyuncs.com': { username: 'u', password: 'p' } }, expiresAt: Date.now() + 86_400_000 }, { now: Date.now() }));
    }
    Object.assign(h.state, { nsSynced: true, saSynced: true, cmSynced: true });
    h.runtime.start();
    stops.push(() => h.runtime.stop());
    // Passes 10 s after start, then every 30 s: the one at 70 s finds the unused Secret idle for over a minute.
    for (let i = 0; i < 9; i++) await vi.advanceTimersByTimeAsync(10_000);
    expect(h.store.get('apps', 'acr-pull-idle')).toBe(undefined);
    expect(h.store.get('apps', 'acr-pull-used')).toBeDefined();
    expect(h.lines.filter((l) => l[2] === 'deleted idle pull Secret').map((l) => l[1])).toEqual([{ namespace: 'apps', name: 'acr-pull-idle', idleMs: 60_000 }]);
  });

  it('the principal look-up at start gives up at its 10 s deadline when STS never answers', async () => {
    let requests = 0;
    let wake: (() => void) | undefined;
    const server = createServer(() => {
      requests++;
      wake?.();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    // Resolves once STS has received its n-th request (the client's read timer is armed by then).
    const received = (n: number) =>
      new Promise<void>((r) => {
        const check = () => (requests >= n ? r() : void (wake = check));
        check();
      });
    vi.useFakeTimers({ toFake: [...FAKE.toFake] });
    const h = harness(true, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    stops.push(async () => {
      await h.runtime.stop();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    });
    const warning = "GetCallerIdentity failed: denials will not name the webhook's principal until it succeeds";
    const principalLines = () => h.lines.filter((l) => l[2] === warning || l[2] === "the webhook's own Alibaba Cloud principal");
    h.runtime.start();
    await received(1);
    // The first attempt has 5 s (the per-attempt limit), then a pause of at most 150 ms.
    await vi.advanceTimersByTimeAsync(5_000);
    expect(principalLines()).toEqual([]);
    await vi.advanceTimersByTimeAsync(200);
    // The second gets what is left of the 10 s, and nothing is left after it.
    await received(2);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(principalLines()).toEqual([['warn', {}, warning]]);
    expect(requests).toBe(2);
    const calls = (await h.metrics!.registry.getSingleMetric('acr_webhook_cloud_call_duration_seconds')!.get()).values.filter((v) => (v as { metricName?: string }).metricName?.endsWith('_count') && v.value > 0);
    expect(calls.map((v) => [v.labels, v.value])).toEqual([[{ api: 'GetCallerIdentity', code: 'Timeout' }, 2]]);
  });

  describe('against the emulator', () => {
    let emu: Emulator;
    beforeAll(async () => {
      emu = await startEmulator({ world: structuredClone(WORLD) });
    });
    afterAll(async () => {
      await emu.close();
    });
    afterEach(() => emu.reset());
    const endpoints = (): Endpoints => ({ sts: emu.stsEndpoint, ram: emu.ramEndpoint, cr: (r) => emu.crEndpoint(r) });
    const gauge = async (metrics: InstanceType<typeof Metrics>, name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values.map((v) => [v.labels, v.value]);
    const due = (namespace: string, name: string, expiresAt: number, instanceId = OWN_INSTANCE) =>
      buildPullSecret(
        { namespace, name, requester: namespace, binding: { chain: {}, registries: [{ kind: 'instance', instanceId, region: 'cn-hangzhou' }] } } as never,
        { auths: { 'own-registry.cn-hangzhou.cr.aliyuncs.com': { username: 'u', password: 'p' } }, expiresAt },
        { now: Date.now() - 3_600_000 },
      );

    it('discovery reports what it found, when it last succeeded and each failed call to the metrics', async () => {
      const h = harness(true, undefined, { endpoints: endpoints(), doc: { discovery: { enabled: true, regions: ['cn-hangzhou'] } } });
      const before = Date.now();
      await h.runtime.discovery.refresh();
      const after = Date.now();
      expect(await gauge(h.metrics!, 'acr_webhook_discovered_instances')).toEqual([[{}, 1]]);
      const [[, at]] = (await gauge(h.metrics!, 'acr_webhook_discovery_last_success_timestamp_seconds')) as [[unknown, number]];
      expect(at).toBeGreaterThanOrEqual(Math.floor(before / 1000));
      expect(at).toBeLessThanOrEqual(after / 1000);
      expect(await counter(h.metrics!, 'acr_webhook_discovery_errors_total')).toEqual([]);
      emu.inject({ kind: 'error', status: 403, code: 'NoPermission' }, { action: 'ListInstance' });
      await h.runtime.discovery.refresh();
      expect(await counter(h.metrics!, 'acr_webhook_discovery_errors_total')).toEqual([[{ step: 'list', code: 'NoPermission' }, 1]]);
      // A failed refresh keeps what was known, and the time of the last success.
      expect(await gauge(h.metrics!, 'acr_webhook_discovered_instances')).toEqual([[{}, 1]]);
      expect(await gauge(h.metrics!, 'acr_webhook_discovery_last_success_timestamp_seconds')).toEqual([[{}, at]]);
    });

    // A runtime with synced caches that has written apps/acr-pull-apps through its manager (the role PULLER, own instance).
    const writeThroughManager = async (withMetrics: boolean) => {
      const h = harness(withMetrics, undefined, { endpoints: endpoints() });
      Object.assign(h.state, { nsSynced: true, saSynced: true, cmSynced: true });
      h.runtime.caches.start();
      stops.push(() => h.runtime.caches.stop());
      await h.runtime.caches.whenSynced();
      const spec = { namespace: 'apps', name: 'acr-pull-apps', requester: 'apps', binding: { chain: { serviceArn: PULLER }, registries: [{ kind: 'instance', instanceId: OWN_INSTANCE, region: 'cn-hangzhou' }] } };
      await h.runtime.manager.ensure(spec as never, { deadline: Date.now() + 5000 });
      expect(h.store.get('apps', 'acr-pull-apps')).toBeDefined();
      return h;
    };

    it('a pull Secret written through the manager: the write and the token caches counted', async () => {
      const h = await writeThroughManager(true);
      expect(await counter(h.metrics!, 'acr_webhook_secret_writes_total')).toEqual([[{ operation: 'create', outcome: 'ok' }, 1]]);
      // First look-ups of a registry token and of the instance's domains: misses.
      expect(await counter(h.metrics!, 'acr_webhook_cache_total')).toEqual(
        expect.arrayContaining([
          [{ cache: 'token', outcome: 'miss' }, 1],
          [{ cache: 'instance', outcome: 'miss' }, 1],
        ]),
      );
    });

    it('a refused role: the denial carries the explainer\'s advice (principal from STS, trust policy from RAM)', async () => {
      const h = harness(true, undefined, { endpoints: endpoints() });
      const e = (await h.runtime.tokens
        .dockerAuths({ chain: { serviceArn: ECI_ROLE }, registries: [{ kind: 'instance', instanceId: OWN_INSTANCE, region: 'cn-hangzhou' }] }, 'team-a', { deadline: Date.now() + 5000 })
        .catch((x: unknown) => x)) as Error;
      expect(e.name).toBe('DenialError');
      expect(e.message).toContain('The role trusts only the Alibaba Cloud service eci.aliyuncs.com');
      expect(e.message).toContain(`The webhook is not ECI; it is the RAM user acs:ram::${A}:user/webhook`);
      expect(emu.calls.count({ action: 'GetCallerIdentity' })).toBe(1);
      expect(emu.calls.count({ action: 'GetRole' })).toBe(1);
      // The explainer the runtime hands out is the one that answered: it keeps the principal.
      await expect(h.runtime.explainer.principal({ deadline: Date.now() + 5000 })).resolves.toMatchObject({ arn: `acs:ram::${A}:user/webhook` });
      expect(emu.calls.count({ action: 'GetCallerIdentity' })).toBe(1);
    });

    it('the refresher counts failed renewals only (not Secrets it cannot read), and stop waits for its pass', async () => {
      const h = harness(true, undefined, { endpoints: endpoints(), doc: { secrets: { refreshInterval: '40ms' } } });
      // Due: written an hour ago, it expires within the refresh threshold (15m). The other one has lost its binding.
      await h.store.create(due('apps', 'acr-pull-due', Date.now() + 5 * 60_000));
      const broken = due('apps', 'acr-pull-broken', Date.now() + 5 * 60_000);
      delete broken.metadata.annotations![Object.keys(broken.metadata.annotations!).find((k) => k.endsWith('/binding'))!];
      await h.store.create(broken);
      Object.assign(h.state, { nsSynced: true, saSynced: true, cmSynced: true });
      h.runtime.start();
      stops.push(() => h.runtime.stop());
      await vi.waitFor(() => expect(h.store.events.map((e) => `${e.name} ${e.reason}`).sort()).toEqual(['acr-pull-broken RefreshSkipped', 'acr-pull-due RefreshFailed']), { timeout: 4000, interval: 10 });
      expect(await counter(h.metrics!, 'acr_webhook_refresh_failures_total')).toEqual([[{}, 1]]);
      // A pass in flight when stop is called: stop returns once it is over (its failure counted).
      // (Another instance, not in the emulator: the token source remembers the first refusal for a while.)
      // The pass is held at that Secret's Event until stop has had every chance to return without it.
      const record = h.store.recordEvent.bind(h.store);
      let reached!: () => void;
      const atEvent = new Promise<void>((r) => (reached = r));
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      h.store.recordEvent = async (secret, type, reason, message) => {
        if (secret.metadata.name === 'acr-pull-slow') {
          reached();
          await gate;
        }
        return record(secret, type, reason, message);
      };
      await h.store.create(due('apps', 'acr-pull-slow', Date.now() + 5 * 60_000, 'cri-own0000000000002'));
      await atEvent;
      stops.pop();
      const order: string[] = [];
      const stopped = h.runtime.stop().then(() => void order.push('stopped'));
      // Without the pass to wait for, stop is over within the first turn of the event loop.
      for (let i = 0; i < 20 && order.length === 0; i++) await new Promise((r) => setImmediate(r));
      order.push('released');
      release();
      await stopped;
      expect(order).toEqual(['released', 'stopped']);
      expect(h.store.events.filter((e) => e.name === 'acr-pull-slow').map((e) => [e.reason, /: INSTANCE_NOT_EXIST \(request ID /.test(e.message)])).toEqual([['RefreshFailed', true]]);
      expect(await counter(h.metrics!, 'acr_webhook_refresh_failures_total')).toEqual([[{}, 2]]);
    });

    it('without metrics: a pull Secret written through the manager', async () => {
      const h = await writeThroughManager(false);
      expect(h.lines.filter((l) => l[2] === 'pull Secret written').map((l) => l[1])).toEqual([expect.objectContaining({ namespace: 'apps', name: 'acr-pull-apps', op: 'create', attempt: 0 })]);
    });

    it('without metrics: a failed renewal is warned about and recorded, and the pass ends cleanly', async () => {
      const h = harness(false, undefined, { endpoints: endpoints(), doc: { secrets: { refreshInterval: '40ms' } } });
      await h.store.create(due('apps', 'acr-pull-due', Date.now() + 5 * 60_000));
      Object.assign(h.state, { nsSynced: true, saSynced: true, cmSynced: true });
      h.runtime.start();
      stops.push(() => h.runtime.stop());
      await vi.waitFor(() => expect(h.store.events.map((e) => `${e.name} ${e.reason}`)).toEqual(['acr-pull-due RefreshFailed']), { timeout: 4000, interval: 10 });
      stops.pop();
      // stop waits for the pass: whatever it ended with has been logged by then.
      await h.runtime.stop();
      expect(h.lines.filter((l) => l[0] === 'warn' && l[2] === 'pull Secret renewal failed').map((l) => l[1])).toEqual([expect.objectContaining({ namespace: 'apps', name: 'acr-pull-due', failures: 1 })]);
      expect(h.lines.filter((l) => l[0] === 'error')).toEqual([]);
    });

    // The ServiceAccount pass runs every 30s; a change reaches it within its debounce (200 ms) instead.
    const HELPER = { 'service-account': 'sa1', 'watch-namespace': 'all', 'acr-registry-info': `- instanceId: ${OWN_INSTANCE}` };
    const SA_EVENT = /^sa event ns1\/sa1 Warning PullSecretNotReady: acr-pull-webhook \(acr-configuration\) could not prepare the pull Secret acr-pull-\S+ \(attempt 1\): /;

    it('a new helper ConfigMap sends the ServiceAccount pass at once; its failure is an Event and the secret-stage metric', async () => {
      const h = harness(true, undefined, { endpoints: endpoints() });
      h.accounts.push(ANNOTATED);
      Object.assign(h.state, { nsSynced: true, saSynced: true, cmSynced: true });
      h.runtime.start();
      stops.push(() => h.runtime.stop());
      await h.runtime.caches.whenSynced();
      h.put(HELPER);
      await vi.waitFor(() => expect(h.calls.filter((c) => c.startsWith('sa event'))).toEqual([expect.stringMatching(SA_EVENT)]), { timeout: 2000, interval: 10 });
      expect(await counter(h.metrics!, 'acr_webhook_credential_helper_failures_total')).toEqual([[{ stage: 'secret' }, 1]]);
    });

    it('without metrics: a ServiceAccount the helper cannot serve is still warned about, with its Event', async () => {
      const h = harness(false, undefined, { endpoints: endpoints() });
      h.accounts.push(ANNOTATED);
      Object.assign(h.state, { nsSynced: true, saSynced: true, cmSynced: true });
      h.runtime.start();
      stops.push(() => h.runtime.stop());
      await h.runtime.caches.whenSynced();
      h.put(HELPER);
      await vi.waitFor(() => expect(h.calls.filter((c) => c.startsWith('sa event'))).toEqual([expect.stringMatching(SA_EVENT)]), { timeout: 2000, interval: 10 });
      expect(h.lines.filter((l) => l[2] === 'credential helper: ServiceAccount not served').map((l) => l[1])).toEqual([expect.objectContaining({ namespace: 'ns1', name: 'sa1', stage: 'secret', failures: 1 })]);
    });

    it('an edited ServiceAccount sends the ServiceAccount pass at once; stop ends the sync (no pass after it)', async () => {
      const h = harness(true, undefined, { endpoints: endpoints() });
      h.setCm(HELPER);
      Object.assign(h.state, { nsSynced: true, saSynced: true, cmSynced: true });
      h.runtime.start();
      stops.push(() => h.runtime.stop());
      await h.runtime.caches.whenSynced();
      await vi.waitFor(() => expect(h.runtime.credentialHelper()).toBeDefined(), { timeout: 2000 });
      // Whatever the loaded ConfigMap sent has passed over no ServiceAccount.
      await new Promise((r) => setTimeout(r, 300));
      expect(h.calls.filter((c) => c.startsWith('sa event'))).toEqual([]);
      h.accounts.push(ANNOTATED);
      h.saEvent();
      await vi.waitFor(() => expect(h.calls.filter((c) => c.startsWith('sa event'))).toEqual([expect.stringMatching(SA_EVENT)]), { timeout: 2000, interval: 10 });
      stops.pop();
      await h.runtime.stop();
      // Stopped: an edit no longer sends a pass.
      h.accounts.push({ ...ANNOTATED, name: 'sa1', namespace: 'ns2' });
      h.saEvent();
      await new Promise((r) => setTimeout(r, 300));
      expect(h.calls.filter((c) => c.startsWith('sa event'))).toHaveLength(1);
    });
  });
});
