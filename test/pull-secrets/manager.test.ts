// PullSecretManager with exact values: defaults, the usage flush timer, flushUsage's skip rules and outcomes, the
// write's logs, metrics hook, denials and timeouts, and when a caller that joined a shared write starts its own.
// Fake timers throughout (Date included): budgets are wall-clock, so vi.setSystemTime moves "now" past a deadline
// without firing the deadline's timer, which shows what the write itself does at that point.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PullSecretSpec } from '../../src/acr/model.js';
import type { SecretObject } from '../../src/pull-secrets/store.js';
import type { Budget, DockerAuths, TokenSource } from '../../src/pull-secrets/types.js';
import type { SecretWriteResult } from '../../src/pull-secrets/manager.js';
import { binding, HOUR, MIN, T0 } from '../kube/support/fixtures.js';

type ManagerModule = typeof import('../../src/pull-secrets/manager.js');
type StoreModule = typeof import('../../src/pull-secrets/memory-store.js');
type TypesModule = typeof import('../../src/pull-secrets/types.js');
type DockerModule = typeof import('../../src/pull-secrets/docker-config.js');
type ProgressModule = typeof import('../../src/pull-secrets/progress.js');

let M: ManagerModule;
let S: StoreModule;
let T: TypesModule;
let D: DockerModule;
let P: ProgressModule;

const NAME = 'acr-pull-test';
const LAST_USED = 'acr-pull-webhook.k8s.aliyun.com/last-used-at';

function spec(): PullSecretSpec {
  return { namespace: 'apps', name: NAME, requester: 'apps', binding: binding() };
}

/** Token calls the test settles by hand. */
class ManualTokens implements TokenSource {
  calls: { budget: Budget; resolve: (ttlMs: number) => void; reject: (e: unknown) => void }[] = [];
  /** When set, calls answer at once with tokens valid this long. */
  autoTtlMs: number | undefined;

  dockerAuths(_b: unknown, _r: string, budget: Budget): Promise<DockerAuths> {
    return new Promise<DockerAuths>((resolve, reject) => {
      const answer = (ttlMs: number): void =>
        resolve({ auths: { 'x.cr.aliyuncs.com': { username: 'u', password: 'p' } }, expiresAt: Date.now() + ttlMs });
      this.calls.push({ budget, resolve: answer, reject });
      if (this.autoTtlMs !== undefined) answer(this.autoTtlMs);
    });
  }
}

function spyLogger() {
  return { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() };
}

function setup(opts: { onWrite?: boolean; usageTouchAfterMs?: number; autoTtlMs?: number } = {}) {
  const store = new S.MemorySecretStore();
  const tokens = new ManualTokens();
  tokens.autoTtlMs = opts.autoTtlMs;
  const logger = spyLogger();
  const writes: SecretWriteResult[] = [];
  const manager = new M.PullSecretManager({
    store,
    tokens,
    logger,
    ...(opts.onWrite === false ? {} : { onWrite: (w: SecretWriteResult) => writes.push(w) }),
    ...(opts.usageTouchAfterMs !== undefined ? { usageTouchAfterMs: opts.usageTouchAfterMs } : {}),
  });
  return { store, tokens, logger, writes, manager };
}

/** A managed Secret as another writer left it an hour ago, its tokens valid `ttlMs` from now. */
function written(ttlMs = HOUR, lastUsedAt?: number): SecretObject {
  return D.buildPullSecret(
    spec(),
    { auths: { 'x.cr.aliyuncs.com': { username: 'u', password: 'p' } }, expiresAt: Date.now() + ttlMs },
    { now: Date.now() - HOUR, ...(lastUsedAt !== undefined ? { lastUsedAt } : {}) },
  );
}

function track<X>(p: Promise<X>) {
  const s: { done: boolean; value?: X; error?: unknown } = { done: false };
  p.then(
    (v) => Object.assign(s, { done: true, value: v }),
    (e: unknown) => Object.assign(s, { done: true, error: e }),
  );
  return s;
}

const flush = () => vi.advanceTimersByTimeAsync(0);

