// ServiceAccountSync against a scripted manager, ServiceAccount cache, coverage and logger: exact results,
// stats, patches, events and log lines; the interval, debounce and back-to-back passes with fake timers.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PullSecretSpec } from '../../src/acr/model.js';
import { recordingLogger } from '../support/recording-logger.js';
import type { PullSecretManager } from '../../src/pull-secrets/manager.js';
import {
  ServiceAccountSync,
  type HelperCoverage,
  type HelperFailureStage,
  type ServiceAccountInfo,
  type ServiceAccountSyncOptions,
  type ServiceAccountWriter,
} from '../../src/pull-secrets/service-account-sync.js';
import type { EventType, SecretObject } from '../../src/pull-secrets/store.js';
import type { Budget } from '../../src/pull-secrets/types.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');

const specOf = (namespace: string, name: string) => ({ namespace, name }) as PullSecretSpec;

class Accounts implements ServiceAccountWriter {
  readonly items = new Map<string, ServiceAccountInfo>();
  /** What get() answers instead of the listed item (the cache moved on). */
  readonly current = new Map<string, ServiceAccountInfo | undefined>();
  readonly patches: Array<[ServiceAccountInfo, readonly string[]]> = [];
  readonly events: Array<[string, EventType, string, string]> = [];
  patchError: Error | undefined;
  put(sa: ServiceAccountInfo): void {
    this.items.set(`${sa.namespace}/${sa.name}`, sa);
  }
  list(): Iterable<ServiceAccountInfo> {
    return [...this.items.values()];
  }
  get(namespace: string, name: string): ServiceAccountInfo | undefined {
    const key = `${namespace}/${name}`;
    return this.current.has(key) ? this.current.get(key) : this.items.get(key);
  }
  synced(): boolean {
    return true;
  }
  async addPullSecrets(sa: ServiceAccountInfo, names: readonly string[]): Promise<void> {
    this.patches.push([sa, names]);
    if (this.patchError) throw this.patchError;
  }
  async recordEvent(sa: Pick<ServiceAccountInfo, 'namespace' | 'name' | 'uid'>, type: EventType, reason: string, message: string): Promise<void> {
    this.events.push([`${sa.namespace}/${sa.name}`, type, reason, message]);
  }
}

/** The manager surface the sync uses: store.get/synced, isFresh, renew. Secrets are fresh when annotated so. */
class Manager {
  readonly secrets = new Map<string, SecretObject>();
  readonly renewed: Array<[string, Budget]> = [];
  renewError: ((spec: PullSecretSpec) => Error | undefined) | undefined;
  /** When set, renew waits on the next of these. */
  gates: Array<Promise<void>> | undefined;
  readonly store = {
    synced: () => true,
    get: (namespace: string, name: string) => this.secrets.get(`${namespace}/${name}`),
  };
  fresh(namespace: string, name: string): void {
    this.secrets.set(`${namespace}/${name}`, { apiVersion: 'v1', kind: 'Secret', metadata: { namespace, name, annotations: { fresh: 'yes' } } });
  }
  isFresh(cur: SecretObject, _spec: PullSecretSpec): boolean {
    return cur.metadata.annotations?.fresh === 'yes';
  }
  async renew(spec: PullSecretSpec, budget: Budget): Promise<void> {
    this.renewed.push([`${spec.namespace}/${spec.name}`, budget]);
    if (this.gates) await this.gates.shift();
    const err = this.renewError?.(spec);
    if (err) throw err;
  }
}

/** Covers every ServiceAccount named in `names`; each namespace gets the Secrets `secrets`. */
function coverage(names: string[], secrets: string[]): HelperCoverage {
  return {
    covers: (_ns, name) => names.includes(name),
    specs: (ns) => secrets.map((s) => specOf(ns, s)),
  };
}

const httpError = (code: number) => Object.assign(new Error('secret text'), { code });

