import { describe, expect, it } from 'vitest';
import { LAST_USED_AT_ANNOTATION } from '../../src/pull-secrets/docker-config.js';
import { MemoryUsageSource, SecretCollector, type CollectResult, type UsageSource } from '../../src/pull-secrets/collector.js';
import { AlwaysLeader } from '../../src/pull-secrets/leadership.js';
import { PullSecretManager } from '../../src/pull-secrets/manager.js';
import { MemorySecretStore } from '../../src/pull-secrets/memory-store.js';
import { budget, FakeClock, FakeTokens, HOUR, MIN, spec } from './support/fixtures.js';

const IDLE = 24 * HOUR;

async function setup(usage: UsageSource = new MemoryUsageSource()) {
  const clock = new FakeClock();
  const store = new MemorySecretStore({ now: clock.now });
  await store.start();
  const manager = new PullSecretManager({ store, tokens: new FakeTokens(clock, 100 * HOUR), now: clock.now });
  const results: CollectResult[] = [];
  const collector = new SecretCollector({
    store,
    usage,
    leader: new AlwaysLeader(),
    marks: manager.usage,
    idleMs: IDLE,
    now: clock.now,
    onCollect: (r) => results.push(r),
  });
  return { clock, store, manager, collector, results };
}

describe('SecretCollector', () => {
  it('keeps Secrets in use, deletes idle ones, keeps young ones', async () => {
    const usage = new MemoryUsageSource();
    const { clock, store, manager, collector, results } = await setup(usage);
    await manager.ensure(spec('used'), budget());
    await manager.ensure(spec('idle'), budget());
    usage.add('used', spec('used').name);
    clock.advance(IDLE + MIN);
    await manager.ensure(spec('young'), budget()); // created just now, no Pod yet

    const r = await collector.runOnce();
    expect(r.deleted).toEqual([`idle/${spec('idle').name}`]);
    expect(r.inUse).toBe(1);
    expect(r.idleKept).toBe(1);
    expect(store.get('idle', spec('idle').name)).toBeUndefined();
    expect(store.get('used', spec('used').name)).toBeDefined();
    expect(store.get('young', spec('young').name)).toBeDefined();
    expect(results).toHaveLength(1);

    // Still referenced days later: never deleted.
    for (let i = 0; i < 5; i++) {
      clock.advance(IDLE);
      expect((await collector.runOnce()).deleted).not.toContain(`used/${spec('used').name}`);
    }
    expect(store.get('used', spec('used').name)).toBeDefined();
  });

  it('the idle period runs from the last known use: an admission, a reference seen, the last-used annotation', async () => {
    const usage = new MemoryUsageSource();
    const { clock, store, manager, collector } = await setup(usage);
    await manager.ensure(spec(), budget());
    clock.advance(20 * HOUR);
    expect(await manager.ensure(spec(), budget())).toBe('cached'); // hot path: in-memory mark only
    clock.advance(20 * HOUR);
    expect((await collector.runOnce()).deleted).toEqual([]);

    usage.add('apps', spec().name); // a Pod appears and lives for a while
    clock.advance(10 * HOUR);
    await collector.runOnce();
    usage.remove('apps', spec().name);
    clock.advance(IDLE - MIN);
    expect((await collector.runOnce()).deleted).toEqual([]);
    clock.advance(2 * MIN);
    expect((await collector.runOnce()).deleted).toEqual([`apps/${spec().name}`]);
    expect(manager.usage.get('apps', spec().name)).toBeUndefined();
    expect(store.list()).toEqual([]);
  });

  it('a new leader without memory trusts the persisted last-used annotation', async () => {
    const { clock, store, manager } = await setup();
    await manager.ensure(spec(), budget());
    clock.advance(20 * HOUR);
    await manager.ensure(spec(), budget());
    expect(await manager.flushUsage()).toBe(1);
    expect(Date.parse(store.get('apps', spec().name)!.metadata.annotations![LAST_USED_AT_ANNOTATION]!)).toBe(clock.now());
    clock.advance(20 * HOUR);
    const fresh = new SecretCollector({ store, usage: new MemoryUsageSource(), leader: new AlwaysLeader(), idleMs: IDLE, now: clock.now });
    expect((await fresh.runOnce()).deleted).toEqual([]);
    clock.advance(5 * HOUR);
    expect((await fresh.runOnce()).deleted).toHaveLength(1);
  });

  it('deletes nothing when usage cannot be known, when not leader, or when the Secret changed meanwhile', async () => {
    let fail = true;
    const refs = new Set<string>();
    const usage: UsageSource = {
      referenced: async () => {
        if (fail) throw new Error('pods: HTTP 403');
        return refs;
      },
    };
    const { clock, store, manager, collector } = await setup(usage);
    await manager.ensure(spec(), budget());
    clock.advance(2 * IDLE);
    expect(await collector.runOnce()).toMatchObject({ deleted: [], skipped: 'usage-unavailable' });
    fail = false;

    const follower = new SecretCollector({ store, usage, leader: { isLeader: () => false }, idleMs: IDLE, now: clock.now });
    expect(await follower.runOnce()).toMatchObject({ deleted: [], skipped: 'not-leader' });

    store.beforeWrite = (op, ns, name) => {
      if (op === 'delete') store.externalWrite({ ...store.get(ns, name)! }); // renewed just before the delete
    };
    expect((await collector.runOnce()).deleted).toEqual([]);
    expect(store.get('apps', spec().name)).toBeDefined();
    store.beforeWrite = undefined;
    expect((await collector.runOnce()).deleted).toHaveLength(1);
  });

  it('looks again right before deleting: a Pod that appeared meanwhile keeps the Secret', async () => {
    let calls = 0;
    const usage: UsageSource = {
      referenced: async (namespaces) => {
        calls++;
        expect(namespaces).toEqual(['apps']);
        return calls === 1 ? new Set() : new Set([`apps/${spec().name}`]);
      },
    };
    const { clock, store, manager, collector } = await setup(usage);
    await manager.ensure(spec(), budget());
    clock.advance(2 * IDLE);
    expect((await collector.runOnce()).deleted).toEqual([]);
    expect(calls).toBe(2);
    expect(store.get('apps', spec().name)).toBeDefined();
  });
});
