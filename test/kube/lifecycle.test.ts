// The pieces started and stopped the way the runtime does, with their real timers.
import { afterEach, describe, expect, it } from 'vitest';
import { KubeLeaseApi, LeaseLeaderElector } from '../../src/kube/leader.js';
import { KubeSecretStore } from '../../src/kube/secret-store.js';
import { NO_REFERENCES, SecretCollector } from '../../src/pull-secrets/collector.js';
import { AlwaysLeader } from '../../src/pull-secrets/leadership.js';
import { PullSecretManager } from '../../src/pull-secrets/manager.js';
import { MemorySecretStore } from '../../src/pull-secrets/memory-store.js';
import { SecretRefresher } from '../../src/pull-secrets/refresher.js';
import { FakeApiServer, waitFor } from './support/fake-apiserver.js';
import { budget, FakeTokens, spec } from './support/fixtures.js';

const realClock = { now: () => Date.now() };
let server: FakeApiServer | undefined;

afterEach(async () => {
  await server?.stop();
  server = undefined;
});

describe('lifecycle', () => {
  it('standalone: memory store, always leader, recorded usage', async () => {
    const store = new MemorySecretStore();
    const manager = new PullSecretManager({ store, tokens: new FakeTokens(realClock) });
    const leader = new AlwaysLeader();
    const refresher = new SecretRefresher({ manager, leader, intervalMs: 20 });
    const collector = new SecretCollector({ store, usage: NO_REFERENCES, leader, marks: manager.usage, intervalMs: 20 });
    expect(manager.ready()).toBe(false);
    await store.start();
    manager.start();
    refresher.start();
    collector.start();
    expect(manager.ready()).toBe(true);
    expect(await manager.ensure(spec(), budget())).toBe('cold');
    expect(await manager.ensure(spec(), budget())).toBe('cached');
    await new Promise((r) => setTimeout(r, 100)); // loops tick: nothing due, nothing idle
    expect(store.writes()).toBe(1);
    await Promise.all([refresher.stop(), collector.stop(), manager.stop()]);
    await store.stop();
    expect(manager.ready()).toBe(false);
  });

  it('kubernetes: syncs, elects itself on its timer, serves, and releases the Lease on stop', async () => {
    server = new FakeApiServer();
    await server.start();
    const kc = server.kubeConfig();
    const leading: boolean[] = [];
    const store = new KubeSecretStore({ kubeConfig: kc });
    const leader = new LeaseLeaderElector({
      api: new KubeLeaseApi(kc),
      namespace: 'acr-system',
      identity: 'pod-1',
      retryPeriodMs: 50,
      renewDeadlineMs: 1000,
      leaseDurationMs: 2000,
      onChange: (l) => leading.push(l),
    });
    const manager = new PullSecretManager({ store, tokens: new FakeTokens(realClock) });
    await store.start();
    leader.start();
    expect(manager.ready()).toBe(true);
    await waitFor(() => leader.isLeader(), 5000, 'leadership');
    const puts = () => server!.count('PUT', '/apis/coordination.k8s.io/v1/namespaces/acr-system/leases/acr-pull-webhook');
    await waitFor(() => puts() >= 2, 5000, 'renewals');
    expect(await manager.ensure(spec(), budget())).toBe('cold');
    expect(server.secrets.size).toBe(1);
    await leader.stop();
    await store.stop();
    expect(server.leases.get('acr-system/acr-pull-webhook')!.spec.holderIdentity).toBe('');
    expect(leading).toEqual([true, false]);
    await waitFor(() => server!.openWatches() === 0, 5000, 'watch closed by stop');
  });
});
