// The client-node implementations against a fake API server at the HTTP level.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeLeaseApi, LeaseLeaderElector } from '../../src/kube/leader.js';
import { KubeSecretStore, type RestartReason } from '../../src/kube/secret-store.js';
import { KubeUsageSource } from '../../src/kube/usage.js';
import { SecretCollector } from '../../src/pull-secrets/collector.js';
import { buildPullSecret, decodePullSecret, MANAGED_BY_LABEL } from '../../src/pull-secrets/docker-config.js';
import { AlwaysLeader } from '../../src/pull-secrets/leadership.js';
import { PullSecretManager } from '../../src/pull-secrets/manager.js';
import { SecretRefresher } from '../../src/pull-secrets/refresher.js';
import { ConflictError } from '../../src/pull-secrets/store.js';
import { FakeApiServer, waitFor } from './support/fake-apiserver.js';
import { budget, denial, FakeTokens, HOUR, MIN, PASSWORD_MARK, spec } from './support/fixtures.js';

let server: FakeApiServer;
const cleanups: Array<() => Promise<void>> = [];

beforeEach(async () => {
  server = new FakeApiServer();
  await server.start();
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await server.stop();
});

const realClock = { now: () => Date.now() };

function managedSecret(ns: string, n: number, expiresAt = Date.now() + HOUR) {
  // Obtained an hour before expiry, like a real token.
  return buildPullSecret(spec(ns, n), { auths: { [`r${n}.cr.aliyuncs.com`]: { username: 'u', password: `${PASSWORD_MARK}${n}` } }, expiresAt }, { now: expiresAt - HOUR });
}

async function startStore(opts: Partial<ConstructorParameters<typeof KubeSecretStore>[0]> = {}) {
  const restarts: RestartReason[] = [];
  const store = new KubeSecretStore({
    kubeConfig: server.kubeConfig(),
    restartInitialMs: 20,
    restartMaxMs: 200,
    onRestart: (r) => restarts.push(r),
    ...opts,
  });
  cleanups.push(() => store.stop());
  await store.start();
  return { store, restarts };
}

