// CacheSet (src/readiness.ts) with fake timers: when it declares the caches synced, what it reports, who it wakes.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CacheSet, type SyncedCache } from '../src/readiness.js';

function cache(name: string) {
  let done = false;
  const c: SyncedCache & { finish(): void } = {
    name,
    start: () => undefined,
    stop: async () => undefined,
    synced: () => done,
    finish: () => {
      done = true;
    },
  };
  return c;
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('CacheSet', () => {
  it('reports the time from start to sync, found at the poll after the last cache synced', async () => {
    const a = cache('secrets');
    const seen: number[] = [];
    const set = new CacheSet([a], { onSynced: (ms) => seen.push(ms), pollMs: 50 });
    set.start();
    let woken = 0;
    void set.whenSynced().then(() => woken++);
    vi.advanceTimersByTime(120);
    expect(set.pending()).toEqual(['secrets']);
    a.finish();
    expect(set.synced()).toBe(false);
    expect(woken).toBe(0);
    await vi.advanceTimersByTimeAsync(30);
    expect(seen).toEqual([150]);
    expect(set.synced()).toBe(true);
    expect(set.pending()).toEqual([]);
    expect(woken).toBe(1);
    await set.stop();
  });

  it('polls every 100 ms without pollMs', async () => {
    const a = cache('namespaces');
    const seen: number[] = [];
    const set = new CacheSet([a], { onSynced: (ms) => seen.push(ms) });
    set.start();
    a.finish();
    await vi.advanceTimersByTimeAsync(99);
    expect(seen).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen).toEqual([100]);
    await set.stop();
  });

  it('without onSynced, caches already synced at start are simply synced', async () => {
    const a = cache('secrets');
    a.finish();
    const set = new CacheSet([a]);
    expect(() => set.start()).not.toThrow();
    expect(set.synced()).toBe(true);
    await expect(set.whenSynced()).resolves.toBeUndefined();
    await set.stop();
  });
});
