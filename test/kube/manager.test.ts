import { describe, expect, it } from 'vitest';
import { BINDING_ANNOTATION, buildPullSecret, decodePullSecret, LAST_USED_AT_ANNOTATION } from '../../src/pull-secrets/docker-config.js';
import { PullSecretManager } from '../../src/pull-secrets/manager.js';
import { MemorySecretStore } from '../../src/pull-secrets/memory-store.js';
import { DenialError } from '../../src/pull-secrets/types.js';
import { secretNameFor } from '../../src/acr/secret-name.js';
import { binding, budget, denial, FakeClock, FakeTokens, HOUR, MIN, spec } from './support/fixtures.js';

function setup(opts: { writeLatencyMs?: number } = {}) {
  const clock = new FakeClock();
  const store = new MemorySecretStore({ now: clock.now, ...opts });
  const tokens = new FakeTokens(clock);
  const writes: string[] = [];
  const manager = new PullSecretManager({ store, tokens, now: clock.now, onWrite: (w) => writes.push(`${w.op}:${w.outcome}`) });
  return { clock, store, tokens, manager, writes };
}

describe('PullSecretManager.ensure', () => {
  it('creates a missing Secret once, then serves from the cache with no write and no token call', async () => {
    const { store, tokens, manager } = setup();
    await store.start();
    expect(manager.ready()).toBe(true);
    expect(await manager.ensure(spec(), budget())).toBe('cold');
    expect(store.stats.create).toBe(1);
    expect(tokens.calls).toBe(1);

    const writesBefore = store.writes();
    const readsBefore = store.stats.read;
    for (let i = 0; i < 50; i++) expect(await manager.ensure(spec(), budget())).toBe('cached');
    expect(store.writes()).toBe(writesBefore);
    expect(store.stats.read).toBe(readsBefore);
    expect(tokens.calls).toBe(1);
  });

  it('renews a stale Secret with exactly one replace', async () => {
    const { clock, store, tokens, manager } = setup();
    await manager.ensure(spec(), budget());
    const rv = store.get('apps', spec().name)!.metadata.resourceVersion;
    clock.advance(46 * MIN); // 14 minutes left: within the 15-minute threshold
    expect(await manager.ensure(spec(), budget())).toBe('cold');
    expect(store.stats.replace).toBe(1);
    expect(tokens.calls).toBe(2);
    const s = store.get('apps', spec().name)!;
    expect(s.metadata.resourceVersion).not.toBe(rv);
    expect(decodePullSecret(s)!.expiresAt).toBe(clock.now() + HOUR);
    expect(await manager.ensure(spec(), budget())).toBe('cached');
  });

  it('100 concurrent admissions needing the same Secret share one token call and one write', async () => {
    const { store, tokens, manager } = setup({ writeLatencyMs: 5 });
    tokens.delayMs = 10;
    const paths = await Promise.all(Array.from({ length: 100 }, () => manager.ensure(spec(), budget())));
    expect(paths.every((p) => p === 'cold')).toBe(true);
    expect(tokens.calls).toBe(1);
    expect(store.writes()).toBe(1);
    // Different Secrets do not share.
    await Promise.all([manager.ensure(spec('a'), budget()), manager.ensure(spec('b'), budget())]);
    expect(tokens.calls).toBe(3);
  });

  it('retries after a 409 on a fresh resourceVersion', async () => {
    const { clock, store, manager, writes } = setup();
    await manager.ensure(spec(), budget());
    clock.advance(50 * MIN);
    let provoked = 0;
    store.beforeWrite = (op, ns, name) => {
      if (op === 'replace' && provoked++ === 0) {
        // Someone else touches the Secret (a label), leaving it stale: our replace carries an old resourceVersion.
        const cur = store.get(ns, name)!;
        store.externalWrite({ ...cur, metadata: { ...cur.metadata, labels: { ...cur.metadata.labels, touched: 'yes' } } });
      }
    };
    expect(await manager.ensure(spec(), budget())).toBe('cold');
    expect(writes).toEqual(['create:ok', 'replace:conflict', 'replace:ok']);
    expect(store.stats.conflicts).toBe(1);
    const s = store.get('apps', spec().name)!;
    expect(s.metadata.labels!.touched).toBe('yes');
    expect(manager.isFresh(s, spec())).toBe(true);
  });

  it('does not write again when the conflicting writer already renewed the Secret', async () => {
    const { clock, store, tokens, manager, writes } = setup();
    await manager.ensure(spec(), budget());
    clock.advance(50 * MIN);
    store.beforeWrite = (op) => {
      if (op === 'replace' && store.stats.conflicts === 0) {
        // A peer replica renews first.
        store.externalWrite(buildPullSecret(spec(), { auths: { 'x.cr.aliyuncs.com': { username: 'u', password: 'p' } }, expiresAt: clock.now() + HOUR }, { now: clock.now() }));
      }
    };
    expect(await manager.ensure(spec(), budget())).toBe('cold');
    expect(writes).toEqual(['create:ok', 'replace:conflict']);
    expect(tokens.calls).toBe(2);
  });

  it('gives up after bounded conflicts with a safe 503', async () => {
    const { clock, store, manager } = setup();
    await manager.ensure(spec(), budget());
    clock.advance(50 * MIN);
    store.beforeWrite = (op, ns, name) => {
      const cur = store.get(ns, name)!;
      if (op === 'replace') store.externalWrite({ ...cur });
    };
    const err = await manager.ensure(spec(), budget()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DenialError);
    expect((err as DenialError).code).toBe(503);
    expect(store.stats.replace).toBe(6); // first try + 5 retries
  });

  it('creates when the Secret was created concurrently (AlreadyExists) by re-reading it', async () => {
    const { clock, store, manager, writes } = setup();
    store.beforeWrite = (op) => {
      if (op === 'create' && store.stats.conflicts === 0) {
        // Another replica created it a moment ago, with tokens that are already stale.
        const stale = buildPullSecret(spec(), { auths: { 'x.cr.aliyuncs.com': { username: 'u', password: 'p' } }, expiresAt: clock.now() + MIN }, { now: clock.now() - HOUR });
        store.externalWrite(stale);
      }
    };
    await manager.ensure(spec(), budget());
    expect(writes).toEqual(['create:conflict', 'replace:ok']);
  });

  it('refuses to overwrite a Secret of the same name that it does not manage', async () => {
    const { store, manager } = setup();
    store.externalWrite({ apiVersion: 'v1', kind: 'Secret', metadata: { name: spec().name, namespace: 'apps' }, type: 'Opaque', data: {} });
    const err = await manager.ensure(spec(), budget()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DenialError);
    expect((err as DenialError).code).toBe(403);
    expect(store.stats.replace).toBe(0);
  });

  it('propagates token errors and frees the single-flight slot', async () => {
    const { tokens, manager, store } = setup();
    tokens.failWith = denial();
    await expect(manager.ensure(spec(), budget())).rejects.toThrow('AssumeRole denied');
    tokens.failWith = undefined;
    expect(await manager.ensure(spec(), budget())).toBe('cold');
    expect(store.stats.create).toBe(1);
  });

  it('respects the budget deadline, and a hung write does not block later admissions', async () => {
    const { tokens, manager } = setup();
    tokens.hang = true;
    const started = Date.now();
    const err = await manager.ensure(spec(), budget(100)).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err).toBeInstanceOf(DenialError);
    expect((err as DenialError).code).toBe(503);
    tokens.hang = false;
    expect(await manager.ensure(spec(), budget())).toBe('cold');
    expect(tokens.calls).toBe(2);
  });

  it('a caller with time left is not failed by the shorter deadline of the write it joined', async () => {
    const { tokens, manager, store } = setup();
    tokens.delayMs = 150;
    const short = manager.ensure(spec(), budget(50)).catch((e: unknown) => e);
    const long = manager.ensure(spec(), budget(5000));
    const err = await short;
    expect(err).toBeInstanceOf(DenialError);
    expect((err as DenialError).reason).toBe('Timeout');
    expect(await long).toBe('cold');
    expect(store.get('apps', spec().name)).toBeDefined();
  });

  it('rewrites a Secret whose binding differs from the spec', async () => {
    const { store, manager } = setup();
    const other = spec('apps', 2);
    await manager.ensure({ ...other, name: spec().name }, budget());
    expect(await manager.ensure(spec(), budget())).toBe('cold');
    expect(store.stats.replace).toBe(1);
  });
});