describe('KubeSecretStore', () => {
  it('lists managed Secrets page by page (others ignored), then serves them from the cache', async () => {
    for (let i = 1; i <= 5; i++) server.putSecret(managedSecret(`ns${i}`, i));
    server.putSecret({ metadata: { name: 'user-secret', namespace: 'ns1' }, type: 'Opaque', data: {} });
    const { store } = await startStore({ pageSize: 2 });
    expect(store.synced()).toBe(true);
    expect(server.count('GET', '/api/v1/secrets', { watch: false })).toBe(3);
    const list = server.requests.find((r) => r.path === '/api/v1/secrets' && !r.watch)!;
    expect(list.query.get('labelSelector')).toBe(`${MANAGED_BY_LABEL}=acr-pull-webhook`);
    expect(store.list()).toHaveLength(5);
    const s = store.get('ns3', spec('ns3', 3).name)!;
    expect(decodePullSecret(s)!.namespace).toBe('ns3');
    expect(s.metadata.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(store.get('ns1', 'user-secret')).toBeUndefined();
    await waitFor(() => server.openWatches() === 1, 5000, 'watch');
  });

  it('manager over the API: one create, then admissions cost no API call at all', async () => {
    const { store } = await startStore();
    const tokens = new FakeTokens(realClock);
    const manager = new PullSecretManager({ store, tokens });
    expect(manager.ready()).toBe(true);
    expect(await manager.ensure(spec(), budget())).toBe('cold');
    expect(server.count('POST', '/api/v1/namespaces/apps/secrets')).toBe(1);
    const created = server.secrets.get(`apps/${spec().name}`)!;
    expect(created.type).toBe('kubernetes.io/dockerconfigjson');

    const before = server.requests.filter((r) => !r.watch).length;
    const paths = await Promise.all(Array.from({ length: 50 }, () => manager.ensure(spec(), budget())));
    expect(paths.every((p) => p === 'cold' || p === 'cached')).toBe(true);
    expect(paths.filter((p) => p === 'cached')).toHaveLength(50);
    expect(server.requests.filter((r) => !r.watch).length).toBe(before);
    expect(tokens.calls).toBe(1);
  });

  it('100 concurrent cold admissions make one POST', async () => {
    const { store } = await startStore();
    const tokens = new FakeTokens(realClock);
    tokens.delayMs = 20;
    const manager = new PullSecretManager({ store, tokens });
    const paths = await Promise.all(Array.from({ length: 100 }, () => manager.ensure(spec(), budget())));
    expect(new Set(paths)).toEqual(new Set(['cold']));
    expect(tokens.calls).toBe(1);
    expect(server.count('POST', '/api/v1/namespaces/apps/secrets')).toBe(1);
  });

  it('follows changes made by others through the watch', async () => {
    const { store } = await startStore();
    await waitFor(() => server.openWatches() === 1, 5000, 'watch');
    server.putSecret(managedSecret('ext', 7));
    await waitFor(() => store.get('ext', spec('ext', 7).name) !== undefined, 5000, 'ADDED');
    server.deleteSecret('ext', spec('ext', 7).name);
    await waitFor(() => store.get('ext', spec('ext', 7).name) === undefined, 5000, 'DELETED');
  });

  it('a stale resourceVersion gets 409; the manager re-reads and retries', async () => {
    const { store } = await startStore();
    const tokens = new FakeTokens(realClock);
    const manager = new PullSecretManager({ store, tokens, refreshThresholdMs: 15 * MIN });
    server.putSecret(managedSecret('apps', 1, Date.now() + 5 * MIN)); // stale
    await waitFor(() => store.get('apps', spec().name) !== undefined, 5000, 'cache');
    // Someone else touches it; our watch is slow to tell us, so our replace carries the old resourceVersion.
    server.holdWatchEvents = true;
    const cur = server.secrets.get(`apps/${spec().name}`)!;
    server.putSecret({ ...cur, metadata: { ...cur.metadata, labels: { ...cur.metadata.labels, touched: '1' } } });

    expect(await manager.ensure(spec(), budget())).toBe('cold');
    const puts = server.requests.filter((r) => r.method === 'PUT');
    expect(puts).toHaveLength(2);
    expect(server.count('GET', `/api/v1/namespaces/apps/secrets/${spec().name}`)).toBe(1);
    const stored = server.secrets.get(`apps/${spec().name}`)!;
    expect(stored.metadata.labels.touched).toBe('1');
    expect(Date.parse(stored.metadata.annotations['acr-pull-webhook.k8s.aliyun.com/expires-at'])).toBeGreaterThan(Date.now() + 50 * MIN);
    // The cache already holds what we wrote (write-through), even before the watch catches up.
    expect(store.get('apps', spec().name)!.metadata.resourceVersion).toBe(stored.metadata.resourceVersion);
    server.flushWatches();
    expect(await manager.ensure(spec(), budget())).toBe('cached');
  });

  it('delete honours the resourceVersion precondition; a missing Secret is not an error', async () => {
    const { store } = await startStore();
    const s = server.putSecret(managedSecret('apps', 1));
    await expect(store.delete('apps', s.metadata.name, '1')).rejects.toBeInstanceOf(ConflictError);
    expect(await store.delete('apps', s.metadata.name, s.metadata.resourceVersion)).toBe(true);
    expect(await store.delete('apps', s.metadata.name)).toBe(false);
    expect(server.secrets.size).toBe(0);
  });

  it('reconnects after a dropped watch and catches up from its resourceVersion without relisting', async () => {
    const { store, restarts } = await startStore();
    await waitFor(() => server.openWatches() === 1, 5000, 'watch');
    const lists = server.count('GET', '/api/v1/secrets', { watch: false });
    server.dropWatches();
    server.putSecret(managedSecret('late', 3)); // while disconnected
    await waitFor(() => store.get('late', spec('late', 3).name) !== undefined, 5000, 'catch-up');
    expect(restarts).toContain('error');
    expect(server.count('GET', '/api/v1/secrets', { watch: true })).toBeGreaterThanOrEqual(2);
    expect(server.count('GET', '/api/v1/secrets', { watch: false })).toBe(lists);
    const second = server.requests.filter((r) => r.watch).at(-1)!;
    expect(Number(second.query.get('resourceVersion'))).toBeGreaterThan(0);
  });

  it('reconnects at once after a clean close (the server-side timeout)', async () => {
    const { store, restarts } = await startStore();
    await waitFor(() => server.openWatches() === 1, 5000, 'watch');
    server.closeWatches();
    await waitFor(() => restarts.includes('closed') && server.openWatches() === 1, 5000, 'rewatch');
    server.putSecret(managedSecret('after', 2));
    await waitFor(() => store.get('after', spec('after', 2).name) !== undefined, 5000, 'event after close');
  });

  for (const mode of ['http', 'event'] as const) {
    it(`relists on 410 Gone (${mode}) and drops Secrets deleted while it was away`, async () => {
      server.goneMode = mode;
      server.putSecret(managedSecret('a', 1));
      server.putSecret(managedSecret('b', 2));
      const { store, restarts } = await startStore();
      expect(store.list()).toHaveLength(2);
      await waitFor(() => server.openWatches() === 1, 5000, 'watch');
      server.dropWatches();
      server.deleteSecret('a', spec('a', 1).name);
      server.putSecret(managedSecret('c', 3));
      server.compact(); // the history those changes were in is gone: only a relist can tell
      await waitFor(() => restarts.includes('gone'), 5000, 'gone');
      await waitFor(() => store.get('c', spec('c', 3).name) !== undefined, 5000, 'relist');
      expect(store.get('a', spec('a', 1).name)).toBeUndefined();
      expect(store.get('b', spec('b', 2).name)).toBeDefined();
      expect(server.count('GET', '/api/v1/secrets', { watch: false })).toBe(2);
      expect(store.synced()).toBe(true);
      await waitFor(() => server.openWatches() === 1, 5000, 'watch again');
      server.putSecret(managedSecret('d', 4));
      await waitFor(() => store.get('d', spec('d', 4).name) !== undefined, 5000, 'live after relist');
    });
  }

  it('detects a watch that went silent and restarts it', async () => {
    server.stallWatches = true;
    const { store, restarts } = await startStore({ watchTimeoutSeconds: 1, watchdogGraceMs: 200 });
    await waitFor(() => server.openWatches() === 1, 5000, 'watch');
    server.stallWatches = false;
    await waitFor(() => restarts.includes('stalled'), 5000, 'watchdog');
    server.putSecret(managedSecret('x', 5));
    await waitFor(() => store.get('x', spec('x', 5).name) !== undefined, 5000, 'events after restart');
  });

  it('keeps retrying the list with backoff while the API server fails, and syncs once it recovers', async () => {
    server.putSecret(managedSecret('apps', 1));
    server.failNext = { count: 3, code: 500 };
    const { store, restarts } = await startStore();
    expect(store.synced()).toBe(true);
    expect(restarts.filter((r) => r === 'error')).toHaveLength(3);
    expect(server.count('GET', '/api/v1/secrets', { watch: false })).toBe(4);
    expect(store.list()).toHaveLength(1);
  });

  it('retries an unreachable API server with bounded backoff, never calling itself synced', async () => {
    const gone = new FakeApiServer();
    await gone.start();
    const kc = gone.kubeConfig();
    await gone.stop(); // nothing listens there now
    const store = new KubeSecretStore({ kubeConfig: kc, restartInitialMs: 20, restartMaxMs: 50 });
    cleanups.push(() => store.stop());
    void store.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(store.synced()).toBe(false);
    const lists = store.reflectorList()[0]!.stats.lists;
    expect(lists).toBeGreaterThan(1);
    expect(lists).toBeLessThan(20);
  });

  it('times out a request that never answers instead of holding the write', async () => {
    const { store } = await startStore({ requestTimeoutMs: 200 });
    server.hangNext = 1;
    const started = Date.now();
    await expect(store.create(managedSecret('apps', 1))).rejects.toMatchObject({ name: 'AbortError' });
    expect(Date.now() - started).toBeLessThan(3000);
    // The next one goes through.
    const created = await store.create(managedSecret('apps', 1));
    expect(created.metadata.resourceVersion).toBeTruthy();
  });

  it('watches only the configured namespaces', async () => {
    server.putSecret(managedSecret('one', 1));
    server.putSecret(managedSecret('two', 2));
    const { store } = await startStore({ namespaces: ['one'] });
    expect(store.list().map((s) => s.metadata.namespace)).toEqual(['one']);
    expect(server.count('GET', '/api/v1/namespaces/one/secrets', { watch: false })).toBe(1);
    expect(server.count('GET', '/api/v1/secrets')).toBe(0);
  });

  it('records Warning events on the Secret without secret material', async () => {
    server.putSecret(managedSecret('apps', 1, Date.now() + 5 * MIN)); // due for renewal
    const { store } = await startStore();
    const tokens = new FakeTokens(realClock);
    tokens.failWith = denial();
    const manager = new PullSecretManager({ store, tokens });
    const refresher = new SecretRefresher({ manager, leader: new AlwaysLeader(), backoffInitialMs: 1000 });
    const results = await refresher.runOnce();
    expect(results.map((r) => r.outcome)).toEqual(['failed']);
    expect(await refresher.runOnce()).toEqual([]); // backing off
    await waitFor(() => server.events.length === 1, 5000, 'event');
    const ev = server.events[0]!;
    expect(ev).toMatchObject({
      type: 'Warning',
      reason: 'RefreshFailed',
      involvedObject: { kind: 'Secret', namespace: 'apps', name: spec().name },
      source: { component: 'acr-pull-webhook' },
    });
    expect(ev.involvedObject.uid).toBeTruthy();
    expect(JSON.stringify(ev)).not.toContain(PASSWORD_MARK);
  });
});

describe('KubeLeaseApi + LeaseLeaderElector over HTTP', () => {
  it('creates, renews with resourceVersion, blocks a second candidate, and releases', async () => {
    const kc = server.kubeConfig();
    let t = Date.parse('2025-01-01T00:00:00.123Z');
    const now = () => t;
    const e1 = new LeaseLeaderElector({ api: new KubeLeaseApi(kc), namespace: 'acr-system', identity: 'pod-1', now });
    const e2 = new LeaseLeaderElector({ api: new KubeLeaseApi(kc), namespace: 'acr-system', identity: 'pod-2', now });
    expect(await e1.tick()).toBe(true);
    expect(await e2.tick()).toBe(false);
    const created = server.requests.find((r) => r.method === 'POST' && r.path.endsWith('/leases'))!;
    expect(created.path).toBe('/apis/coordination.k8s.io/v1/namespaces/acr-system/leases');
    // MicroTime needs six fractional digits.
    expect(created.body!.spec.renewTime).toBe('2025-01-01T00:00:00.123000Z');
    expect(created.body!.spec).toMatchObject({ holderIdentity: 'pod-1', leaseDurationSeconds: 15, leaseTransitions: 0 });

    t += 2000;
    expect(await e1.tick()).toBe(true);
    const put = server.requests.filter((r) => r.method === 'PUT').at(-1)!;
    expect(put.body!.metadata.resourceVersion).toBeTruthy();
    expect(server.leases.get('acr-system/acr-pull-webhook')!.spec.renewTime).toBe('2025-01-01T00:00:02.123000Z');

    await e1.stop();
    expect(server.leases.get('acr-system/acr-pull-webhook')!.spec.holderIdentity).toBe('');
    t += 1;
    expect(await e2.tick()).toBe(true);
    expect(server.leases.get('acr-system/acr-pull-webhook')!.spec).toMatchObject({ holderIdentity: 'pod-2', leaseTransitions: 1 });
  });
});

describe('KubeUsageSource + collector over HTTP', () => {
  it('finds references in Pods (paged) and ImageCaches, and treats a missing ImageCache CRD as none', async () => {
    server.pods = [
      { metadata: { name: 'p1', namespace: 'apps' }, spec: { imagePullSecrets: [{ name: 's1' }, { name: 's2' }] } },
      { metadata: { name: 'p2', namespace: 'apps' }, spec: {} },
      { metadata: { name: 'p3', namespace: 'web' }, spec: { imagePullSecrets: [{ name: 's3' }] } },
    ];
    const usage = new KubeUsageSource({ kubeConfig: server.kubeConfig(), pageSize: 1 });
    expect(await usage.referenced()).toEqual(new Set(['apps/s1', 'apps/s2', 'web/s3']));
    expect(server.count('GET', '/api/v1/pods')).toBe(3);
    expect(await usage.referenced(['web'])).toEqual(new Set(['web/s3']));
    expect(server.count('GET', '/api/v1/namespaces/web/pods')).toBe(1);

    server.imageCaches = [{ metadata: { name: 'ic1' }, spec: { images: ['x'], imagePullSecrets: ['acr-system:s9', 'bad'] } }];
    expect(await usage.referenced(['web'])).toEqual(new Set(['web/s3', 'acr-system/s9']));
  });

  it('the collector deletes an idle unreferenced Secret, keeps referenced and young ones', async () => {
    const old = Date.now() - 3 * 24 * HOUR;
    const mk = (ns: string, n: number) => {
      const s = managedSecret(ns, n);
      return server.putSecret(s);
    };
    const used = mk('apps', 1);
    const idle = mk('apps', 2);
    const cached = mk('acr-system', 3);
    const young = mk('apps', 4);
    for (const s of [used, idle, cached]) server.secrets.get(`${s.metadata.namespace}/${s.metadata.name}`)!.metadata.creationTimestamp = new Date(old).toISOString();
    server.pods = [{ metadata: { name: 'p', namespace: 'apps' }, spec: { imagePullSecrets: [{ name: used.metadata.name }] } }];
    server.imageCaches = [{ metadata: { name: 'ic' }, spec: { imagePullSecrets: [`acr-system:${cached.metadata.name}`] } }];
    const { store } = await startStore();
    const collector = new SecretCollector({
      store,
      usage: new KubeUsageSource({ kubeConfig: server.kubeConfig() }),
      leader: new AlwaysLeader(),
      idleMs: 24 * HOUR,
    });
    const r = await collector.runOnce();
    expect(r.deleted).toEqual([`apps/${idle.metadata.name}`]);
    expect([...server.secrets.keys()].sort()).toEqual(
      [`apps/${used.metadata.name}`, `acr-system/${cached.metadata.name}`, `apps/${young.metadata.name}`].sort(),
    );
    const del = server.requests.find((x) => x.method === 'DELETE')!;
    expect(del.body!.preconditions.resourceVersion).toBe(idle.metadata.resourceVersion);
  });
});
