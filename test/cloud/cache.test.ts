import { describe, expect, it } from 'vitest';
import { ExpiringCache, type CacheOutcome } from '../../src/cloud/cache.js';

function setup(opts: { max?: number; negative?: number } = {}) {
  let now = 1_000_000;
  const seen: CacheOutcome[] = [];
  const cache = new ExpiringCache<string>({
    name: 't',
    maxEntries: opts.max ?? 10,
    negativeTtlMs: opts.negative ?? 1000,
    now: () => now,
    observe: (_, o) => seen.push(o),
  });
  return { cache, seen, advance: (ms: number) => (now += ms), now: () => now };
}

describe('ExpiringCache', () => {
  it('shares one load between concurrent callers (single-flight)', async () => {
    const { cache, seen, now } = setup();
    let loads = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const load = async () => {
      loads++;
      await gate;
      return { value: 'v', usableUntil: now() + 1000 };
    };
    const all = Array.from({ length: 100 }, () => cache.get('k', load));
    release();
    expect(await Promise.all(all)).toEqual(Array(100).fill('v'));
    expect(loads).toBe(1);
    expect(seen.filter((o) => o === 'miss')).toHaveLength(1);
    expect(seen.filter((o) => o === 'join')).toHaveLength(99);
  });

  it('serves until usableUntil, then loads again', async () => {
    const { cache, advance, now } = setup();
    let n = 0;
    const load = async () => ({ value: `v${++n}`, usableUntil: now() + 1000 });
    expect(await cache.get('k', load)).toBe('v1');
    advance(999);
    expect(await cache.get('k', load)).toBe('v1');
    advance(1);
    expect(await cache.get('k', load)).toBe('v2');
  });

  it('remembers a failure briefly', async () => {
    const { cache, advance, seen } = setup({ negative: 500 });
    let calls = 0;
    const load = async () => {
      calls++;
      throw new Error('NoPermission');
    };
    await expect(cache.get('k', load)).rejects.toThrow('NoPermission');
    await expect(cache.get('k', load)).rejects.toThrow('NoPermission');
    expect(calls).toBe(1);
    expect(seen).toContain('negative');
    advance(500);
    await expect(cache.get('k', load)).rejects.toThrow('NoPermission');
    expect(calls).toBe(2);
  });

  it('stays within maxEntries, evicting the least recently used', async () => {
    const { cache, now } = setup({ max: 3 });
    const load = (v: string) => async () => ({ value: v, usableUntil: now() + 10_000 });
    for (const k of ['a', 'b', 'c']) await cache.get(k, load(k));
    await cache.get('a', load('A')); // touch a: b is now the oldest
    await cache.get('d', load('d'));
    expect(cache.size).toBe(3);
    expect(await cache.get('a', load('A2'))).toBe('a');
    expect(await cache.get('b', load('B2'))).toBe('B2');
  });

  it('does not store a value that is already unusable', async () => {
    const { cache, now } = setup();
    let n = 0;
    const load = async () => ({ value: `v${++n}`, usableUntil: now() - 1 });
    await cache.get('k', load);
    await cache.get('k', load);
    expect(n).toBe(2);
    expect(cache.size).toBe(0);
  });

  it('does not store a value whose usable time is now: it is already unusable', async () => {
    const { cache, now } = setup();
    expect(await cache.get('k', async () => ({ value: 'v', usableUntil: now() }))).toBe('v');
    expect(cache.size).toBe(0);
  });

  it('delete(key) forgets the value: the next get loads again', async () => {
    const { cache, now } = setup();
    let n = 0;
    const load = async () => ({ value: `v${++n}`, usableUntil: now() + 1000 });
    expect(await cache.get('k', load)).toBe('v1');
    cache.delete('k');
    expect(cache.size).toBe(0);
    expect(await cache.get('k', load)).toBe('v2');
  });

  it('with negativeTtlMs 0 a failure is never remembered, even when the clock steps back', async () => {
    // A wall clock set back between two readings (NTP) must not turn "remember for 0 ms" into a cached failure.
    let t = 1_000_000;
    const cache = new ExpiringCache<string>({ name: 't', maxEntries: 10, negativeTtlMs: 0, now: () => (t -= 1000) });
    let calls = 0;
    const load = async () => {
      calls++;
      throw new Error('NoPermission');
    };
    await expect(cache.get('k', load)).rejects.toThrow('NoPermission');
    expect(cache.size).toBe(0);
    await expect(cache.get('k', load)).rejects.toThrow('NoPermission');
    expect(calls).toBe(2);
  });
});
