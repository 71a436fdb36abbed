// The on-disk cache: what it serves, for how long, with which permissions, and what it refuses.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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
});
