// SecretCollector against a scripted store, usage source, leadership and logger: exact results, logs and
// schedule (fake timers). The module is loaded in beforeEach so its load-time constants count for every test.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CollectResult, UsageSource } from '../../src/pull-secrets/collector.js';
import { recordingLogger } from '../support/recording-logger.js';
import type { SecretObject, SecretStore } from '../../src/pull-secrets/store.js';

type CollectorModule = typeof import('../../src/pull-secrets/collector.js');
type StoreModule = typeof import('../../src/pull-secrets/store.js');
type MarksModule = typeof import('../../src/pull-secrets/usage-marks.js');

let mod: CollectorModule;
let storeMod: StoreModule;
let marksMod: MarksModule;

beforeEach(async () => {
  vi.resetModules();
  mod = await import('../../src/pull-secrets/collector.js');
  storeMod = await import('../../src/pull-secrets/store.js');
  marksMod = await import('../../src/pull-secrets/usage-marks.js');
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

const MIN = 60_000;
const IDLE = 60 * MIN;
const T0 = Date.parse('2026-01-01T00:00:00Z');
const iso = (t: number) => new Date(t).toISOString();

function secret(namespace: string, name: string, createdAt: number | undefined, extra: Partial<SecretObject['metadata']> = {}): SecretObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { namespace, name, resourceVersion: '1', ...(createdAt === undefined ? {} : { creationTimestamp: iso(createdAt) }), ...extra },
  };
}