describe('usage marks', () => {
  it('records uses in memory and persists them with the next write, not on the hot path', async () => {
    const { clock, store, manager } = setup();
    await manager.ensure(spec(), budget());
    const name = spec().name;
    expect(store.get('apps', name)!.metadata.annotations![LAST_USED_AT_ANNOTATION]).toBe(new Date(clock.now()).toISOString());
    expect(await manager.flushUsage()).toBe(0); // just written with the mark
    clock.advance(30 * MIN);
    const writes = store.writes();
    expect(await manager.ensure(spec(), budget())).toBe('cached');
    expect(store.writes()).toBe(writes);
    expect(manager.usage.get('apps', name)).toBe(clock.now());
    expect(await manager.flushUsage()).toBe(0); // lags by 30 min, under the 1 h default
    clock.advance(16 * MIN);
    expect(await manager.ensure(spec(), budget())).toBe('cold'); // stale: the renewal carries the mark
    expect(store.get('apps', name)!.metadata.annotations![LAST_USED_AT_ANNOTATION]).toBe(new Date(clock.now()).toISOString());
    expect(await manager.flushUsage()).toBe(0);
  });

  it('flushes a mark recorded without a write (hot path) once it lags by more than usageTouchAfterMs', async () => {
    const clock = new FakeClock();
    const store = new MemorySecretStore({ now: clock.now });
    const tokens = new FakeTokens(clock, 10 * HOUR);
    const manager = new PullSecretManager({ store, tokens, now: clock.now, usageTouchAfterMs: HOUR });
    await manager.ensure(spec(), budget());
    clock.advance(2 * HOUR);
    expect(await manager.ensure(spec(), budget())).toBe('cached');
    expect(await manager.flushUsage()).toBe(1);
    const s = store.get('apps', spec().name)!;
    expect(s.metadata.annotations![LAST_USED_AT_ANNOTATION]).toBe(new Date(clock.now()).toISOString());
    expect(manager.isFresh(s, spec())).toBe(true);
    expect(await manager.flushUsage()).toBe(0);
  });
});

