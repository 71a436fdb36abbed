import type { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  KubeLeaseApi,
  LeaseConflictError,
  LeaseLeaderElector,
  MemoryLeaseApi,
  type LeaseApi,
  type LeaseLeaderElectorOptions,
  type LeaseRecord,
  type StoredLease,
} from '../../src/kube/leader.js';
import { recordingLogger } from '../support/recording-logger.js';
import { FakeClock, T0 } from './support/fixtures.js';


const networkError = (): Error => Object.assign(new Error('socket hang up'), { name: 'FetchError', code: 'ECONNRESET' });

/** MemoryLeaseApi that counts calls and fails the next create/update calls with `networkError()` or a conflict. */
class ScriptedLeases implements LeaseApi {
  readonly mem = new MemoryLeaseApi();
  readonly calls: string[] = [];
  failCreate: Array<'network' | 'conflict'> = [];
  failUpdate: Array<'network' | 'conflict'> = [];

  get(ns: string, name: string): Promise<StoredLease | undefined> {
    this.calls.push('get');
    return this.mem.get(ns, name);
  }
  async create(ns: string, name: string, r: LeaseRecord): Promise<StoredLease> {
    this.calls.push('create');
    const f = this.failCreate.shift();
    if (f) throw f === 'network' ? networkError() : new LeaseConflictError('lease already exists');
    return this.mem.create(ns, name, r);
  }
  async update(ns: string, name: string, r: LeaseRecord, rv: string): Promise<StoredLease> {
    this.calls.push('update');
    const f = this.failUpdate.shift();
    if (f) throw f === 'network' ? networkError() : new LeaseConflictError();
    return this.mem.update(ns, name, r, rv);
  }
}

function elector(api: LeaseApi, clock: FakeClock, extra: Partial<LeaseLeaderElectorOptions> = {}) {
  const { logger, lines: logged } = recordingLogger();
  const e = new LeaseLeaderElector({ api, namespace: 'ns', identity: 'pod-1', now: clock.now, logger, ...extra });
  return { e, logged };
}

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('LeaseConflictError', () => {
  it('names itself and says what happened', () => {
    const e = new LeaseConflictError();
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('LeaseConflictError');
    expect(e.message).toBe('lease changed concurrently');
    expect(new LeaseConflictError('lease already exists').message).toBe('lease already exists');
  });
});