function world(opts: Partial<ServiceAccountSyncOptions> & { secrets?: string[]; names?: string[]; withFailureHook?: boolean } = {}) {
  const accounts = new Accounts();
  const manager = new Manager();
  const { logger, lines } = recordingLogger();
  const failures: HelperFailureStage[] = [];
  const clock = { t: T0 };
  const leading = { value: true };
  let cov: HelperCoverage | undefined = coverage(opts.names ?? ['default'], opts.secrets ?? ['acr-1']);
  const sync = new ServiceAccountSync({
    accounts,
    manager: manager as unknown as PullSecretManager,
    leader: { isLeader: () => leading.value },
    coverage: () => cov,
    now: () => clock.t,
    logger,
    ...(opts.withFailureHook === false ? {} : { onFailure: (s: HelperFailureStage) => void failures.push(s) }),
    ...opts,
  });
  return {
    sync,
    accounts,
    manager,
    lines,
    failures,
    clock,
    leading,
    setCoverage: (c: HelperCoverage | undefined) => {
      cov = c;
    },
  };
}

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('ServiceAccountSync.runOnce', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(T0);
  });

  it('renews the Secrets, then adds only the missing references to the version the cache holds now', async () => {
    const w = world({ secrets: ['acr-1', 'acr-2'] });
    w.accounts.put({ namespace: 'apps', name: 'default', resourceVersion: '1', imagePullSecrets: ['acr-2', 'other'] });
    w.accounts.current.set('apps/default', { namespace: 'apps', name: 'default', resourceVersion: '2', imagePullSecrets: ['acr-2', 'other'] });
    expect(await w.sync.runOnce()).toEqual([{ namespace: 'apps', name: 'default', outcome: 'patched' }]);
    expect(w.manager.renewed).toEqual([
      ['apps/acr-1', { deadline: T0 + 30_000 }],
      ['apps/acr-2', { deadline: T0 + 30_000 }],
    ]);
    expect(w.accounts.patches).toEqual([[{ namespace: 'apps', name: 'default', resourceVersion: '2', imagePullSecrets: ['acr-2', 'other'] }, ['acr-1']]]);
    expect(w.lines).toEqual([['info', { namespace: 'apps', name: 'default', secrets: ['acr-1'] }, "ServiceAccount given the credential helper's pull Secrets"]]);
    expect(w.sync.stats).toEqual({ passes: 1, patched: 1, failed: 0 });
  });

  it('patches the listed version when the cache no longer has it, and one without imagePullSecrets', async () => {
    const w = world({ timeoutMs: 5_000 });
    w.accounts.put({ namespace: 'apps', name: 'default', resourceVersion: '1' });
    w.accounts.current.set('apps/default', undefined);
    expect(await w.sync.runOnce()).toEqual([{ namespace: 'apps', name: 'default', outcome: 'patched' }]);
    expect(w.manager.renewed).toEqual([['apps/acr-1', { deadline: T0 + 5_000 }]]);
    expect(w.accounts.patches).toEqual([[{ namespace: 'apps', name: 'default', resourceVersion: '1' }, ['acr-1']]]);
  });

  it('listed but stale: renews without patching; listed and fresh: nothing at all', async () => {
    const w = world({ secrets: ['acr-1', 'acr-2'] });
    w.accounts.put({ namespace: 'apps', name: 'default', imagePullSecrets: ['acr-1', 'acr-2'] });
    w.manager.fresh('apps', 'acr-1'); // acr-2 is not fresh: the ServiceAccount is not in place
    expect(await w.sync.runOnce()).toEqual([{ namespace: 'apps', name: 'default', outcome: 'patched' }]);
    expect(w.manager.renewed.map(([k]) => k)).toEqual(['apps/acr-1', 'apps/acr-2']);
    expect(w.accounts.patches).toEqual([]);
    expect(w.lines).toEqual([]);

    w.manager.fresh('apps', 'acr-2');
    expect(await w.sync.runOnce()).toEqual([]);
    expect(w.manager.renewed).toHaveLength(2);
    expect(w.sync.stats).toEqual({ passes: 2, patched: 1, failed: 0 });
  });

  it('a Secret listed but absent from the store is not in place', async () => {
    const w = world();
    w.accounts.put({ namespace: 'apps', name: 'default', imagePullSecrets: ['acr-1'] });
    expect(await w.sync.runOnce()).toEqual([{ namespace: 'apps', name: 'default', outcome: 'patched' }]);
    expect(w.manager.renewed.map(([k]) => k)).toEqual(['apps/acr-1']);
  });

  it('fresh but unlisted is not in place either', async () => {
    const w = world({ secrets: ['acr-1', 'acr-2'] });
    w.accounts.put({ namespace: 'apps', name: 'default', imagePullSecrets: ['acr-1'] });
    w.manager.fresh('apps', 'acr-1');
    w.manager.fresh('apps', 'acr-2');
    expect(await w.sync.runOnce()).toEqual([{ namespace: 'apps', name: 'default', outcome: 'patched' }]);
    expect(w.accounts.patches.map(([, names]) => names)).toEqual([['acr-2']]);
  });

  it('a Secret that cannot be written: a failed result, a warning, an Event naming every Secret, a metric, backoff', async () => {
    const w = world({ secrets: ['acr-1', 'acr-2'] });
    w.accounts.put({ namespace: 'apps', name: 'default', uid: 'u1' });
    w.manager.renewError = () => httpError(403);
    expect(await w.sync.runOnce()).toEqual([{ namespace: 'apps', name: 'default', outcome: 'failed', stage: 'secret', error: 'Error HTTP 403' }]);
    expect(w.failures).toEqual(['secret']);
    expect(w.lines).toEqual([
      ['warn', { namespace: 'apps', name: 'default', stage: 'secret', failures: 1, err: 'Error HTTP 403' }, 'credential helper: ServiceAccount not served'],
    ]);
    expect(w.accounts.events).toEqual([
      [
        'apps/default',
        'Warning',
        'PullSecretNotReady',
        'acr-pull-webhook (acr-configuration) could not prepare the pull Secret acr-1, acr-2 (attempt 1): Error HTTP 403; retrying in 10s',
      ],
    ]);
    expect(w.sync.stats).toEqual({ passes: 1, patched: 0, failed: 1 });

    // Backing off: skipped until exactly retryAt, retried at it.
    w.clock.t = T0 + 10_000 - 1;
    expect(await w.sync.runOnce()).toEqual([]);
    w.clock.t = T0 + 10_000;
    expect(await w.sync.runOnce()).toEqual([{ namespace: 'apps', name: 'default', outcome: 'failed', stage: 'secret', error: 'Error HTTP 403' }]);
    expect(w.accounts.events[1]![3]).toBe(
      'acr-pull-webhook (acr-configuration) could not prepare the pull Secret acr-1, acr-2 (attempt 2): Error HTTP 403; retrying in 20s',
    );
    expect(w.sync.stats).toEqual({ passes: 3, patched: 0, failed: 2 });
  });

  it('a failed patch without a metrics hook: failed result at the patch stage', async () => {
    const w = world({ withFailureHook: false });
    w.accounts.put({ namespace: 'apps', name: 'default' });
    w.accounts.patchError = httpError(409);
    expect(await w.sync.runOnce()).toEqual([{ namespace: 'apps', name: 'default', outcome: 'failed', stage: 'patch', error: 'Error HTTP 409' }]);
    expect(w.accounts.events.map((e) => e[3])).toEqual([
      'acr-pull-webhook (acr-configuration) could not add its pull Secrets to imagePullSecrets (attempt 1): Error HTTP 409; retrying in 10s',
    ]);
  });

  it('the backoff of a ServiceAccount that left coverage is forgotten; one still covered is kept', async () => {
    const w = world({ names: ['default', 'builder'] });
    w.accounts.put({ namespace: 'apps', name: 'default' });
    w.accounts.put({ namespace: 'apps', name: 'builder' });
    w.manager.renewError = () => httpError(500);
    await w.sync.runOnce();
    expect(w.accounts.events.map((e) => e[0])).toEqual(['apps/default', 'apps/builder']);
    w.setCoverage(coverage(['builder'], ['acr-1']));
    expect(await w.sync.runOnce()).toEqual([]); // builder backs off; default is not covered
    w.setCoverage(coverage(['default', 'builder'], ['acr-1']));
    // default's failure count starts over and it is tried at once; builder still backs off.
    expect((await w.sync.runOnce()).map((r) => r.name)).toEqual(['default']);
    expect(w.accounts.events.map((e) => e[3].match(/attempt \d+/)![0])).toEqual(['attempt 1', 'attempt 1', 'attempt 1']);
  });

  it('nothing is written once leadership is lost', async () => {
    const w = world();
    w.accounts.put({ namespace: 'apps', name: 'default' });
    let checks = 0;
    w.leading.value = true;
    const sync = new ServiceAccountSync({
      accounts: w.accounts,
      manager: w.manager as unknown as PullSecretManager,
      leader: { isLeader: () => ++checks === 1 },
      coverage: () => coverage(['default'], ['acr-1']),
    });
    expect(await sync.runOnce()).toEqual([]);
    expect(w.manager.renewed).toEqual([]);
    expect(sync.stats).toEqual({ passes: 1, patched: 0, failed: 0 });
  });

  it('a call during a pass joins it and asks for exactly one more pass after it', async () => {
    const w = world();
    w.accounts.put({ namespace: 'apps', name: 'default' });
    const releases: Array<() => void> = [];
    w.manager.gates = Array.from({ length: 4 }, () => new Promise<void>((r) => releases.push(r)));
    const first = w.sync.runOnce();
    const second = w.sync.runOnce();
    expect(w.sync.stats.passes).toBe(1);
    releases[0]!();
    expect(await first).toEqual([{ namespace: 'apps', name: 'default', outcome: 'patched' }]);
    expect(await second).toEqual([{ namespace: 'apps', name: 'default', outcome: 'patched' }]);
    for (let i = 0; i < 50 && w.manager.renewed.length < 2; i++) await Promise.resolve();
    expect(w.sync.stats.passes).toBe(2);
    expect(w.manager.renewed).toHaveLength(2);
    releases[1]!();
    for (let i = 0; i < 50 && w.sync.stats.patched < 2; i++) await Promise.resolve();
    for (let i = 0; i < 50; i++) await Promise.resolve();
    expect(w.sync.stats).toEqual({ passes: 2, patched: 2, failed: 0 });
    expect(w.manager.renewed).toHaveLength(2);
  });

  it('serves up to `concurrency` ServiceAccounts at once (default 4)', async () => {
    const w = world({ names: ['a', 'b', 'c', 'd', 'e'] });
    for (const n of ['a', 'b', 'c', 'd', 'e']) w.accounts.put({ namespace: n, name: n });
    const releases: Array<() => void> = [];
    w.manager.gates = Array.from({ length: 5 }, () => new Promise<void>((r) => releases.push(r)));
    const pass = w.sync.runOnce();
    await Promise.resolve();
    expect(w.manager.renewed.map(([k]) => k)).toEqual(['a/acr-1', 'b/acr-1', 'c/acr-1', 'd/acr-1']);
    for (const r of releases) r();
    expect((await pass).map((r) => r.name)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('a lone pass is not followed by another', async () => {
    const w = world();
    expect(await w.sync.runOnce()).toEqual([]);
    for (let i = 0; i < 50; i++) await Promise.resolve();
    expect(w.sync.stats).toEqual({ passes: 1, patched: 0, failed: 0 });
  });
});

describe('ServiceAccountSync timers', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });

  it('a pass every interval from start(); start() twice keeps one interval; none after stop()', async () => {
    const w = world({ intervalMs: 1_000 });
    w.sync.start();
    w.sync.start();
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(w.sync.stats.passes).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(w.sync.stats.passes).toBe(1);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(w.sync.stats.passes).toBe(3);
    await w.sync.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(w.sync.stats.passes).toBe(3);
  });

  it('poke(): one pass after the debounce, however many pokes; nothing before start() or after stop()', async () => {
    const w = world({ intervalMs: 60_000, debounceMs: 200 });
    w.sync.poke();
    expect(vi.getTimerCount()).toBe(0);
    w.sync.start();
    w.sync.poke();
    await vi.advanceTimersByTimeAsync(100);
    w.sync.poke();
    expect(vi.getTimerCount()).toBe(2);
    await vi.advanceTimersByTimeAsync(99);
    expect(w.sync.stats.passes).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(w.sync.stats.passes).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(w.sync.stats.passes).toBe(1);
    w.sync.poke();
    await w.sync.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(w.sync.stats.passes).toBe(1);
  });

  it('stop() waits for the pass in flight', async () => {
    const w = world({ intervalMs: 1_000 });
    w.accounts.put({ namespace: 'apps', name: 'default' });
    let release!: () => void;
    w.manager.gates = [new Promise<void>((r) => (release = r))];
    w.sync.start();
    await vi.advanceTimersByTimeAsync(1_000);
    let stopped = false;
    const stopping = w.sync.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(w.sync.stats).toEqual({ passes: 1, patched: 1, failed: 0 });
  });

  it('a pass that throws is logged as an error', async () => {
    const w = world({ intervalMs: 1_000 });
    w.setCoverage({
      covers: () => {
        throw httpError(500);
      },
      specs: () => [],
    });
    w.accounts.put({ namespace: 'apps', name: 'default' });
    w.sync.start();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(w.lines).toEqual([['error', { err: 'Error HTTP 500' }, 'ServiceAccount pass failed']]);
    await w.sync.stop();
  });
});

describe('ServiceAccountSync with timers without unref()', () => {
  it('starts, pokes and stops with plain numeric timer handles', async () => {
    const pending = new Map<number, () => void>();
    let next = 1;
    const arm = (fn: () => void) => {
      pending.set(next, fn);
      return next++;
    };
    const disarm = (id: number | undefined) => {
      if (id !== undefined) pending.delete(id);
    };
    vi.stubGlobal('setInterval', arm);
    vi.stubGlobal('setTimeout', arm);
    vi.stubGlobal('clearInterval', disarm);
    vi.stubGlobal('clearTimeout', disarm);
    const w = world();
    w.sync.start();
    w.sync.poke();
    expect([...pending.keys()]).toEqual([1, 2]);
    const fire = pending.get(2)!;
    pending.delete(2);
    fire();
    for (let i = 0; i < 50 && w.sync.stats.passes === 0; i++) await Promise.resolve();
    expect(w.sync.stats.passes).toBe(1);
    await w.sync.stop();
    expect([...pending.keys()]).toEqual([]);
  });
});