beforeEach(async () => {
  vi.useFakeTimers({ now: T0 });
  vi.resetModules();
  M = await import('../../src/pull-secrets/manager.js');
  S = await import('../../src/pull-secrets/memory-store.js');
  T = await import('../../src/pull-secrets/types.js');
  D = await import('../../src/pull-secrets/docker-config.js');
  P = await import('../../src/pull-secrets/progress.js');
});

afterEach(() => {
  vi.useRealTimers();
});

describe('defaults', () => {
  it('renews tokens expiring within 15 minutes by default', () => {
    expect(M.DEFAULT_REFRESH_THRESHOLD_MS).toBe(900_000);
    const { manager } = setup();
    expect(manager.refreshThresholdMs).toBe(900_000);
  });
});

describe('start/stop: the usage flush timer', () => {
  it('flushes every 5 minutes by default, once per start, and not after stop', async () => {
    const { store, manager, writes } = setup();
    store.externalWrite(written());
    manager.usage.mark('apps', NAME, T0 + 2 * HOUR);
    manager.start();
    manager.start();
    await vi.advanceTimersByTimeAsync(5 * MIN - 1);
    expect(store.stats.replace).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(store.stats.replace).toBe(1);
    expect(writes).toEqual([{ namespace: 'apps', name: NAME, op: 'touch', outcome: 'ok' }]);
    expect(store.get('apps', NAME)!.metadata.annotations![LAST_USED]).toBe('2025-01-01T02:00:00.000Z');

    await manager.stop();
    manager.usage.mark('apps', NAME, T0 + 5 * HOUR);
    await vi.advanceTimersByTimeAsync(20 * MIN);
    expect(store.stats.replace).toBe(1);
  });

  it('skips a tick while the previous flush still runs, and flushes again on the tick after it ended', async () => {
    const { store, manager } = setup();
    store.externalWrite(written());
    manager.usage.mark('apps', NAME, T0 + 2 * HOUR);
    let release: () => void = () => {};
    let entered = 0;
    store.beforeWrite = (op) => {
      entered++;
      if (op === 'replace' && entered === 1) return new Promise<void>((r) => (release = r));
    };
    manager.start();
    await vi.advanceTimersByTimeAsync(5 * MIN);
    expect(entered).toBe(1);
    await vi.advanceTimersByTimeAsync(5 * MIN);
    expect(entered).toBe(1);
    release();
    await flush();
    expect(store.stats.replace).toBe(1);
    manager.usage.mark('apps', NAME, T0 + 10 * HOUR);
    await vi.advanceTimersByTimeAsync(5 * MIN);
    expect(entered).toBe(2);
    expect(store.stats.replace).toBe(2);
    await manager.stop();
  });

  it('logs a flush that failed as a whole, and keeps flushing on later ticks', async () => {
    const { store, manager, logger } = setup();
    store.externalWrite(written());
    manager.usage.mark('apps', NAME, T0 + 2 * HOUR);
    const get = store.get.bind(store);
    let broken = true;
    store.get = (ns, name) => {
      if (broken) throw new TypeError('cache gone');
      return get(ns, name);
    };
    manager.start();
    await vi.advanceTimersByTimeAsync(5 * MIN);
    expect(logger.warn.mock.calls).toEqual([[{ err: 'TypeError' }, 'persisting pull Secret usage failed']]);
    broken = false;
    await vi.advanceTimersByTimeAsync(5 * MIN);
    expect(store.stats.replace).toBe(1);
    await manager.stop();
  });
});