describe('PullSecretManager.isFresh (the warm path)', () => {
  // Bindings are immutable once named (names and keys are memoized per object): build it whole.
  const twoRegistries = () => {
    const b = binding();
    const two = { ...b, registries: [...b.registries, { kind: 'personal' as const, region: 'cn-beijing', domains: ['registry.cn-beijing.aliyuncs.com'] }] };
    return { namespace: 'apps', name: secretNameFor(two), requester: 'apps', binding: two };
  };

  it('accepts a Secret whose binding annotation lists the registries in another order (another writer)', () => {
    const { clock, manager } = setup();
    const s = twoRegistries();
    const written = buildPullSecret(s, { auths: { 'x.cr.aliyuncs.com': { username: 'u', password: 'p' } }, expiresAt: clock.now() + HOUR }, { now: clock.now() });
    const reordered = { ...s.binding, registries: [...s.binding.registries].reverse() };
    written.metadata.annotations![BINDING_ANNOTATION] = JSON.stringify(reordered);
    expect(decodePullSecret(written)).toBeDefined();
    expect(manager.isFresh(written, s)).toBe(true);
    // A copy of the same spec (another binding object, as after a configuration reload) agrees.
    expect(manager.isFresh(written, { ...s, binding: structuredClone(s.binding) })).toBe(true);
  });

  it('refuses a Secret that serves another binding, or whose annotations cannot be read', () => {
    const { clock, manager } = setup();
    const auths = { auths: { 'x.cr.aliyuncs.com': { username: 'u', password: 'p' } }, expiresAt: clock.now() + HOUR };
    const other = buildPullSecret(spec('apps', 2), auths, { now: clock.now() });
    expect(manager.isFresh(other, { ...spec(), name: other.metadata.name })).toBe(false);
    const broken = buildPullSecret(spec(), auths, { now: clock.now() });
    broken.metadata.annotations![BINDING_ANNOTATION] = '{not json';
    expect(manager.isFresh(broken, spec())).toBe(false);
    expect(manager.needsRenewal(broken)).toBe(true);
    expect(manager.expiresAt(broken)).toBeUndefined();
    const good = buildPullSecret(spec(), auths, { now: clock.now() });
    expect(manager.isFresh(good, spec())).toBe(true);
    expect(manager.expiresAt(good)).toBe(clock.now() + HOUR);
    clock.advance(46 * MIN);
    expect(manager.isFresh(good, spec())).toBe(false);
  });
});
