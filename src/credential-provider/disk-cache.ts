// The credential provider's cache of STS sessions, registry tokens and instance domains across processes (the
// kubelet starts the plugin once per pull). One JSON file per entry, written atomically (temporary file, then
// rename) with mode 0600 in a directory of mode 0700 owned by the plugin's user; an entry is served only until
// its usableUntil (the token's expiry minus the refresh threshold). The files hold secrets: nothing here ever
// prints their content, only paths and error codes.
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Expiring, PersistentStore } from '../cloud/cache.js';

interface Stored {
  v: 1;
  cache: string;
  key: string;
  usableUntil: number;
  value: unknown;
}

/** Bounds the clean-up of expired entries (it runs once per process that wrote something). */
const PRUNE_MAX_FILES = 2000;

/**
 * An entry's file name, as path() makes it: `<cache>-<40 hex>.json`. (A function, not a module constant, so that a
 * mutation test can change the pattern per test run.)
 */
function isEntryName(name: string): boolean {
  return /^[a-z]+-[0-9a-f]{40}\.json$/.test(name);
}

export class DiskCache implements PersistentStore {
  private usable: boolean | undefined;
  private pruned = false;

  constructor(
    readonly dir: string,
    private readonly warn: (message: string) => void,
  ) {}

  read<V>(cache: string, key: string, now: number): Expiring<V> | undefined {
    if (!this.checkDir(false)) return undefined;
    let text: string;
    try {
      text = readFileSync(this.path(cache, key), 'utf8');
    } catch {
      return undefined;
    }
    try {
      const s = JSON.parse(text) as Stored;
      // The key is stored too: a file is only ever served for the exact key it was written for.
      if (s.v !== 1 || s.cache !== cache || s.key !== key || typeof s.usableUntil !== 'number' || s.value === undefined) return undefined;
      return s.usableUntil > now ? { value: s.value as V, usableUntil: s.usableUntil } : undefined;
    } catch {
      return undefined;
    }
  }

  write<V>(cache: string, key: string, entry: Expiring<V>): void {
    if (!this.checkDir(true)) return;
    const file = this.path(cache, key);
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    const stored: Stored = { v: 1, cache, key, usableUntil: entry.usableUntil, value: entry.value };
    try {
      writeFileSync(tmp, JSON.stringify(stored), { mode: 0o600, flag: 'wx' });
      renameSync(tmp, file);
    } catch (e) {
      this.warn(`cannot write the cache entry ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
      try {
        unlinkSync(tmp);
      } catch {
        // never created
      }
      return;
    }
    this.prune(Date.now());
  }

  /**
   * A directory for V8's compile cache (./compile-cache.ts) inside this one, created with it: only ours, like the
   * entries. Undefined when the cache directory is refused.
   */
  compileCacheDir(): string | undefined {
    if (!this.checkDir(true)) return undefined;
    const dir = join(this.dir, 'compile-cache');
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return undefined;
      // Something already there: a directory from an earlier run, or not one (a stray file, a link), then no cache.
      try {
        if (!lstatSync(dir).isDirectory()) return undefined;
      } catch {
        return undefined;
      }
    }
    return dir;
  }

  private path(cache: string, key: string): string {
    return join(this.dir, `${cache}-${createHash('sha256').update(`${cache}\n${key}`).digest('hex').slice(0, 40)}.json`);
  }

  /**
   * The directory must be ours alone: a real directory (not a symlink), owned by this user, with no group or
   * other permission bits. Anything else is refused once, with a warning, and the plugin runs without a cache.
   */
  private checkDir(create: boolean): boolean {
    if (this.usable !== undefined) return this.usable;
    let st;
    try {
      st = lstatSync(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return this.refuse(`cannot inspect ${this.dir}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
      // Nothing to read yet; created on the first write.
      if (!create) return false;
      try {
        mkdirSync(this.dir, { recursive: true, mode: 0o700 });
        st = lstatSync(this.dir);
      } catch (e2) {
        return this.refuse(`cannot create ${this.dir}: ${(e2 as NodeJS.ErrnoException).code ?? 'error'}`);
      }
    }
    if (!st.isDirectory()) return this.refuse(`${this.dir} is not a directory`);
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) return this.refuse(`${this.dir} is owned by uid ${st.uid}, not by this process (uid ${uid})`);
    if ((st.mode & 0o077) !== 0) return this.refuse(`${this.dir} has mode ${(st.mode & 0o777).toString(8)}; it must be 0700`);
    this.usable = true;
    return true;
  }

  private refuse(why: string): false {
    this.warn(`not using the on-disk cache: ${why}`);
    this.usable = false;
    return false;
  }

  /** Removes expired entries and stale temporary files, once per process. Bounded; errors are ignored. */
  private prune(now: number): void {
    if (this.pruned) return;
    this.pruned = true;
    let names: string[];
    try {
      names = readdirSync(this.dir).slice(0, PRUNE_MAX_FILES);
    } catch {
      return;
    }
    for (const name of names) {
      const file = join(this.dir, name);
      try {
        if (name.endsWith('.tmp')) {
          if (now - lstatSync(file).mtimeMs > 60_000) unlinkSync(file);
        } else if (isEntryName(name)) {
          const s = JSON.parse(readFileSync(file, 'utf8')) as Partial<Stored>;
          if (typeof s.usableUntil !== 'number' || s.usableUntil <= now) unlinkSync(file);
        }
      } catch {
        // Raced with another plugin process, or unreadable: left alone.
      }
    }
  }
}