describe('flushUsage', () => {
  it('skips marks of Secrets not in the cache and of Secrets being written', async () => {
    const { store, tokens, manager } = setup();
    manager.usage.mark('apps', 'gone', T0 + 2 * HOUR);
    expect(await manager.flushUsage()).toBe(0);

    store.externalWrite(written(MIN)); // due for renewal
    const renewal = track(manager.renew(spec(), { deadline: T0 + 10_000 }));
    await flush();
    expect(tokens.calls.length).toBe(1);
    manager.usage.mark('apps', NAME, T0 + 2 * HOUR);
    expect(await manager.flushUsage()).toBe(0);
    expect(store.stats.replace).toBe(0);
    tokens.calls[0]!.resolve(HOUR);
    await flush();
    expect(renewal).toEqual({ done: true, value: undefined });
  });

  it('falls back to the creation time when the Secret has no annotations at all', async () => {
    const { store, manager } = setup({ onWrite: false });
    store.externalWrite({ apiVersion: 'v1', kind: 'Secret', metadata: { name: NAME, namespace: 'apps', labels: { 'app.kubernetes.io/managed-by': 'acr-pull-webhook' } } });
    manager.usage.mark('apps', NAME, T0 + HOUR);
    expect(await manager.flushUsage()).toBe(0); // lags by exactly 1 h
    manager.usage.mark('apps', NAME, T0 + HOUR + 1);
    expect(await manager.flushUsage()).toBe(1);
    expect(store.get('apps', NAME)!.metadata.annotations).toEqual({ [LAST_USED]: '2025-01-01T01:00:00.001Z' });
  });

  it('writes only when the mark lags the annotation by more than usageTouchAfterMs', async () => {
    const { store, manager } = setup({ usageTouchAfterMs: 10 * MIN });
    store.externalWrite(written(HOUR, T0 + 30 * MIN));
    manager.usage.mark('apps', NAME, T0 + 40 * MIN);
    expect(await manager.flushUsage()).toBe(0);
    manager.usage.mark('apps', NAME, T0 + 40 * MIN + 1);
    expect(await manager.flushUsage()).toBe(1);
  });

  it('counts 409 and 404 as conflicts without a log, and other failures as errors with one', async () => {
    const { store, manager, writes, logger } = setup();
    for (const name of ['a', 'b', 'c']) store.externalWrite({ ...written(), metadata: { ...written().metadata, name } });
    for (const name of ['a', 'b', 'c']) manager.usage.mark('apps', name, T0 + 2 * HOUR);
    store.beforeWrite = (_op, ns, name) => {
      if (name === 'a') store.externalWrite(store.get(ns, name)!);
      if (name === 'b') store.externalDelete(ns, name);
      if (name === 'c') throw new Error('boom');
    };
    expect(await manager.flushUsage()).toBe(0);
    expect(writes).toEqual([
      { namespace: 'apps', name: 'a', op: 'touch', outcome: 'conflict' },
      { namespace: 'apps', name: 'b', op: 'touch', outcome: 'conflict' },
      { namespace: 'apps', name: 'c', op: 'touch', outcome: 'error' },
    ]);
    expect(logger.warn.mock.calls).toEqual([[{ namespace: 'apps', name: 'c', err: 'Error' }, 'recording pull Secret usage failed']]);
  });

  it('needs no onWrite hook', async () => {
    const { store, manager, logger } = setup({ onWrite: false });
    store.externalWrite(written());
    manager.usage.mark('apps', NAME, T0 + 2 * HOUR);
    expect(await manager.flushUsage()).toBe(1);
    expect(logger.warn).not.toHaveBeenCalled();
    manager.usage.mark('apps', NAME, T0 + 4 * HOUR);
    store.beforeWrite = () => {
      throw new Error('boom');
    };
    expect(await manager.flushUsage()).toBe(0);
    expect(logger.warn.mock.calls).toEqual([[{ namespace: 'apps', name: NAME, err: 'Error' }, 'recording pull Secret usage failed']]);
  });
});

