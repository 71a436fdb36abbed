// SecretRefresher against a scripted manager and store: exact results, stats, log lines and Events; backoff and
// bookkeeping of Secrets that went away; options; the interval with fake timers.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Binding, PullSecretSpec } from '../../src/acr/model.js';
import { recordingLogger } from '../support/recording-logger.js';
import type { PullSecretManager } from '../../src/pull-secrets/manager.js';
import { SecretRefresher, type RefreshResult, type SecretRefresherOptions } from '../../src/pull-secrets/refresher.js';
import type { EventType, SecretObject } from '../../src/pull-secrets/store.js';
import type { Budget } from '../../src/pull-secrets/types.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const EXPIRES = Date.parse('2026-01-01T12:00:00Z');
const BINDING = { chain: {}, registries: [] } as unknown as Binding;

function secret(namespace: string, name: string, resourceVersion: string | undefined, kind: 'due' | 'fresh' | 'invalid' = 'due'): SecretObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { namespace, name, ...(resourceVersion === undefined ? {} : { resourceVersion }), annotations: { kind } },
  };
}

/** The manager surface the refresher uses. A Secret's `kind` annotation says whether it is due or readable. */
class Manager {
  readonly secrets: SecretObject[] = [];
  readonly renewed: Array<[PullSecretSpec, Budget]> = [];
  readonly events: Array<[string, EventType, string, string]> = [];
  renewError: Error | undefined;
  gates: Array<Promise<void>> | undefined;
  isSynced = true;
  listError: Error | undefined;
  readonly store = {
    synced: () => this.isSynced,
    list: () => {
      if (this.listError) throw this.listError;
      return [...this.secrets];
    },
    recordEvent: async (s: SecretObject, type: EventType, reason: string, message: string) => {
      this.events.push([`${s.metadata.namespace}/${s.metadata.name}`, type, reason, message]);
    },
  };
  needsRenewal(s: SecretObject): boolean {
    return s.metadata.annotations?.kind !== 'fresh';
  }
  decode(s: SecretObject) {
    return s.metadata.annotations?.kind === 'invalid' ? undefined : { requester: 'req-ns', binding: BINDING, expiresAt: EXPIRES };
  }
  async renew(spec: PullSecretSpec, budget: Budget): Promise<void> {
    this.renewed.push([spec, budget]);
    if (this.gates) await this.gates.shift();
    if (this.renewError) throw this.renewError;
  }
}

const httpError = (code: number) => Object.assign(new Error('secret text'), { code });

