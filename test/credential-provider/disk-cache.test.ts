// The on-disk cache: what it serves, for how long, with which permissions, and what it refuses.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { ExpiringCache } from '../../src/cloud/cache.js';
import { DiskCache } from '../../src/credential-provider/disk-cache.js';

const root = mkdtempSync(join(tmpdir(), 'acr-disk-cache-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `c${n++}`, 'cache');

describe('disk cache', () => {
  it('creates its directory 0700 on the first write, files 0600, and serves an entry until its usable time', () => {
    const warnings: string[] = [];
    const dir = fresh();
    const c = new DiskCache(dir, (m) => warnings.push(m));
    expect(c.read('token', 'k', Date.now())).toBeUndefined();
    expect(existsSync(dir)).toBe(false);
    const until = Date.now() + 60_000;
    c.write('token', 'k', { value: { password: 'p' }, usableUntil: until });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const [file] = readdirSync(dir);
    expect(file).toMatch(/^token-[0-9a-f]{40}\.json$/);
    expect(statSync(join(dir, file!)).mode & 0o777).toBe(0o600);
    // Another process (another instance) reads it.
    const other = new DiskCache(dir, (m) => warnings.push(m));
    expect(other.read('token', 'k', Date.now())).toEqual({ value: { password: 'p' }, usableUntil: until });
    expect(other.read('token', 'k', until)).toBeUndefined();
    expect(other.read('token', 'other-key', Date.now())).toBeUndefined();
    expect(other.read('sts', 'k', Date.now())).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it('serves a file only for the key it was written for', () => {
    const dir = fresh();
    const c = new DiskCache(dir, () => {});
    c.write('token', 'a', { value: 1, usableUntil: Date.now() + 60_000 });
    c.write('token', 'b', { value: 2, usableUntil: Date.now() + 60_000 });
    const [fa, fb] = readdirSync(dir).sort();
    // Swap the two files' contents: each now holds the other key.
    const [ta, tb] = [readFileSync(join(dir, fa!), 'utf8'), readFileSync(join(dir, fb!), 'utf8')];
    writeFileSync(join(dir, fa!), tb);
    writeFileSync(join(dir, fb!), ta);
    const reader = new DiskCache(dir, () => {});
    expect(reader.read('token', 'a', Date.now())).toBeUndefined();
    expect(reader.read('token', 'b', Date.now())).toBeUndefined();
    writeFileSync(join(dir, fa!), '{not json');
    expect(reader.read('token', 'a', Date.now())).toBeUndefined();
  });

  it.each([
    ['others may read it', (dir: string) => chmodSync(dir, 0o755), /has mode 755; it must be 0700/],
    ['it is a symlink', (dir: string) => {
      const real = `${dir}-real`;
      mkdirSync(real, { mode: 0o700 });
      symlinkSync(real, dir);
    }, /is not a directory/],
    ['it is a file', (dir: string) => writeFileSync(dir, ''), /is not a directory/],
  ])('refuses a directory when %s, once, with a warning', (_what, spoil, message) => {
    const dir = fresh();
    mkdirSync(join(dir, '..'), { recursive: true });
    if (!/symlink|file/.test(String(_what))) mkdirSync(dir, { mode: 0o700 });
    spoil(dir);
    const warnings: string[] = [];
    const c = new DiskCache(dir, (m) => warnings.push(m));
    c.write('token', 'k', { value: 1, usableUntil: Date.now() + 60_000 });
    expect(c.read('token', 'k', Date.now())).toBeUndefined();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(message);
  });

  it('removes expired entries and stale temporary files when it writes', () => {
    const dir = fresh();
    const c = new DiskCache(dir, () => {});
    c.write('token', 'old', { value: 1, usableUntil: Date.now() + 50 });
    c.write('token', 'live', { value: 2, usableUntil: Date.now() + 60_000 });
    const stale = join(dir, 'token-x.json.1.abc.tmp');
    writeFileSync(stale, '');
    utimesSync(stale, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    const later = new DiskCache(dir, () => {});
    const before = readdirSync(dir).length;
    expect(before).toBe(3);
    return new Promise<void>((done) =>
      setTimeout(() => {
        later.write('token', 'new', { value: 3, usableUntil: Date.now() + 60_000 });
        const left = readdirSync(dir);
        expect(left).toHaveLength(2);
        expect(left).not.toContain('token-x.json.1.abc.tmp');
        expect(later.read('token', 'live', Date.now())?.value).toBe(2);
        expect(later.read('token', 'new', Date.now())?.value).toBe(3);
        done();
      }, 80),
    );
  });

  it('is the second level of the in-memory cache: misses read it, loads write through', async () => {
    const dir = fresh();
    const outcomes: string[] = [];
    const make = () => new ExpiringCache<string>({ name: 'token', maxEntries: 10, negativeTtlMs: 0, persistent: new DiskCache(dir, () => {}), observe: (_c, o) => outcomes.push(o) });
    let loads = 0;
    const load = async () => {
      loads++;
      return { value: `v${loads}`, usableUntil: Date.now() + 60_000 };
    };
    expect(await make().get('k', load)).toBe('v1');
    const second = make();
    expect(await second.get('k', load)).toBe('v1');
    expect(await second.get('k', load)).toBe('v1');
    expect(loads).toBe(1);
    expect(outcomes).toEqual(['miss', 'disk', 'hit']);
  });

  describe('with a fixed clock', () => {
    // 2027-01-15T08:00:00Z, a whole second: file times set with utimesSync keep exact milliseconds.
    const T = 1_800_000_000_000;
    const HEX = (c: string) => c.repeat(40);
    const at = (file: string, ms: number) => utimesSync(file, new Date(ms), new Date(ms));
    afterEach(() => vi.restoreAllMocks());

    it('prunes once per process: an expired entry that appears after its first write stays until another process writes', () => {
      vi.spyOn(Date, 'now').mockReturnValue(T);
      const dir = fresh();
      const c = new DiskCache(dir, () => {});
      c.write('token', 'a', { value: 1, usableUntil: T + 60_000 });
      const expired = `token-${HEX('0')}.json`;
      writeFileSync(join(dir, expired), '{"v":1,"usableUntil":1}');
      c.write('token', 'b', { value: 2, usableUntil: T + 60_000 });
      expect(readdirSync(dir)).toContain(expired);
      expect(readdirSync(dir)).toHaveLength(3);
      new DiskCache(dir, () => {}).write('token', 'c', { value: 3, usableUntil: T + 60_000 });
      expect(readdirSync(dir)).not.toContain(expired);
      expect(readdirSync(dir)).toHaveLength(3);
    });

    it('prunes entries expired at or before now and temporary files older than a minute, and nothing else', () => {
      vi.spyOn(Date, 'now').mockReturnValue(T);
      const dir = fresh();
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const files: Record<string, string> = {
        [`token-${HEX('1')}.json`]: `{"v":1,"usableUntil":${T}}`, // expired exactly now: removed
        [`token-${HEX('2')}.json`]: '{"v":1}', // no usableUntil: removed
        [`token-${HEX('3')}.json`]: `{"v":1,"usableUntil":${T + 1}}`, // usable for another millisecond: kept
        [`sts-${HEX('a')}.json`]: '{"v":1,"usableUntil":1}', // removed
        [`Xtoken-${HEX('4')}.json`]: '{"v":1,"usableUntil":1}', // not an entry's name: kept
        [`token-${HEX('5')}.json.bak`]: '{"v":1,"usableUntil":1}', // not an entry's name: kept
        [`token-${'6'.repeat(39)}.json`]: '{"v":1,"usableUntil":1}', // not an entry's name: kept
        [`token-${HEX('g')}.json`]: '{"v":1,"usableUntil":1}', // not an entry's name: kept
        ['notes.json']: '{"v":1,"usableUntil":1}', // not an entry's name: kept
      };
      for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
      for (const [name, age] of [['fresh.tmp', 0], ['minute.tmp', 60_000], ['older.tmp', 61_000]] as const) {
        writeFileSync(join(dir, name), '');
        at(join(dir, name), T - age);
      }
      const c = new DiskCache(dir, () => {});
      c.write('token', 'new', { value: 3, usableUntil: T + 60_000 });
      const written = readdirSync(dir).filter((n) => !(n in files) && !n.endsWith('.tmp'));
      expect(written).toHaveLength(1);
      expect(readdirSync(dir).sort()).toEqual(
        [
          `Xtoken-${HEX('4')}.json`,
          'fresh.tmp',
          'minute.tmp',
          'notes.json',
          `token-${HEX('3')}.json`,
          `token-${HEX('5')}.json.bak`,
          `token-${'6'.repeat(39)}.json`,
          `token-${HEX('g')}.json`,
          written[0]!,
        ].sort(),
      );
      expect(c.read('token', 'new', T)).toEqual({ value: 3, usableUntil: T + 60_000 });
    });

    it('looks at no more than 2000 names when it prunes', () => {
      vi.spyOn(Date, 'now').mockReturnValue(T);
      const dir = fresh();
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      for (let i = 0; i < 2100; i++) writeFileSync(join(dir, `token-${i.toString(16).padStart(40, '0')}.json`), '{"v":1,"usableUntil":1}');
      // The entry written is expired too: all 2101 names are prunable, and 2000 of them go.
      new DiskCache(dir, () => {}).write('token', 'k', { value: 1, usableUntil: T });
      expect(readdirSync(dir)).toHaveLength(101);
    });

    it('never writes through a file planted at its temporary name: it warns and removes the planted link', () => {
      vi.spyOn(Date, 'now').mockReturnValue(T);
      const dir = fresh();
      new DiskCache(dir, () => {}).write('token', 'k', { value: 'old', usableUntil: T + 60_000 });
      const [name] = readdirSync(dir);
      const victim = join(dir, '..', 'victim');
      writeFileSync(victim, 'victim');
      // Math.random() is 0.5, "0.i" in base 36: the temporary file's name ends in ".<pid>.i.tmp".
      vi.spyOn(Math, 'random').mockReturnValue(0.5);
      const planted = join(dir, `${name}.${process.pid}.i.tmp`);
      symlinkSync(victim, planted);
      const warnings: string[] = [];
      const c = new DiskCache(dir, (m) => warnings.push(m));
      c.write('token', 'k', { value: 'new', usableUntil: T + 60_000 });
      expect(warnings).toEqual([`cannot write the cache entry ${join(dir, name!)}: EEXIST`]);
      expect(readFileSync(victim, 'utf8')).toBe('victim');
      expect(readdirSync(dir)).toEqual([name]);
      expect(c.read('token', 'k', T)).toEqual({ value: 'old', usableUntil: T + 60_000 });
    });
  });

  it('refuses an entry of another version or cache, without a numeric usableUntil, or without a value', () => {
    const dir = fresh();
    const until = Date.now() + 60_000;
    new DiskCache(dir, () => {}).write('token', 'k', { value: 'v', usableUntil: until });
    const [name] = readdirSync(dir);
    const file = join(dir, name!);
    const good = { v: 1, cache: 'token', key: 'k', usableUntil: until, value: 'v' };
    const reader = new DiskCache(dir, () => {});
    const served = (doc: Record<string, unknown>) => {
      writeFileSync(file, JSON.stringify(doc));
      return reader.read('token', 'k', Date.now());
    };
    expect(served(good)).toEqual({ value: 'v', usableUntil: until });
    expect(served({ ...good, v: 2 })).toBeUndefined();
    expect(served({ ...good, cache: 'sts' })).toBeUndefined();
    expect(served({ ...good, usableUntil: String(until) })).toBeUndefined();
    expect(served({ ...good, value: undefined })).toBeUndefined();
    expect(served({ ...good, value: null })).toEqual({ value: null, usableUntil: until });
  });

  it('warns with the error code when it cannot move an entry into place, and leaves no temporary file', () => {
    const dir = fresh();
    const until = Date.now() + 60_000;
    new DiskCache(dir, () => {}).write('token', 'k', { value: 'v', usableUntil: until });
    const [name] = readdirSync(dir);
    rmSync(join(dir, name!));
    mkdirSync(join(dir, name!));
    const warnings: string[] = [];
    new DiskCache(dir, (m) => warnings.push(m)).write('token', 'k', { value: 'v', usableUntil: until });
    expect(warnings).toEqual([`cannot write the cache entry ${join(dir, name!)}: EISDIR`]);
    expect(readdirSync(dir)).toEqual([name]);
  });

  it('warns "error" for a failure without an error code (a value JSON cannot hold) and keeps the old entry', () => {
    const dir = fresh();
    const until = Date.now() + 60_000;
    new DiskCache(dir, () => {}).write('token', 'k', { value: 'old', usableUntil: until });
    const [name] = readdirSync(dir);
    const warnings: string[] = [];
    const c = new DiskCache(dir, (m) => warnings.push(m));
    c.write('token', 'k', { value: 1n, usableUntil: until });
    expect(warnings).toEqual([`cannot write the cache entry ${join(dir, name!)}: error`]);
    expect(readdirSync(dir)).toEqual([name]);
    expect(c.read('token', 'k', Date.now())).toEqual({ value: 'old', usableUntil: until });
  });

  it('makes the compile cache directory inside its own on first use, and finds it there afterwards', () => {
    const dir = fresh();
    const warnings: string[] = [];
    expect(new DiskCache(dir, (m) => warnings.push(m)).compileCacheDir()).toBe(join(dir, 'compile-cache'));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'compile-cache')).mode & 0o777).toBe(0o700);
    expect(new DiskCache(dir, (m) => warnings.push(m)).compileCacheDir()).toBe(join(dir, 'compile-cache'));
    expect(warnings).toEqual([]);
  });

  it('has no compile cache directory when a file or a link already holds its name', () => {
    const dir = fresh();
    const warnings: string[] = [];
    const c = new DiskCache(dir, (m) => warnings.push(m));
    expect(c.compileCacheDir()).toBe(join(dir, 'compile-cache'));
    rmSync(join(dir, 'compile-cache'), { recursive: true });
    writeFileSync(join(dir, 'compile-cache'), 'not a directory');
    expect(c.compileCacheDir()).toBeUndefined();
    rmSync(join(dir, 'compile-cache'));
    mkdirSync(join(dir, 'elsewhere'), { mode: 0o700 });
    symlinkSync(join(dir, 'elsewhere'), join(dir, 'compile-cache'));
    expect(c.compileCacheDir()).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it('has no compile cache directory when its own is refused', () => {
    const dir = fresh();
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    const warnings: string[] = [];
    expect(new DiskCache(dir, (m) => warnings.push(m)).compileCacheDir()).toBeUndefined();
    expect(readdirSync(dir)).toEqual([]);
    expect(warnings).toEqual([`not using the on-disk cache: ${dir} has mode 755; it must be 0700`]);
  });

  it('names the error code when it cannot inspect its directory', () => {
    const parent = fresh();
    mkdirSync(join(parent, '..'), { recursive: true });
    writeFileSync(parent, '');
    const dir = join(parent, 'cache');
    const warnings: string[] = [];
    const c = new DiskCache(dir, (m) => warnings.push(m));
    expect(c.read('token', 'k', Date.now())).toBeUndefined();
    c.write('token', 'k', { value: 1, usableUntil: Date.now() + 60_000 });
    expect(warnings).toEqual([`not using the on-disk cache: cannot inspect ${dir}: ENOTDIR`]);
  });

  it('names the error code when it cannot create its directory', () => {
    const parent = fresh();
    mkdirSync(join(parent, '..'), { recursive: true });
    symlinkSync(join(parent, '..', 'nowhere'), parent);
    const dir = join(parent, 'cache');
    const warnings: string[] = [];
    const c = new DiskCache(dir, (m) => warnings.push(m));
    c.write('token', 'k', { value: 1, usableUntil: Date.now() + 60_000 });
    expect(c.read('token', 'k', Date.now())).toBeUndefined();
    expect(warnings).toEqual([`not using the on-disk cache: cannot create ${dir}: ENOENT`]);
  });

  it('reads nothing through a directory that does not exist, even where its path leads to entries', () => {
    const real = fresh();
    const until = Date.now() + 60_000;
    new DiskCache(real, () => {}).write('token', 'k', { value: 'v', usableUntil: until });
    // ".../missing/.." does not exist (lstat says ENOENT), but joined with a name it is the real directory.
    const dir = `${real}/missing/..`;
    const warnings: string[] = [];
    expect(new DiskCache(dir, (m) => warnings.push(m)).read('token', 'k', Date.now())).toBeUndefined();
    expect(existsSync(join(real, 'missing'))).toBe(false);
    expect(warnings).toEqual([]);
  });

  describe('ownership', () => {
    const getuid = process.getuid;
    afterEach(() => {
      process.getuid = getuid;
      vi.restoreAllMocks();
    });

    it('refuses a directory another user owns', () => {
      const dir = fresh();
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const owner = statSync(dir).uid;
      vi.spyOn(process, 'getuid').mockReturnValue(owner + 4242);
      const warnings: string[] = [];
      const c = new DiskCache(dir, (m) => warnings.push(m));
      c.write('token', 'k', { value: 1, usableUntil: Date.now() + 60_000 });
      expect(readdirSync(dir)).toEqual([]);
      expect(warnings).toEqual([`not using the on-disk cache: ${dir} is owned by uid ${owner}, not by this process (uid ${owner + 4242})`]);
    });

    it('skips the owner check where the platform has no user IDs (no process.getuid)', () => {
      const dir = fresh();
      (process as { getuid?: () => number }).getuid = undefined;
      const warnings: string[] = [];
      const c = new DiskCache(dir, (m) => warnings.push(m));
      c.write('token', 'k', { value: 1, usableUntil: Date.now() + 60_000 });
      expect(c.read('token', 'k', Date.now())?.value).toBe(1);
      expect(warnings).toEqual([]);
    });
  });
});
