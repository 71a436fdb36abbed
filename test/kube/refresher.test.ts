import { describe, expect, it } from 'vitest';
import { LeaseLeaderElector, MemoryLeaseApi } from '../../src/kube/leader.js';
import { buildPullSecret, decodePullSecret, EXPIRES_AT_ANNOTATION } from '../../src/pull-secrets/docker-config.js';
import { AlwaysLeader, type Leadership } from '../../src/pull-secrets/leadership.js';
import { PullSecretManager } from '../../src/pull-secrets/manager.js';
import { MemorySecretStore } from '../../src/pull-secrets/memory-store.js';
import { SecretRefresher, type RefreshResult } from '../../src/pull-secrets/refresher.js';
import { budget, denial, FakeClock, FakeTokens, HOUR, MIN, PASSWORD_MARK, spec } from './support/fixtures.js';

function replica(store: MemorySecretStore, clock: FakeClock, leader: Leadership) {
  const tokens = new FakeTokens(clock);
  const manager = new PullSecretManager({ store, tokens, now: clock.now });
  const results: RefreshResult[] = [];
  const refresher = new SecretRefresher({
    manager,
    leader,
    now: clock.now,
    backoffInitialMs: 10_000,
    backoffMaxMs: 40_000,
    onRefresh: (r) => results.push(r),
  });
  return { tokens, manager, refresher, results };
}

describe('SecretRefresher', () => {
  it('renews every managed Secret before its tokens expire, and only those due', async () => {
    const clock = new FakeClock();
    const store = new MemorySecretStore({ now: clock.now });
    await store.start();
    const { tokens, manager, refresher, results } = replica(store, clock, new AlwaysLeader());
    await manager.ensure(spec('a'), budget());
    clock.advance(10 * MIN);
    await manager.ensure(spec('b'), budget());
    expect(tokens.calls).toBe(2);

    clock.advance(30 * MIN); // a: 20 min left, b: 30 min left
    expect(await refresher.runOnce()).toEqual([]);
    clock.advance(6 * MIN); // a: 14 min left (due), b: 24 min left
    const r1 = await refresher.runOnce();
    expect(r1.map((r) => `${r.namespace}:${r.outcome}`)).toEqual(['a:renewed']);
    expect(decodePullSecret(store.get('a', spec('a').name)!)!.expiresAt).toBe(clock.now() + HOUR);

    clock.advance(10 * MIN); // b: 14 min left
    expect((await refresher.runOnce()).map((r) => r.namespace)).toEqual(['b']);
    expect(tokens.calls).toBe(4);
    expect(results).toHaveLength(2);
    expect(store.events).toEqual([]);

    // Hours later the Secrets are still valid: the loop keeps them so.
    for (let i = 0; i < 24; i++) {
      clock.advance(10 * MIN);
      await refresher.runOnce();
      for (const s of store.list()) expect(decodePullSecret(s)!.expiresAt - clock.now()).toBeGreaterThan(0);
    }
    expect(refresher.stats.failed).toBe(0);
  });

  it('backs off per Secret on failure, counts failures and emits Warning events without secrets', async () => {
    const clock = new FakeClock();
    const store = new MemorySecretStore({ now: clock.now });
    await store.start();
    const { tokens, manager, refresher, results } = replica(store, clock, new AlwaysLeader());
    await manager.ensure(spec(), budget());
    clock.advance(50 * MIN);
    tokens.failWith = denial('AssumeRole acs:ram::999:role/acr-pull denied: NoPermission');

    await refresher.runOnce();
    expect(results.at(-1)).toMatchObject({ outcome: 'failed', failures: 1, retryAt: clock.now() + 10_000 });
    expect(refresher.retryState('apps', spec().name)).toEqual({ failures: 1, retryAt: clock.now() + 10_000 });
    clock.advance(5_000);
    await refresher.runOnce(); // within backoff: not tried
    expect(tokens.calls).toBe(2);
    clock.advance(5_000);
    await refresher.runOnce();
    expect(tokens.calls).toBe(3);
    expect(results.at(-1)).toMatchObject({ outcome: 'failed', failures: 2, retryAt: clock.now() + 20_000 });
    clock.advance(20_000);
    await refresher.runOnce();
    expect(results.at(-1)).toMatchObject({ failures: 3, retryAt: clock.now() + 40_000 });
    clock.advance(40_000);
    await refresher.runOnce();
    expect(results.at(-1)).toMatchObject({ failures: 4, retryAt: clock.now() + 40_000 }); // capped

    expect(refresher.stats.failed).toBe(4);
    expect(store.events).toHaveLength(4);
    for (const e of store.events) {
      expect(e).toMatchObject({ namespace: 'apps', name: spec().name, type: 'Warning', reason: 'RefreshFailed' });
      expect(e.message).toContain('NoPermission');
      expect(e.message).not.toContain(PASSWORD_MARK);
    }

    tokens.failWith = undefined;
    clock.advance(40_000);
    await refresher.runOnce();
    expect(results.at(-1)).toMatchObject({ outcome: 'renewed', failures: 0 });
    expect(refresher.retryState('apps', spec().name)).toBeUndefined();
  });

  it('reports a managed Secret it cannot renew once per version', async () => {
    const clock = new FakeClock();
    const store = new MemorySecretStore({ now: clock.now });
    await store.start();
    const { refresher, tokens } = replica(store, clock, new AlwaysLeader());
    const s = buildPullSecret(spec(), { auths: { 'x.cr.aliyuncs.com': { username: 'u', password: 'p' } }, expiresAt: clock.now() }, { now: clock.now() });
    delete s.metadata.annotations![EXPIRES_AT_ANNOTATION];
    store.externalWrite(s);
    expect((await refresher.runOnce()).map((r) => r.outcome)).toEqual(['invalid']);
    expect(await refresher.runOnce()).toEqual([]);
    expect(store.events.map((e) => e.reason)).toEqual(['RefreshSkipped']);
    expect(tokens.calls).toBe(0);
  });

  it('does nothing while not leader', async () => {
    const clock = new FakeClock();
    const store = new MemorySecretStore({ now: clock.now });
    await store.start();
    const { manager, refresher, tokens } = replica(store, clock, { isLeader: () => false });
    await manager.ensure(spec(), budget());
    clock.advance(55 * MIN);
    expect(await refresher.runOnce()).toEqual([]);
    expect(tokens.calls).toBe(1);
  });
});

