// The disk cache (src/credential-provider/disk-cache.ts) under file-system failures that a real directory does not
// give on demand (the tests may run as root, whom permissions do not stop): node:fs is the real module, with a
// hook before lstatSync, mkdirSync and readdirSync that a test can make throw.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { DiskCache } from '../../src/credential-provider/disk-cache.js';

type Hook = (path: string) => void;
const faults = vi.hoisted(() => ({ lstatSync: undefined as Hook | undefined, mkdirSync: undefined as Hook | undefined, readdirSync: undefined as Hook | undefined }));
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  const hooked =
    <A extends unknown[], R>(name: keyof typeof faults, f: (...args: A) => R) =>
    (...args: A): R => {
      faults[name]?.(String(args[0]));
      return f(...args);
    };
  return {
    ...actual,
    lstatSync: hooked('lstatSync', actual.lstatSync as (...args: unknown[]) => unknown),
    mkdirSync: hooked('mkdirSync', actual.mkdirSync as (...args: unknown[]) => unknown),
    readdirSync: hooked('readdirSync', actual.readdirSync as (...args: unknown[]) => unknown),
  };
});

/** Throws for `path` only, an error with the given code, or without one. */
const failFor =
  (path: string, code?: string): Hook =>
  (p) => {
    if (p === path) throw Object.assign(new Error(`${code ?? 'failure'}: ${p}`), code === undefined ? {} : { code });
  };

const root = mkdtempSync(join(tmpdir(), 'acr-disk-cache-faults-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `c${n++}`, 'cache');

describe('disk cache under file-system failures', () => {
  afterEach(() => {
    faults.lstatSync = faults.mkdirSync = faults.readdirSync = undefined;
  });

  it('has no compile cache directory when creating it fails other than by existing', () => {
    const dir = fresh();
    faults.mkdirSync = failFor(join(dir, 'compile-cache'), 'EACCES');
    const warnings: string[] = [];
    const c = new DiskCache(dir, (m) => warnings.push(m));
    expect(c.compileCacheDir()).toBeUndefined();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readdirSync(dir)).toEqual([]);
    faults.mkdirSync = undefined;
    expect(c.compileCacheDir()).toBe(join(dir, 'compile-cache'));
    expect(warnings).toEqual([]);
  });

  it('has no compile cache directory when creating it fails other than by existing, even with a directory there', () => {
    const dir = fresh();
    const warnings: string[] = [];
    const c = new DiskCache(dir, (m) => warnings.push(m));
    expect(c.compileCacheDir()).toBe(join(dir, 'compile-cache'));
    // Only "already exists" lets it look at what is there; any other failure means no compile cache.
    faults.mkdirSync = failFor(join(dir, 'compile-cache'), 'EACCES');
    expect(c.compileCacheDir()).toBeUndefined();
    faults.mkdirSync = failFor(join(dir, 'compile-cache'), 'EEXIST');
    expect(c.compileCacheDir()).toBe(join(dir, 'compile-cache'));
    expect(warnings).toEqual([]);
  });

  it('has no compile cache directory when its name exists but cannot be inspected', () => {
    const dir = fresh();
    const warnings: string[] = [];
    const c = new DiskCache(dir, (m) => warnings.push(m));
    expect(c.compileCacheDir()).toBe(join(dir, 'compile-cache'));
    faults.lstatSync = failFor(join(dir, 'compile-cache'), 'EACCES');
    expect(c.compileCacheDir()).toBeUndefined();
    faults.lstatSync = undefined;
    expect(c.compileCacheDir()).toBe(join(dir, 'compile-cache'));
    expect(warnings).toEqual([]);
  });

  it('still writes the entry when it cannot list the directory to prune it', () => {
    const dir = fresh();
    faults.readdirSync = failFor(dir, 'EACCES');
    const warnings: string[] = [];
    const c = new DiskCache(dir, (m) => warnings.push(m));
    const until = Date.now() + 60_000;
    expect(() => c.write('token', 'k', { value: 'v', usableUntil: until })).not.toThrow();
    expect(c.read('token', 'k', Date.now())).toEqual({ value: 'v', usableUntil: until });
    expect(warnings).toEqual([]);
  });

  it('says "error" when inspecting its directory fails without an error code', () => {
    const dir = fresh();
    faults.lstatSync = failFor(dir);
    const warnings: string[] = [];
    const c = new DiskCache(dir, (m) => warnings.push(m));
    c.write('token', 'k', { value: 1, usableUntil: Date.now() + 60_000 });
    expect(c.read('token', 'k', Date.now())).toBeUndefined();
    expect(warnings).toEqual([`not using the on-disk cache: cannot inspect ${dir}: error`]);
  });

  it('says "error" when creating its directory fails without an error code', () => {
    const dir = fresh();
    mkdirSync(join(dir, '..'), { recursive: true });
    faults.mkdirSync = failFor(dir);
    const warnings: string[] = [];
    const c = new DiskCache(dir, (m) => warnings.push(m));
    c.write('token', 'k', { value: 1, usableUntil: Date.now() + 60_000 });
    expect(c.read('token', 'k', Date.now())).toBeUndefined();
    expect(warnings).toEqual([`not using the on-disk cache: cannot create ${dir}: error`]);
  });
});