class ScriptedStore implements SecretStore {
  readonly secrets = new Map<string, SecretObject>();
  /** What get() answers instead of the listed object. */
  readonly current = new Map<string, SecretObject | undefined>();
  readonly deletes: Array<[string, string, string | undefined]> = [];
  deleteError: ((ns: string, name: string) => Error | undefined) | undefined;
  isSynced = true;
  listError: Error | undefined;
  add(s: SecretObject): void {
    this.secrets.set(`${s.metadata.namespace}/${s.metadata.name}`, s);
  }
  get(namespace: string, name: string): SecretObject | undefined {
    const key = `${namespace}/${name}`;
    return this.current.has(key) ? this.current.get(key) : this.secrets.get(key);
  }
  list(): SecretObject[] {
    if (this.listError) throw this.listError;
    return [...this.secrets.values()];
  }
  async read(): Promise<SecretObject | undefined> {
    throw new Error('not used');
  }
  async create(): Promise<SecretObject> {
    throw new Error('not used');
  }
  async replace(): Promise<SecretObject> {
    throw new Error('not used');
  }
  async delete(namespace: string, name: string, resourceVersion?: string): Promise<boolean> {
    this.deletes.push([namespace, name, resourceVersion]);
    const err = this.deleteError?.(namespace, name);
    if (err) throw err;
    this.secrets.delete(`${namespace}/${name}`);
    return true;
  }
  async recordEvent(): Promise<void> {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  synced(): boolean {
    return this.isSynced;
  }
}

/** Usage answers: one per call (the last repeats); a function answer may throw. Records the namespaces asked. */
class ScriptedUsage implements UsageSource {
  readonly asked: Array<readonly string[] | undefined> = [];
  constructor(private readonly answers: Array<string[] | (() => Set<string>) | Promise<Set<string>>>) {}
  async referenced(namespaces?: readonly string[]): Promise<Set<string>> {
    this.asked.push(namespaces);
    const a = this.answers[Math.min(this.asked.length - 1, this.answers.length - 1)];
    if (a === undefined) return new Set();
    if (typeof a === 'function') return a();
    if (a instanceof Promise) return a;
    return new Set(a);
  }
}

const httpError = (code: number) => Object.assign(new Error('secret text'), { code });

describe('SecretCollector.runOnce', () => {
  function make(store: ScriptedStore, usage: UsageSource, extra: { leader?: () => boolean; marks?: InstanceType<MarksModule['UsageMarks']>; now?: () => number } = {}) {
    const { logger, lines } = recordingLogger();
    const results: CollectResult[] = [];
    const collector = new mod.SecretCollector({
      store,
      usage,
      leader: { isLeader: extra.leader ?? (() => true) },
      ...(extra.marks ? { marks: extra.marks } : {}),
      idleMs: IDLE,
      now: extra.now ?? (() => T0 + 10 * IDLE),
      logger,
      onCollect: (r) => results.push(r),
    });
    return { collector, lines, results };
  }

  it('an empty store asks nothing about usage', async () => {
    const usage = new ScriptedUsage([]);
    const { collector } = make(new ScriptedStore(), usage);
    expect(await collector.runOnce()).toEqual({ deleted: [], inUse: 0, idleKept: 0 });
    expect(usage.asked).toEqual([]);
  });

  it('idle means strictly longer than idleMs since the last use; nothing idle means no second look', async () => {
    const now = T0 + 10 * IDLE;
    const store = new ScriptedStore();
    store.add(secret('a', 'exactly-idle', now - IDLE));
    store.add(secret('a', 'young', now - MIN));
    const usage = new ScriptedUsage([[]]);
    const { collector, lines } = make(store, usage);
    expect(await collector.runOnce()).toEqual({ deleted: [], inUse: 0, idleKept: 2 });
    expect(usage.asked).toEqual([['a']]);
    expect(store.deletes).toEqual([]);
    expect(lines).toEqual([]);
  });

  it('deletes what was idle one ms past idleMs, asking again only about the candidates\' namespaces, and logs it', async () => {
    const now = T0 + 10 * IDLE;
    const store = new ScriptedStore();
    store.add(secret('b', 'old-1', now - IDLE - 1)); // no annotations at all
    store.add(secret('c', 'used', now - 5 * IDLE));
    store.add(secret('b', 'old-2', now - 3 * IDLE, { annotations: { other: 'x' } }));
    store.add(secret('d', 'young', now - 1));
    const marks = new marksMod.UsageMarks();
    marks.mark('b', 'old-1', now - 2 * IDLE);
    const usage = new ScriptedUsage([['c/used'], []]);
    const { collector, lines, results } = make(store, usage, { marks });
    const r = await collector.runOnce();
    expect(r).toEqual({ deleted: ['b/old-1', 'b/old-2'], inUse: 1, idleKept: 1 });
    expect(results).toEqual([r]);
    expect(usage.asked).toEqual([['b', 'c', 'd'], ['b']]);
    expect(store.deletes).toEqual([
      ['b', 'old-1', '1'],
      ['b', 'old-2', '1'],
    ]);
    expect(marks.get('b', 'old-1')).toBeUndefined();
    expect(marks.get('c', 'used')).toBe(now);
    expect(lines).toEqual([
      ['info', { namespace: 'b', name: 'old-1', idleMs: IDLE }, 'deleted idle pull Secret'],
      ['info', { namespace: 'b', name: 'old-2', idleMs: IDLE }, 'deleted idle pull Secret'],
    ]);
  });

  it('keeps a candidate whose current version was used exactly idleMs ago, or is gone, or is referenced on the second look', async () => {
    const now = T0 + 10 * IDLE;
    const store = new ScriptedStore();
    store.add(secret('a', 'touched', now - 5 * IDLE));
    store.add(secret('a', 'gone', now - 5 * IDLE));
    store.add(secret('a', 'new-pod', now - 5 * IDLE));
    store.current.set(
      'a/touched',
      secret('a', 'touched', now - 5 * IDLE, { resourceVersion: '2', annotations: { 'acr-pull-webhook.k8s.aliyun.com/last-used-at': iso(now - IDLE) } }),
    );
    store.current.set('a/gone', undefined);
    const usage = new ScriptedUsage([[], ['a/new-pod']]);
    const { collector } = make(store, usage);
    expect(await collector.runOnce()).toEqual({ deleted: [], inUse: 0, idleKept: 3 });
    expect(store.deletes).toEqual([]);
  });

  it('a failed delete keeps the Secret; a conflict is not logged, another error is, without its message', async () => {
    const now = T0 + 10 * IDLE;
    const store = new ScriptedStore();
    store.add(secret('a', 'conflict', now - 5 * IDLE));
    store.add(secret('a', 'forbidden', now - 5 * IDLE));
    store.add(secret('a', 'fine', now - 5 * IDLE));
    store.deleteError = (ns, name) =>
      name === 'conflict' ? new storeMod.ConflictError(ns, name) : name === 'forbidden' ? httpError(403) : undefined;
    const { collector, lines } = make(store, new ScriptedUsage([[]]));
    expect(await collector.runOnce()).toEqual({ deleted: ['a/fine'], inUse: 0, idleKept: 2 });
    expect(lines).toEqual([
      ['warn', { namespace: 'a', name: 'forbidden', err: 'Error HTTP 403' }, 'deleting idle pull Secret failed'],
      ['info', { namespace: 'a', name: 'fine', idleMs: IDLE }, 'deleted idle pull Secret'],
    ]);
  });

  it('stops deleting as soon as leadership is lost', async () => {
    const now = T0 + 10 * IDLE;
    const store = new ScriptedStore();
    store.add(secret('a', 'one', now - 5 * IDLE));
    store.add(secret('a', 'two', now - 5 * IDLE));
    let checks = 0;
    const { collector } = make(store, new ScriptedUsage([[]]), { leader: () => ++checks <= 2 });
    expect(await collector.runOnce()).toEqual({ deleted: ['a/one'], inUse: 0, idleKept: 0 });
    expect(store.deletes).toEqual([['a', 'one', '1']]);
  });

  it('usage unknown, on the first or the second look: deletes nothing, says so, keeps the counts so far', async () => {
    const now = T0 + 10 * IDLE;
    const store = new ScriptedStore();
    store.add(secret('a', 'used', now - 5 * IDLE));
    store.add(secret('a', 'idle', now - 5 * IDLE));
    store.add(secret('b', 'young', now - MIN));
    const fail = () => {
      throw httpError(503);
    };
    const first = make(store, new ScriptedUsage([fail]));
    expect(await first.collector.runOnce()).toEqual({ deleted: [], inUse: 0, idleKept: 0, skipped: 'usage-unavailable' });
    expect(first.lines).toEqual([['warn', { err: 'Error HTTP 503' }, 'cannot tell which pull Secrets are in use; deleting none']]);

    const second = make(store, new ScriptedUsage([['a/used'], fail]));
    expect(await second.collector.runOnce()).toEqual({ deleted: [], inUse: 1, idleKept: 1, skipped: 'usage-unavailable' });
    expect(second.lines).toEqual([['warn', { err: 'Error HTTP 503' }, 'cannot tell which pull Secrets are in use; deleting none']]);
    expect(store.deletes).toEqual([]);
  });

  it('concurrent calls share one pass', async () => {
    const store = new ScriptedStore();
    store.add(secret('a', 'x', T0));
    const usage = new ScriptedUsage([[]]);
    const { collector, results } = make(store, usage);
    const [r1, r2] = await Promise.all([collector.runOnce(), collector.runOnce()]);
    expect(r1).toBe(r2);
    expect(results).toHaveLength(1);
    expect(usage.asked).toEqual([['a'], ['a']]);
    await collector.runOnce();
    expect(results).toHaveLength(2);
  });

  it('NO_REFERENCES answers an empty set; the default idle period is 24 h (10-minute passes)', async () => {
    expect(await mod.NO_REFERENCES.referenced(['a'])).toEqual(new Set());
    expect(mod.DEFAULT_IDLE_MS).toBe(86_400_000);
    const c = new mod.SecretCollector({ store: new ScriptedStore(), usage: mod.NO_REFERENCES, leader: { isLeader: () => true } });
    expect([c.intervalMs, c.firstDelayMs]).toEqual([10 * MIN, 10_000]);
    // 24 h idle by default: a Secret created 24 h + 1 ms ago goes, one created 24 h ago stays.
    const now = T0 + 100 * IDLE;
    const store = new ScriptedStore();
    store.add(secret('a', 'day-old', now - 86_400_000));
    store.add(secret('a', 'older', now - 86_400_001));
    const d = new mod.SecretCollector({ store, usage: mod.NO_REFERENCES, leader: { isLeader: () => true }, now: () => now });
    expect(await d.runOnce()).toEqual({ deleted: ['a/older'], inUse: 0, idleKept: 1 });
  });
});

describe('SecretCollector schedule', () => {
  function scheduled(store: ScriptedStore, usage: UsageSource, leader: { isLeader(): boolean; subscribe?(l: (leading: boolean) => void): void }) {
    const { logger, lines } = recordingLogger();
    const passes: Array<{ at: number; skipped?: string }> = [];
    const t0 = Date.now();
    const c = new mod.SecretCollector({
      store,
      usage,
      leader,
      idleMs: 4 * MIN, // interval 2 min, first delay 10 s
      logger,
      onCollect: (r) => passes.push({ at: Date.now() - t0, ...(r.skipped ? { skipped: r.skipped } : {}) }),
    });
    return { c, lines, passes };
  }

  function elector(initial: boolean) {
    const state = { leading: initial, listeners: [] as Array<(l: boolean) => void> };
    return {
      state,
      leader: { isLeader: () => state.leading, subscribe: (l: (leading: boolean) => void) => void state.listeners.push(l) },
      tell: (l: boolean) => {
        state.leading = l;
        for (const f of state.listeners) f(l);
      },
    };
  }

  it('losing leadership does not bring the next pass forward; start() twice subscribes and schedules once', async () => {
    vi.useFakeTimers();
    const e = elector(true);
    const { c, passes } = scheduled(new ScriptedStore(), new ScriptedUsage([]), e.leader);
    c.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(passes).toEqual([{ at: 10_000 }]);
    await vi.advanceTimersByTimeAsync(MIN);
    c.start(); // already started: the next pass stays at 10 s + 2 min
    expect(e.state.listeners).toHaveLength(1);
    e.tell(false);
    await vi.advanceTimersByTimeAsync(MIN - 1);
    expect(passes).toEqual([{ at: 10_000 }]);
    await vi.advanceTimersByTimeAsync(1);
    expect(passes).toEqual([{ at: 10_000 }, { at: 10_000 + 2 * MIN, skipped: 'not-leader' }]);
    await c.stop();
  });

  it('becoming leader during a pass: the sooner pass is kept when the pass ends', async () => {
    vi.useFakeTimers();
    const e = elector(true);
    const store = new ScriptedStore();
    store.add(secret('a', 'x', Date.now()));
    let release!: (s: Set<string>) => void;
    const usage = new ScriptedUsage([new Promise<Set<string>>((r) => (release = r)), []]);
    const { c, passes } = scheduled(store, usage, e.leader);
    c.start();
    await vi.advanceTimersByTimeAsync(10_000); // pass 1 starts and waits on usage
    expect(usage.asked).toHaveLength(1);
    e.tell(true); // a pass 10 s from now
    release(new Set());
    await vi.advanceTimersByTimeAsync(0);
    expect(passes).toEqual([{ at: 10_000 }]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(passes).toEqual([{ at: 10_000 }, { at: 20_000 }]);
    await c.stop();
  });

  it('stop() during a pass: no pass after it, nor after becoming leader again', async () => {
    vi.useFakeTimers();
    const e = elector(true);
    const store = new ScriptedStore();
    store.add(secret('a', 'x', Date.now()));
    let release!: (s: Set<string>) => void;
    const usage = new ScriptedUsage([new Promise<Set<string>>((r) => (release = r)), []]);
    const { c, passes } = scheduled(store, usage, e.leader);
    c.start();
    await vi.advanceTimersByTimeAsync(10_000);
    const stopped = c.stop();
    let done = false;
    void stopped.then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(false); // waits for the pass in flight
    release(new Set());
    await stopped;
    e.tell(true);
    await vi.advanceTimersByTimeAsync(60 * MIN);
    expect(passes).toEqual([{ at: 10_000 }]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a failed pass is logged and the next one comes a full interval later', async () => {
    vi.useFakeTimers();
    const store = new ScriptedStore();
    store.listError = httpError(500);
    const { c, lines, passes } = scheduled(store, new ScriptedUsage([]), { isLeader: () => true });
    c.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(lines).toEqual([['error', { err: 'Error HTTP 500' }, 'pull Secret collection failed']]);
    store.listError = undefined;
    await vi.advanceTimersByTimeAsync(2 * MIN - 1);
    expect(passes).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(passes).toEqual([{ at: 10_000 + 2 * MIN }]);
    await c.stop();
  });

  it('works with timers that have no unref() (plain numeric handles)', async () => {
    const pending = new Map<number, () => void>();
    let next = 1;
    vi.stubGlobal('setTimeout', (fn: () => void) => {
      pending.set(next, fn);
      return next++;
    });
    vi.stubGlobal('clearTimeout', (id: number | undefined) => {
      if (id !== undefined) pending.delete(id);
    });
    const { c, passes } = scheduled(new ScriptedStore(), new ScriptedUsage([]), { isLeader: () => true });
    c.start();
    expect([...pending.keys()]).toEqual([1]);
    const fire = pending.get(1)!;
    pending.delete(1);
    fire();
    for (let i = 0; i < 50 && !pending.has(2); i++) await Promise.resolve();
    expect(passes).toHaveLength(1);
    expect([...pending.keys()]).toEqual([2]);
    await c.stop();
    expect(pending.size).toBe(0);
  });
});