describe('the write', () => {
  it('asks for tokens with the shared deadline and record, and logs the write', async () => {
    const { tokens, manager, logger, writes } = setup();
    const r = track(manager.renew(spec(), { deadline: T0 + 10_000 }));
    await flush();
    const b = tokens.calls[0]!.budget;
    expect(Object.keys(b).sort()).toEqual(['deadline', 'progress']);
    expect(b.deadline).toBe(T0 + 10_000);
    expect(b.progress).toBeInstanceOf(P.Progress);
    tokens.calls[0]!.resolve(HOUR);
    await flush();
    expect(r).toEqual({ done: true, value: undefined });
    expect(writes).toEqual([{ namespace: 'apps', name: NAME, op: 'create', outcome: 'ok' }]);
    expect(logger.info.mock.calls).toEqual([
      [{ namespace: 'apps', name: NAME, op: 'create', attempt: 0, expiresAt: '2025-01-01T01:00:00.000Z' }, 'pull Secret written'],
    ]);
    expect(logger.warn).not.toHaveBeenCalled();
  });

  it('warns when the tokens arrive already expired (at or before now)', async () => {
    const expired = setup({ autoTtlMs: 0 });
    await expired.manager.renew(spec(), { deadline: T0 + 10_000 });
    expect(expired.logger.warn.mock.calls).toEqual([[{ namespace: 'apps', name: NAME }, 'registry tokens arrived already expired']]);
    const fine = setup({ autoTtlMs: 1 });
    await fine.manager.renew(spec(), { deadline: T0 + 10_000 });
    expect(fine.logger.warn).not.toHaveBeenCalled();
  });

  it('turns a failed write into a 500 denial, counted and logged', async () => {
    for (const withHook of [true, false]) {
      const { store, manager, writes, logger } = setup({ autoTtlMs: HOUR, onWrite: withHook });
      store.beforeWrite = () => {
        throw new Error('boom');
      };
      const err = await manager.renew(spec(), { deadline: T0 + 10_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(T.DenialError);
      expect((err as Error).message).toBe(`could not write pull Secret apps/${NAME}: Error`);
      expect((err as InstanceType<TypesModule['DenialError']>).code).toBe(500);
      expect(writes).toEqual(withHook ? [{ namespace: 'apps', name: NAME, op: 'create', outcome: 'error' }] : []);
      expect(logger.warn.mock.calls).toEqual([[{ namespace: 'apps', name: NAME, op: 'create', err: 'Error' }, 'writing pull Secret failed']]);
    }
  });

  it('creates after a replace finds the Secret gone (404 counts as a conflict)', async () => {
    const { store, manager, writes } = setup({ autoTtlMs: HOUR });
    store.externalWrite(written(MIN));
    store.beforeWrite = (op, ns, name) => {
      if (op === 'replace') store.externalDelete(ns, name);
    };
    await manager.renew(spec(), { deadline: T0 + 10_000 });
    expect(writes.map((w) => `${w.op}:${w.outcome}`)).toEqual(['replace:conflict', 'create:ok']);
    expect(store.get('apps', NAME)).toBeDefined();
  });

  it('gives up on a Secret that keeps changing with a 503 Conflict', async () => {
    const { store, manager } = setup({ autoTtlMs: HOUR });
    store.externalWrite(written(MIN));
    store.beforeWrite = (op, ns, name) => {
      if (op === 'replace') store.externalWrite(store.get(ns, name)!);
    };
    const err = (await manager.renew(spec(), { deadline: T0 + 10_000 }).catch((e: unknown) => e)) as InstanceType<TypesModule['DenialError']>;
    expect(err.message).toBe(`could not write pull Secret apps/${NAME}: it kept changing under concurrent writers`);
    expect(err.code).toBe(503);
    expect(err.reason).toBe('Conflict');
  });

  it('refuses a same-named Secret it does not manage with a 403 AlreadyExists', async () => {
    const { store, manager } = setup({ autoTtlMs: HOUR });
    store.externalWrite({ apiVersion: 'v1', kind: 'Secret', metadata: { name: NAME, namespace: 'apps' }, type: 'Opaque', data: {} });
    const err = (await manager.renew(spec(), { deadline: T0 + 10_000 }).catch((e: unknown) => e)) as InstanceType<TypesModule['DenialError']>;
    expect(err.message).toBe(`Secret apps/${NAME} already exists and is not managed by acr-pull-webhook; delete or rename it`);
    expect(err.code).toBe(403);
    expect(err.reason).toBe('AlreadyExists');
  });

  it('names the API server when the deadline passes during the Secret write', async () => {
    const { store, manager } = setup({ autoTtlMs: HOUR });
    store.beforeWrite = () => new Promise<void>(() => {});
    const r = track(manager.renew(spec(), { deadline: T0 + 1000 }));
    await vi.advanceTimersByTimeAsync(999);
    expect(r.done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const err = r.error as InstanceType<TypesModule['DenialError']>;
    expect(err.message).toBe(
      `acr-pull-webhook timed out writing pull Secret apps/${NAME}: the Kubernetes API server did not answer in time. Check the API server's health and load, and the webhook's network path to it`,
    );
    expect(err.code).toBe(503);
    expect(err.reason).toBe('Timeout');
  });

  it('asks for no tokens when the deadline has already come', async () => {
    const { tokens, manager } = setup();
    const err = (await manager.renew(spec(), { deadline: T0 }).catch((e: unknown) => e)) as InstanceType<TypesModule['DenialError']>;
    expect(err.message).toBe(`acr-pull-webhook timed out writing pull Secret apps/${NAME}`);
    expect(err.reason).toBe('Timeout');
    await flush();
    expect(tokens.calls.length).toBe(0);
  });

  it('does not write once the deadline came while the tokens were on their way, and says which step took the time', async () => {
    const { store, tokens, manager } = setup();
    const r = track(manager.renew(spec(), { deadline: T0 + 1000 }));
    await flush();
    vi.setSystemTime(T0 + 1000); // the clock moves; the deadline's timer has not run yet
    tokens.calls[0]!.resolve(HOUR);
    await flush();
    expect(store.stats.create).toBe(0);
    expect((r.error as Error).message).toBe(
      `acr-pull-webhook timed out: obtaining registry credentials for pull Secret apps/${NAME} took 1.0 s, and no time was left before the admission deadline. ` +
        "Controllers create the Pod again by themselves; if this repeats, check that step's latency from the webhook",
    );
  });

  it('counts a finished write attempt as a step that took time', async () => {
    const { store, manager } = setup({ autoTtlMs: HOUR });
    store.beforeWrite = (op) => {
      if (op !== 'create') return;
      vi.setSystemTime(T0 + 3000);
      store.externalWrite(written(MIN)); // a peer created it, with tokens already due
    };
    const err = await manager.renew(spec(), { deadline: T0 + 2000 }).catch((e: unknown) => e);
    expect((err as Error).message).toBe(
      `acr-pull-webhook timed out: writing pull Secret apps/${NAME} took 3.0 s, and no time was left before the admission deadline. ` +
        "Controllers create the Pod again by themselves; if this repeats, check that step's latency from the webhook",
    );
    expect(store.stats.create).toBe(1);
    expect(store.stats.replace).toBe(0);
  });
});

describe('renew: joining a shared write', () => {
  it('a joined caller with more time shares a refusal that was no timeout', async () => {
    const { tokens, manager } = setup();
    const first = track(manager.renew(spec(), { deadline: T0 + 1000 }));
    const second = track(manager.renew(spec(), { deadline: T0 + 5000 }));
    await flush();
    tokens.calls[0]!.reject(new T.DenialError('AssumeRole denied: NoPermission', 403, 'Forbidden'));
    await flush();
    expect((first.error as Error).message).toBe('AssumeRole denied: NoPermission');
    expect((second.error as Error).message).toBe('AssumeRole denied: NoPermission');
    expect(tokens.calls.length).toBe(1);
  });

  it('a joined caller with the same deadline shares a timeout', async () => {
    const { tokens, manager } = setup();
    const first = track(manager.renew(spec(), { deadline: T0 + 1000 }));
    const second = track(manager.renew(spec(), { deadline: T0 + 1000 }));
    await flush();
    tokens.calls[0]!.reject(new T.DenialError('AssumeRole timed out', 503, 'Timeout'));
    await flush();
    expect((first.error as Error).message).toBe('AssumeRole timed out');
    expect((second.error as Error).message).toBe('AssumeRole timed out');
    expect(tokens.calls.length).toBe(1);
  });

  it('a joined caller with a later deadline that has come too shares the timeout', async () => {
    const { tokens, manager } = setup();
    track(manager.renew(spec(), { deadline: T0 + 1000 }));
    const second = track(manager.renew(spec(), { deadline: T0 + 2000 }));
    await flush();
    vi.setSystemTime(T0 + 2000);
    tokens.calls[0]!.reject(new T.DenialError('AssumeRole timed out', 503, 'Timeout'));
    await flush();
    expect((second.error as Error).message).toBe('AssumeRole timed out');
    expect(tokens.calls.length).toBe(1);
  });

  it('a caller stops following the shared write once it is over', async () => {
    const { manager } = setup({ autoTtlMs: HOUR });
    const mine = new P.Progress();
    await manager.renew(spec(), { deadline: T0 + 1000, progress: mine });
    expect(mine.timedOut('admitting').message).toBe('acr-pull-webhook timed out admitting');
  });
});