describe('KubeLeaseApi (client calls and errors)', () => {
  function kube(impl: Record<string, (req: any) => Promise<unknown>>): { api: KubeLeaseApi; reqs: any[] } {
    const reqs: any[] = [];
    const client: Record<string, (req: any) => Promise<unknown>> = {};
    for (const [k, f] of Object.entries(impl)) {
      client[k] = (req: any) => {
        reqs.push(req);
        return f(req);
      };
    }
    const kc = { makeApiClient: () => client } as unknown as KubeConfig;
    return { api: new KubeLeaseApi(kc), reqs };
  }
  const status = (code: number): Error => Object.assign(new Error(`HTTP ${code}`), { code });

  it('get: a missing Lease is undefined; other failures go up', async () => {
    const boom = status(500);
    let fail = status(404);
    const { api } = kube({ readNamespacedLease: async () => Promise.reject(fail) });
    expect(await api.get('ns', 'l')).toBeUndefined();
    fail = boom;
    await expect(api.get('ns', 'l')).rejects.toBe(boom);
  });

  it('get: reads a Lease, with defaults for what it lacks', async () => {
    let lease: any = {
      metadata: { name: 'l', resourceVersion: '7' },
      spec: { holderIdentity: 'pod-2', leaseDurationSeconds: 15, leaseTransitions: 3, acquireTime: '2025-01-01T00:00:00.123000Z', renewTime: '2025-01-01T00:00:02.000000Z' },
    };
    const { api } = kube({ readNamespacedLease: async () => lease });
    expect(await api.get('ns', 'l')).toStrictEqual({
      resourceVersion: '7',
      holderIdentity: 'pod-2',
      leaseDurationSeconds: 15,
      leaseTransitions: 3,
      acquireTime: T0 + 123,
      renewTime: T0 + 2000,
    });
    lease = {};
    expect(await api.get('ns', 'l')).toStrictEqual({ resourceVersion: '', holderIdentity: '', leaseDurationSeconds: 0, leaseTransitions: 0 });
  });

  it('create: sends a coordination.k8s.io/v1 Lease with MicroTimes; 409 is a LeaseConflictError, others go up', async () => {
    const boom = status(500);
    let fail: Error | undefined;
    const { api, reqs } = kube({
      createNamespacedLease: async (req) => {
        if (fail) throw fail;
        return { ...req.body, metadata: { ...req.body.metadata, resourceVersion: '1' } };
      },
    });
    const rec = { holderIdentity: 'pod-1', leaseDurationSeconds: 15, acquireTime: T0 + 123, renewTime: T0 + 123, leaseTransitions: 0 };
    await api.create('ns', 'l', rec);
    expect(reqs[0].namespace).toBe('ns');
    expect(JSON.parse(JSON.stringify(reqs[0].body))).toStrictEqual({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'l', namespace: 'ns' },
      spec: {
        holderIdentity: 'pod-1',
        leaseDurationSeconds: 15,
        leaseTransitions: 0,
        acquireTime: '2025-01-01T00:00:00.123000Z',
        renewTime: '2025-01-01T00:00:00.123000Z',
      },
    });
    fail = status(409);
    await expect(api.create('ns', 'l', rec)).rejects.toThrow(new LeaseConflictError('lease already exists'));
    await expect(api.create('ns', 'l', rec)).rejects.toBeInstanceOf(LeaseConflictError);
    fail = boom;
    await expect(api.create('ns', 'l', rec)).rejects.toBe(boom);
  });

  it('update: sends the resourceVersion, leaves out absent times; 409 and 404 are LeaseConflictErrors, others go up', async () => {
    const boom = status(500);
    let fail: Error | undefined;
    const { api, reqs } = kube({
      replaceNamespacedLease: async (req) => {
        if (fail) throw fail;
        return req.body;
      },
    });
    const rec = { holderIdentity: '', leaseDurationSeconds: 1, renewTime: T0, leaseTransitions: 2 };
    expect(await api.update('ns', 'l', rec, '5')).toStrictEqual({ ...rec, resourceVersion: '5' });
    expect(reqs[0].name).toBe('l');
    expect(JSON.parse(JSON.stringify(reqs[0].body))).toStrictEqual({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'l', namespace: 'ns', resourceVersion: '5' },
      spec: { holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 2, renewTime: '2025-01-01T00:00:00.000000Z' },
    });
    expect(reqs[0].body.spec).not.toHaveProperty('acquireTime');
    const { renewTime: _, ...noRenew } = rec;
    await api.update('ns', 'l', { ...noRenew, acquireTime: T0 }, '5');
    expect(reqs[1].body.spec).not.toHaveProperty('renewTime');
    for (const code of [409, 404]) {
      fail = status(code);
      const err = await api.update('ns', 'l', rec, '5').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LeaseConflictError);
      expect((err as Error).message).toBe('lease changed concurrently');
    }
    fail = boom;
    await expect(api.update('ns', 'l', rec, '5')).rejects.toBe(boom);
  });
});

