import { afterEach, describe, expect, it, vi } from 'vitest';
import { LAST_USED_AT_ANNOTATION } from '../../src/pull-secrets/docker-config.js';
import { collectIntervalMs, SecretCollector, type CollectResult, type UsageSource } from '../../src/pull-secrets/collector.js';
import { AlwaysLeader } from '../../src/pull-secrets/leadership.js';
import { PullSecretManager } from '../../src/pull-secrets/manager.js';
import { MemorySecretStore } from '../../src/pull-secrets/memory-store.js';
import { budget, FakeClock, FakeTokens, HOUR, MIN, RecordedUsage, spec } from './support/fixtures.js';

const IDLE = 24 * HOUR;

async function setup(usage: UsageSource = new RecordedUsage()) {
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
    const usage = new RecordedUsage();
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
    const usage = new RecordedUsage();
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
    const fresh = new SecretCollector({ store, usage: new RecordedUsage(), leader: new AlwaysLeader(), idleMs: IDLE, now: clock.now });
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

describe('SecretCollector schedule', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sweeps every idleTimeout/2, between 30 s and 10 minutes', () => {
    expect(collectIntervalMs(30_000)).toBe(30_000);
    expect(collectIntervalMs(5_000)).toBe(30_000);
    expect(collectIntervalMs(10 * MIN)).toBe(5 * MIN);
    expect(collectIntervalMs(24 * HOUR)).toBe(10 * MIN);
    const store = new MemorySecretStore();
    expect(new SecretCollector({ store, usage: new RecordedUsage(), leader: new AlwaysLeader(), idleMs: 2 * MIN }).intervalMs).toBe(MIN);
  });

  it('first pass soon after start as leader, then every interval; soon again after becoming leader; soon after a not-synced pass', async () => {
    vi.useFakeTimers();
    const store = new MemorySecretStore();
    await store.start();
    const passes: Array<{ at: number; skipped?: string }> = [];
    const t0 = Date.now();
    const record = (r: CollectResult) => passes.push({ at: Date.now() - t0, ...(r.skipped ? { skipped: r.skipped } : {}) });

    const leader = new AlwaysLeader();
    const c = new SecretCollector({ store, usage: new RecordedUsage(), leader, idleMs: 4 * MIN, onCollect: record });
    expect([c.intervalMs, c.firstDelayMs]).toEqual([2 * MIN, 10_000]);
    c.start();
    await vi.advanceTimersByTimeAsync(9_999);
    expect(passes).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(passes).toEqual([{ at: 10_000 }]);
    await vi.advanceTimersByTimeAsync(2 * 2 * MIN);
    expect(passes.map((p) => p.at)).toEqual([10_000, 10_000 + 2 * MIN, 10_000 + 4 * MIN]);
    await c.stop();

    // A replica that becomes leader later sweeps 10 s after that, not a full interval after its start.
    passes.length = 0;
    let leading = false;
    const listeners: Array<(l: boolean) => void> = [];
    const elector = { isLeader: () => leading, subscribe: (l: (leading: boolean) => void) => void listeners.push(l) };
    const f = new SecretCollector({ store, usage: new RecordedUsage(), leader: elector, idleMs: 24 * HOUR, onCollect: record });
    const start = Date.now() - t0;
    f.start();
    await vi.advanceTimersByTimeAsync(MIN);
    expect(passes).toEqual([]);
    leading = true;
    for (const l of listeners) l(true);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(passes).toEqual([{ at: start + MIN + 10_000 }]);
    await f.stop();

    // Leading before the cache synced: retried 10 s later rather than a full interval later.
    passes.length = 0;
    const unsynced = new MemorySecretStore();
    const g = new SecretCollector({ store: unsynced, usage: new RecordedUsage(), leader, idleMs: 24 * HOUR, onCollect: record });
    const gStart = Date.now() - t0;
    g.start();
    await vi.advanceTimersByTimeAsync(10_000);
    await unsynced.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(passes).toEqual([
      { at: gStart + 10_000, skipped: 'not-synced' },
      { at: gStart + 20_000 },
    ]);
    await g.stop();
  });
});
