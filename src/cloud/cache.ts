// A bounded cache of expiring values with single-flight loads and brief negative caching: a burst of Pods
// with the same annotations costs one cloud call, and a broken role is not hammered.
import { ownString } from '../util/own-string.js';

export interface Expiring<V> {
  value: V;
  /** ms since epoch after which the value must not be served. */
  usableUntil: number;
}

/** `disk`: not in memory, but in the persistent store (the credential provider's on-disk cache). */
export type CacheOutcome = 'hit' | 'miss' | 'join' | 'negative' | 'disk';

/**
 * A second level that outlives the process: the credential provider is a new process per image pull. Both
 * methods are synchronous (local files) and never throw: a broken store only costs a cloud call.
 */
export interface PersistentStore {
  /** The entry stored under (cache, key), if it is still usable at `now`. */
  read<V>(cache: string, key: string, now: number): Expiring<V> | undefined;
  write<V>(cache: string, key: string, entry: Expiring<V>): void;
}

export interface CacheOptions {
  name: string;
  maxEntries: number;
  /** How long a failure is remembered (ms); 0 to not remember failures. */
  negativeTtlMs: number;
  now?: () => number;
  observe?: (cache: string, outcome: CacheOutcome) => void;
  /** Successful loads are written through to it, and misses in memory are looked up in it. */
  persistent?: PersistentStore;
}

/** `key` is the stored copy of the key, so that re-inserting on a hit does not store the caller's string. */
type Entry<V> = ({ ok: true; value: V } | { ok: false; error: unknown }) & { until: number; key: string };

export class ExpiringCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly inflight = new Map<string, Promise<V>>();
  private readonly now: () => number;

  constructor(private readonly opts: CacheOptions) {
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The cached value, or `load()`'s, shared with every concurrent caller of the same key. */
  get(key: string, load: () => Promise<Expiring<V>>): Promise<V> {
    const entry = this.entries.get(key);
    if (entry && entry.until > this.now()) {
      // Map order is insertion order: re-inserting makes this the most recently used.
      this.entries.delete(entry.key);
      this.entries.set(entry.key, entry);
      this.opts.observe?.(this.opts.name, entry.ok ? 'hit' : 'negative');
      return entry.ok ? Promise.resolve(entry.value) : Promise.reject(entry.error);
    }
    const pending = this.inflight.get(key);
    if (pending) {
      this.opts.observe?.(this.opts.name, 'join');
      return pending;
    }
    const stored = this.opts.persistent?.read<V>(this.opts.name, key, this.now());
    if (stored) {
      this.store(key, { ok: true, value: stored.value, until: stored.usableUntil, key: ownString(key) });
      this.opts.observe?.(this.opts.name, 'disk');
      return Promise.resolve(stored.value);
    }
    this.opts.observe?.(this.opts.name, 'miss');
    const p = load().then(
      (r) => {
        this.store(key, { ok: true, value: r.value, until: r.usableUntil, key: ownString(key) });
        this.opts.persistent?.write(this.opts.name, key, r);
        return r.value;
      },
      (error: unknown) => {
        this.fail(key, error);
        throw error;
      },
    );
    const tracked = p.finally(() => this.inflight.delete(key));
    this.inflight.set(key, tracked);
    return tracked;
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Remembers `error` for `key` as a failed load does (for negativeTtlMs), replacing a cached value. */
  fail(key: string, error: unknown): void {
    if (this.opts.negativeTtlMs > 0) this.store(key, { ok: false, error, until: this.now() + this.opts.negativeTtlMs, key: ownString(key) });
    else this.entries.delete(key);
  }

  private store(key: string, entry: Entry<V>): void {
    this.entries.delete(key);
    if (entry.until <= this.now()) return;
    this.entries.set(entry.key, entry);
    // Evict least recently used, then anything expired we happen to meet first.
    while (this.entries.size > this.opts.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}