describe('MemoryLeaseApi', () => {
  const rec = { holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 0 };

  it('creates once, then updates only at the current resourceVersion, counting versions up from 1', async () => {
    const m = new MemoryLeaseApi();
    expect(await m.create('ns', 'l', rec)).toStrictEqual({ ...rec, resourceVersion: '1' });
    const again = await m.create('ns', 'l', rec).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(LeaseConflictError);
    expect((again as Error).message).toBe('lease already exists');
    await expect(m.update('ns', 'l', { ...rec, holderIdentity: 'b' }, '0')).rejects.toBeInstanceOf(LeaseConflictError);
    await expect(m.update('ns', 'other', rec, '1')).rejects.toBeInstanceOf(LeaseConflictError);
    expect(await m.update('ns', 'l', { ...rec, holderIdentity: 'b' }, '1')).toStrictEqual({ ...rec, holderIdentity: 'b', resourceVersion: '2' });
    expect(m.peek('ns', 'l')).toStrictEqual({ ...rec, holderIdentity: 'b', resourceVersion: '2' });
  });

  it('while unavailable, every call fails as a network error would', async () => {
    const m = new MemoryLeaseApi();
    m.unavailable = true;
    const err = await m.get('ns', 'l').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe('connect ECONNREFUSED');
    expect((err as Error).name).toBe('FetchError');
  });
});