function world(opts: Partial<SecretRefresherOptions> & { hook?: boolean } = {}) {
  const manager = new Manager();
  const { logger, lines } = recordingLogger();
  const results: RefreshResult[] = [];
  const clock = { t: T0 };
  const leading = { value: true };
  const { hook, ...rest } = opts;
  const refresher = new SecretRefresher({
    manager: manager as unknown as PullSecretManager,
    leader: { isLeader: () => leading.value },
    now: () => clock.t,
    logger,
    ...(hook === false ? {} : { onRefresh: (r: RefreshResult) => void results.push(r) }),
    ...rest,
  });
  return { refresher, manager, lines, results, clock, leading };
}

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('SecretRefresher.runOnce', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(T0);
  });

  it('renews what is due with the default 30 s budget and logs it; skips what is fresh', async () => {
    const w = world();
    w.manager.secrets.push(secret('apps', 'due', '1'), secret('apps', 'fresh', '1', 'fresh'));
    const r = await w.refresher.runOnce();
    expect(r).toEqual([{ namespace: 'apps', name: 'due', outcome: 'renewed', failures: 0 }]);
    expect(w.results).toEqual(r);
    expect(w.manager.renewed).toEqual([[{ namespace: 'apps', name: 'due', requester: 'req-ns', binding: BINDING }, { deadline: T0 + 30_000 }]]);
    expect(w.lines).toEqual([['info', { namespace: 'apps', name: 'due', previousFailures: 0 }, 'pull Secret renewed']]);
    expect(w.refresher.stats).toEqual({ renewed: 1, failed: 0, invalid: 0 });
  });

  it('a failure: result, warning, Event with the expiry, backoff from backoffInitialMs; success after says how many failed', async () => {
    const w = world({ timeoutMs: 5_000, backoffInitialMs: 2_000 });
    w.manager.secrets.push(secret('apps', 's', '1'));
    w.manager.renewError = httpError(503);
    expect(await w.refresher.runOnce()).toEqual([
      { namespace: 'apps', name: 's', outcome: 'failed', failures: 1, error: 'Error HTTP 503', retryAt: T0 + 2_000 },
    ]);
    expect(w.manager.renewed[0]![1]).toEqual({ deadline: T0 + 5_000 });
    expect(w.lines).toEqual([['warn', { namespace: 'apps', name: 's', failures: 1, retryInMs: 2_000, err: 'Error HTTP 503' }, 'pull Secret renewal failed']]);
    expect(w.manager.events).toEqual([
      [
        'apps/s',
        'Warning',
        'RefreshFailed',
        'acr-pull-webhook could not renew the registry credentials (attempt 1): Error HTTP 503; retrying in 2s; current credentials expire at 2026-01-01T12:00:00.000Z',
      ],
    ]);
    expect(w.refresher.retryState('apps', 's')).toEqual({ failures: 1, retryAt: T0 + 2_000 });

    w.clock.t = T0 + 1_999;
    expect(await w.refresher.runOnce()).toEqual([]);
    w.clock.t = T0 + 2_000;
    expect(await w.refresher.runOnce()).toMatchObject([{ outcome: 'failed', failures: 2, retryAt: T0 + 6_000 }]);
    w.clock.t = T0 + 6_000;
    w.manager.renewError = undefined;
    w.lines.length = 0;
    expect(await w.refresher.runOnce()).toEqual([{ namespace: 'apps', name: 's', outcome: 'renewed', failures: 0 }]);
    expect(w.lines).toEqual([['info', { namespace: 'apps', name: 's', previousFailures: 2 }, 'pull Secret renewed']]);
    expect(w.refresher.retryState('apps', 's')).toBeUndefined();
    expect(w.refresher.stats).toEqual({ renewed: 1, failed: 2, invalid: 0 });
  });

  it('an unreadable Secret is reported once per version, again after it went away and came back', async () => {
    const w = world();
    w.manager.secrets.push(secret('apps', 'bad', '5', 'invalid'));
    const invalid = { namespace: 'apps', name: 'bad', outcome: 'invalid', failures: 0, error: 'binding or expiry annotation missing or malformed' };
    expect(await w.refresher.runOnce()).toEqual([invalid]);
    expect(w.results).toEqual([invalid]);
    expect(w.lines).toEqual([
      ['warn', { namespace: 'apps', name: 'bad' }, 'managed pull Secret cannot be renewed: binding or expiry annotation missing or malformed'],
    ]);
    expect(w.manager.events).toEqual([
      ['apps/bad', 'Warning', 'RefreshSkipped', 'acr-pull-webhook cannot renew this Secret: its binding or expiry annotation is missing or malformed'],
    ]);
    expect(await w.refresher.runOnce()).toEqual([]);
    w.manager.secrets[0] = secret('apps', 'bad', '6', 'invalid');
    expect(await w.refresher.runOnce()).toEqual([invalid]);
    w.manager.secrets.length = 0;
    expect(await w.refresher.runOnce()).toEqual([]);
    w.manager.secrets.push(secret('apps', 'bad', '6', 'invalid'));
    expect(await w.refresher.runOnce()).toEqual([invalid]);
    expect(w.refresher.stats).toEqual({ renewed: 0, failed: 0, invalid: 3 });
  });

  it('without a metrics hook: renewed, failed and invalid results all come back', async () => {
    const w = world({ hook: false });
    w.manager.secrets.push(secret('apps', 'bad', undefined, 'invalid'), secret('apps', 'ok', '1'));
    expect((await w.refresher.runOnce()).map((r) => r.outcome)).toEqual(['invalid', 'renewed']);
    expect(await w.refresher.runOnce()).toEqual([{ namespace: 'apps', name: 'ok', outcome: 'renewed', failures: 0 }]);
    w.manager.renewError = httpError(500);
    expect((await w.refresher.runOnce()).map((r) => r.outcome)).toEqual(['failed']);
  });

  it('forgets the backoff of a Secret that went away', async () => {
    const w = world();
    w.manager.secrets.push(secret('apps', 's', '1'));
    w.manager.renewError = httpError(500);
    await w.refresher.runOnce();
    expect(w.refresher.retryState('apps', 's')).toEqual({ failures: 1, retryAt: T0 + 10_000 });
    w.manager.secrets.length = 0;
    await w.refresher.runOnce();
    expect(w.refresher.retryState('apps', 's')).toBeUndefined();
  });

  it('nothing when not leader or not synced, and nothing more once leadership is lost mid-pass', async () => {
    const w = world();
    w.manager.secrets.push(secret('apps', 'a', '1'), secret('apps', 'b', '1'));
    w.leading.value = false;
    expect(await w.refresher.runOnce()).toEqual([]);
    w.leading.value = true;
    w.manager.isSynced = false;
    expect(await w.refresher.runOnce()).toEqual([]);
    expect(w.manager.renewed).toEqual([]);

    const v = world({ concurrency: 1 });
    v.manager.secrets.push(secret('apps', 'a', '1'), secret('apps', 'b', '1'));
    let checks = 0;
    const r = new SecretRefresher({ manager: v.manager as unknown as PullSecretManager, leader: { isLeader: () => ++checks <= 2 }, concurrency: 1 });
    expect((await r.runOnce()).map((x) => x.name)).toEqual(['a']);
  });

  it('renews up to `concurrency` at once (default 4), and concurrent calls share one pass', async () => {
    const w = world();
    for (const n of ['a', 'b', 'c', 'd', 'e']) w.manager.secrets.push(secret('apps', n, '1'));
    const releases: Array<() => void> = [];
    w.manager.gates = Array.from({ length: 5 }, () => new Promise<void>((r) => releases.push(r)));
    const first = w.refresher.runOnce();
    const second = w.refresher.runOnce();
    await Promise.resolve();
    expect(w.manager.renewed.map(([s]) => s.name)).toEqual(['a', 'b', 'c', 'd']);
    for (const r of releases) r();
    expect((await first).map((r) => r.name)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(await second).toEqual(await first);
    expect(w.manager.renewed).toHaveLength(5);
  });
});