describe('LeaseLeaderElector with refreshers', () => {
  it('only the leader refreshes; a follower takes over when the leader stops renewing or releases', async () => {
    const clock = new FakeClock();
    const leases = new MemoryLeaseApi();
    const store = new MemorySecretStore({ now: clock.now }); // the cluster, shared by both replicas
    await store.start();
    const opts = { api: leases, namespace: 'acr-system', now: clock.now, leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };
    const e1 = new LeaseLeaderElector({ ...opts, identity: 'pod-1' });
    const e2 = new LeaseLeaderElector({ ...opts, identity: 'pod-2' });
    const r1 = replica(store, clock, e1);
    const r2 = replica(store, clock, e2);

    expect(await e1.tick()).toBe(true);
    expect(await e2.tick()).toBe(false);
    expect(e1.isLeader()).toBe(true);
    expect(e2.isLeader()).toBe(false);
    expect(leases.peek('acr-system', 'acr-pull-webhook')).toMatchObject({ holderIdentity: 'pod-1', leaseDurationSeconds: 15, leaseTransitions: 0 });

    await r1.manager.ensure(spec('a'), budget());
    await r1.manager.ensure(spec('b'), budget());
    clock.advance(50 * MIN);
    // Both renew their lease state on schedule; the leader keeps it.
    expect(await e1.tick()).toBe(true);
    expect(await e2.tick()).toBe(false);
    await Promise.all([r1.refresher.runOnce(), r2.refresher.runOnce()]);
    expect(r1.tokens.calls).toBe(4); // 2 creates + 2 renewals
    expect(r2.tokens.calls).toBe(0);

    // pod-1 hangs: it stops renewing. It stops calling itself leader after the renew deadline...
    for (let i = 0; i < 5; i++) {
      clock.advance(2_000);
      expect(await e2.tick()).toBe(false); // ...but pod-2 waits a full lease duration from its observation
    }
    expect(e1.isLeader()).toBe(false); // 10 s without renewal
    for (let i = 0; i < 3 && !e2.isLeader(); i++) {
      clock.advance(2_000);
      await e2.tick();
    }
    expect(e2.isLeader()).toBe(true);
    expect(leases.peek('acr-system', 'acr-pull-webhook')).toMatchObject({ holderIdentity: 'pod-2', leaseTransitions: 1 });
    // pod-1 comes back: it sees another holder and stays follower.
    expect(await e1.tick()).toBe(false);

    clock.advance(50 * MIN);
    await e2.tick();
    await Promise.all([r1.refresher.runOnce(), r2.refresher.runOnce()]);
    expect(r1.tokens.calls).toBe(4);
    expect(r2.tokens.calls).toBe(2);

    // pod-2 shuts down and releases: pod-1 takes over on its next attempt, without waiting for expiry.
    await e2.stop();
    expect(e2.isLeader()).toBe(false);
    expect(leases.peek('acr-system', 'acr-pull-webhook')!.holderIdentity).toBe('');
    clock.advance(1);
    expect(await e1.tick()).toBe(true);
    expect(leases.peek('acr-system', 'acr-pull-webhook')).toMatchObject({ holderIdentity: 'pod-1', leaseTransitions: 2 });
  });

  it('never has two leaders across many interleaved ticks, API outages included', async () => {
    const clock = new FakeClock();
    const leases = new MemoryLeaseApi();
    const mk = (id: string) =>
      new LeaseLeaderElector({ api: leases, namespace: 'ns', identity: id, now: clock.now, leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });
    const electors = [mk('a'), mk('b'), mk('c')];
    let changes = 0;
    const holders = new Set<string>();
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 400; i++) {
      clock.advance(500 + Math.floor(rand() * 1500));
      leases.unavailable = rand() < 0.1;
      const e = electors[Math.floor(rand() * electors.length)]!;
      if (rand() < 0.8) await e.tick(); // some replicas skip turns (slow, paused)
      const leaders = electors.filter((x) => x.isLeader());
      expect(leaders.length).toBeLessThanOrEqual(1);
      if (leaders.length === 1) {
        changes++;
        holders.add(leaders[0]!.identity);
      }
    }
    expect(changes).toBeGreaterThan(0);
    expect(holders.size).toBeGreaterThan(1); // leadership did move
  });

  it('leadership callbacks fire on transitions', async () => {
    const clock = new FakeClock();
    const leases = new MemoryLeaseApi();
    const seen: boolean[] = [];
    const e = new LeaseLeaderElector({ api: leases, namespace: 'ns', identity: 'x', now: clock.now, onChange: (l) => seen.push(l) });
    await e.tick();
    clock.advance(11_000);
    leases.unavailable = true;
    await e.tick();
    expect(seen).toEqual([true, false]);
  });
});