describe('LeaseLeaderElector', () => {
  it('refuses an empty identity and deadlines that are not strictly ordered', () => {
    const api = new MemoryLeaseApi();
    const base = { api, namespace: 'ns', identity: 'pod-1' };
    expect(() => new LeaseLeaderElector({ ...base, identity: '' })).toThrow(new Error('leader election needs a non-empty identity'));
    expect(() => new LeaseLeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).toThrow(
      new Error('renewDeadlineMs must be shorter than leaseDurationMs'),
    );
    expect(() => new LeaseLeaderElector({ ...base, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).toThrow(
      new Error('retryPeriodMs must be shorter than renewDeadlineMs'),
    );
    expect(() => new LeaseLeaderElector({ ...base, leaseDurationMs: 10_001, renewDeadlineMs: 10_000, retryPeriodMs: 9_999 })).not.toThrow();
  });

  it('creates the Lease, keeps its acquireTime on renewal, logs and tells every listener once per change', async () => {
    const clock = new FakeClock();
    const api = new ScriptedLeases();
    const seen: string[] = [];
    const { e, logged } = elector(api, clock, { onChange: (l) => seen.push(`onChange ${l}`) });
    e.subscribe((l) => seen.push(`sub ${l}`));
    expect(await e.tick()).toBe(true);
    clock.advance(2_000);
    expect(await e.tick()).toBe(true);
    expect(api.mem.peek('ns', 'acr-pull-webhook')).toStrictEqual({
      holderIdentity: 'pod-1',
      leaseDurationSeconds: 15,
      acquireTime: T0,
      renewTime: T0 + 2_000,
      leaseTransitions: 0,
      resourceVersion: '2',
    });
    expect(seen).toEqual(['onChange true', 'sub true']);
    expect(logged).toEqual([['info', { lease: 'acr-pull-webhook', identity: 'pod-1', leading: true }, 'became leader']]);

    clock.advance(1_000);
    await e.stop();
    expect(api.mem.peek('ns', 'acr-pull-webhook')).toStrictEqual({
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: T0,
      renewTime: T0 + 3_000,
      leaseTransitions: 0,
      resourceVersion: '3',
    });
    expect(seen).toEqual(['onChange true', 'sub true', 'onChange false', 'sub false']);
    expect(logged.slice(1)).toEqual([
      ['info', { lease: 'acr-pull-webhook', identity: 'pod-1' }, 'released leadership'],
      ['info', { lease: 'acr-pull-webhook', identity: 'pod-1', leading: false }, 'stopped leading'],
    ]);
  });

  it('without onChange nothing fails on a change; a throwing listener is logged and the others still run', async () => {
    const clock = new FakeClock();
    const { e, logged } = elector(new MemoryLeaseApi(), clock);
    const seen: boolean[] = [];
    e.subscribe(() => {
      throw Object.assign(new Error('nope'), { code: 'EBADF' });
    });
    e.subscribe((l) => seen.push(l));
    await e.tick();
    expect(seen).toEqual([true]);
    expect(logged).toEqual([
      ['info', { lease: 'acr-pull-webhook', identity: 'pod-1', leading: true }, 'became leader'],
      ['error', { err: 'Error EBADF' }, 'leadership callback failed'],
    ]);
  });

  it('stop when it never led writes nothing and logs nothing', async () => {
    const api = new ScriptedLeases();
    const { e, logged } = elector(api, new FakeClock());
    await e.stop();
    expect(api.calls).toEqual([]);
    expect(logged).toEqual([]);
  });

  it('stop after the renew deadline passed does not release the Lease it still names', async () => {
    const clock = new FakeClock();
    const api = new ScriptedLeases();
    const { e } = elector(api, clock);
    await e.tick();
    clock.advance(10_000);
    expect(e.isLeader()).toBe(false);
    await e.stop();
    expect(api.calls).toEqual(['get', 'create']);
    expect(api.mem.peek('ns', 'acr-pull-webhook')!.holderIdentity).toBe('pod-1');
  });

  it('a failed release is logged; the Lease is left to expire', async () => {
    const clock = new FakeClock();
    const api = new ScriptedLeases();
    const { e, logged } = elector(api, clock);
    await e.tick();
    api.failUpdate = ['network'];
    await e.stop();
    expect(api.mem.peek('ns', 'acr-pull-webhook')!.holderIdentity).toBe('pod-1');
    expect(logged.slice(1)).toEqual([
      ['warn', { lease: 'acr-pull-webhook', err: 'FetchError ECONNRESET' }, 'releasing the lease failed; it will expire'],
      ['info', { lease: 'acr-pull-webhook', identity: 'pod-1', leading: false }, 'stopped leading'],
    ]);
  });

  it('releasing a Lease read without acquireTime writes none', async () => {
    const clock = new FakeClock();
    const api = new ScriptedLeases();
    const { e } = elector(api, clock);
    await e.tick(); // leads, rv 1
    // Someone rewrites the Lease, still naming pod-1, without acquireTime; the renewal fails on the network.
    await api.mem.update('ns', 'acr-pull-webhook', { holderIdentity: 'pod-1', leaseDurationSeconds: 15, renewTime: T0, leaseTransitions: 4 }, '1');
    clock.advance(2_000);
    api.failUpdate = ['network'];
    expect(await e.tick()).toBe(true); // still within the renew deadline, and the Lease is ours
    clock.advance(1_000);
    await e.stop();
    expect(api.mem.peek('ns', 'acr-pull-webhook')).toStrictEqual({
      holderIdentity: '',
      leaseDurationSeconds: 1,
      renewTime: T0 + 3_000,
      leaseTransitions: 4,
      resourceVersion: '3',
    });
  });

  it('does not release a Lease it last saw released by someone else, even while still within its deadline', async () => {
    const clock = new FakeClock();
    const api = new ScriptedLeases();
    const { e } = elector(api, clock);
    await e.tick();
    await api.mem.update('ns', 'acr-pull-webhook', { holderIdentity: '', leaseDurationSeconds: 1, renewTime: T0, leaseTransitions: 0 }, '1');
    clock.advance(2_000);
    api.failUpdate = ['network'];
    expect(await e.tick()).toBe(false); // the take-over failed: not ours
    expect(e.isLeader()).toBe(true);
    await e.stop();
    expect(api.calls).toEqual(['get', 'create', 'get', 'update']);
  });

  it('a failed read is logged and keeps the current state', async () => {
    const clock = new FakeClock();
    const api = new MemoryLeaseApi();
    const { e, logged } = elector(api, clock);
    await e.tick();
    api.unavailable = true;
    clock.advance(2_000);
    expect(await e.tick()).toBe(true);
    expect(logged.slice(1)).toEqual([['warn', { lease: 'acr-pull-webhook', err: 'FetchError' }, 'reading the lease failed']]);
  });

  it('concurrent ticks share one attempt', async () => {
    const api = new ScriptedLeases();
    const { e } = elector(api, new FakeClock());
    expect(await Promise.all([e.tick(), e.tick()])).toEqual([true, true]);
    expect(api.calls).toEqual(['get', 'create']);
  });

  it('create: losing the race is quiet and not leading; a network failure is logged', async () => {
    const clock = new FakeClock();
    const api = new ScriptedLeases();
    const { e, logged } = elector(api, clock);
    api.failCreate = ['conflict'];
    expect(await e.tick()).toBe(false);
    expect(logged).toEqual([]);
    api.failCreate = ['network'];
    expect(await e.tick()).toBe(false);
    expect(logged).toEqual([['warn', { lease: 'acr-pull-webhook', err: 'FetchError ECONNRESET' }, 'creating the lease failed']]);
  });

  it('takes over a Lease exactly one lease duration after it last saw it change, and says so once', async () => {
    const clock = new FakeClock();
    const api = new ScriptedLeases();
    const other = elector(api, clock, { identity: 'pod-2' });
    const { e, logged } = elector(api, clock);
    await other.e.tick();
    expect(await e.tick()).toBe(false);
    clock.advance(14_999);
    expect(await e.tick()).toBe(false);
    clock.advance(1);
    expect(await e.tick()).toBe(true);
    clock.advance(2_000);
    expect(await e.tick()).toBe(true);
    expect(api.mem.peek('ns', 'acr-pull-webhook')).toMatchObject({ holderIdentity: 'pod-1', acquireTime: T0 + 15_000, leaseTransitions: 1 });
    expect(logged).toEqual([
      ['info', { lease: 'acr-pull-webhook', identity: 'pod-1', previous: 'pod-2' }, 'acquired the lease'],
      ['info', { lease: 'acr-pull-webhook', identity: 'pod-1', leading: true }, 'became leader'],
    ]);
  });

  it('renew failures: a conflict is quiet, a network error is logged; leading only while ours and within the deadline', async () => {
    const clock = new FakeClock();
    const api = new ScriptedLeases();
    const { e, logged } = elector(api, clock);
    await e.tick();
    clock.advance(2_000);
    api.failUpdate = ['conflict'];
    expect(await e.tick()).toBe(true);
    expect(logged.slice(1)).toEqual([]);
    clock.advance(2_000);
    api.failUpdate = ['network'];
    expect(await e.tick()).toBe(true);
    expect(logged.slice(1)).toEqual([['warn', { lease: 'acr-pull-webhook', err: 'FetchError ECONNRESET' }, 'renewing the lease failed']]);
    clock.advance(8_000); // 10 s since the last renewal: past the deadline, the Lease not yet expired
    api.failUpdate = ['conflict'];
    expect(await e.tick()).toBe(false);
  });

  it('start runs at once and every retry period; a second start adds no timer; stop ends them', async () => {
    vi.useFakeTimers();
    const clock = new FakeClock();
    const api = new ScriptedLeases();
    const { e } = elector(api, clock);
    e.start();
    e.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(api.calls).toEqual(['get', 'create']);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(api.calls).toEqual(['get', 'create', 'get', 'update']);
    await e.stop();
    const after = api.calls.length;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(api.calls.length).toBe(after);
    vi.clearAllTimers();
  });

  it('start also works where setInterval gives a plain id without unref; a second stop clears nothing', async () => {
    const timers: unknown[] = [];
    vi.stubGlobal('setInterval', (_fn: () => void, ms: number) => {
      timers.push(`set ${ms}`);
      return 7;
    });
    vi.stubGlobal('clearInterval', (id: unknown) => timers.push(`clear ${String(id)}`));
    const api = new ScriptedLeases();
    const { e } = elector(api, new FakeClock(), { retryPeriodMs: 1_500 });
    e.start();
    await e.stop();
    await e.stop();
    expect(timers).toEqual(['set 1500', 'clear 7']);
    expect(api.calls).toEqual(['get', 'create', 'update']);
  });
});