describe('SecretRefresher timers', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });

  it('a pass every intervalMs from start(); start() twice keeps one interval; none after stop()', async () => {
    const w = world({ intervalMs: 1_000 });
    w.manager.secrets.push(secret('apps', 's', '1'));
    w.refresher.start();
    w.refresher.start();
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(w.manager.renewed).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(w.manager.renewed).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(w.manager.renewed).toHaveLength(2);
    await w.refresher.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(w.manager.renewed).toHaveLength(2);
  });

  it('the default interval is 30 s; stop() waits for the pass in flight', async () => {
    const w = world();
    w.manager.secrets.push(secret('apps', 's', '1'));
    let release!: () => void;
    w.manager.gates = [new Promise<void>((r) => (release = r))];
    w.refresher.start();
    await vi.advanceTimersByTimeAsync(29_999);
    expect(w.manager.renewed).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(w.manager.renewed).toHaveLength(1);
    let stopped = false;
    const stopping = w.refresher.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(w.refresher.stats.renewed).toBe(1);
  });

  it('a pass that throws is logged as an error', async () => {
    const w = world({ intervalMs: 1_000 });
    w.manager.listError = httpError(500);
    w.refresher.start();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(w.lines).toEqual([['error', { err: 'Error HTTP 500' }, 'pull Secret refresh pass failed']]);
    await w.refresher.stop();
  });
});

describe('SecretRefresher with timers without unref()', () => {
  it('starts and stops with plain numeric timer handles', async () => {
    const pending = new Map<number, () => void>();
    let next = 1;
    vi.stubGlobal('setInterval', (fn: () => void) => {
      pending.set(next, fn);
      return next++;
    });
    vi.stubGlobal('clearInterval', (id: number | undefined) => {
      if (id !== undefined) pending.delete(id);
    });
    const w = world();
    w.manager.secrets.push(secret('apps', 's', '1'));
    w.refresher.start();
    expect([...pending.keys()]).toEqual([1]);
    pending.get(1)!();
    for (let i = 0; i < 50 && w.refresher.stats.renewed === 0; i++) await Promise.resolve();
    expect(w.refresher.stats.renewed).toBe(1);
    await w.refresher.stop();
    expect(pending.size).toBe(0);
  });
});
