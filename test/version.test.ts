// packageVersion (src/version.ts): which package.json it reads, and 'unknown' without one.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const files = new Map<string, string>();
const reads: string[] = [];
beforeEach(() => {
  vi.resetModules();
  files.clear();
  reads.length = 0;
  vi.doMock('node:fs', async (orig) => {
    const real = await orig<typeof import('node:fs')>();
    const key = (f: unknown) => (f instanceof URL ? f.href : String(f));
    return {
      ...real,
      existsSync: (f: unknown) => files.has(key(f)),
      readFileSync: (f: unknown) => {
        reads.push(key(f));
        const text = files.get(key(f));
        if (text === undefined) throw Object.assign(new Error(`ENOENT ${key(f)}`), { code: 'ENOENT' });
        return text;
      },
    };
  });
});
afterEach(() => {
  vi.doUnmock('node:fs');
});

const near = () => new URL('../package.json', new URL('../src/version.ts', import.meta.url)).href;
const far = () => new URL('../../package.json', new URL('../src/version.ts', import.meta.url)).href;

describe('packageVersion', () => {
  it('is "unknown" when no package.json is found', async () => {
    const { packageVersion } = await import('../src/version.js');
    expect(packageVersion()).toBe('unknown');
    expect(reads).toEqual([]);
  });

  it('reads the package.json two levels up (dist/src/version.js) when none is next to src', async () => {
    files.set(far(), JSON.stringify({ version: '9.8.7' }));
    const { packageVersion } = await import('../src/version.js');
    expect(packageVersion()).toBe('9.8.7');
    expect(reads).toEqual([far()]);
  });

  it('stops at the first package.json; a version that is not a string is "unknown"', async () => {
    files.set(near(), JSON.stringify({ version: 3 }));
    files.set(far(), JSON.stringify({ version: '9.8.7' }));
    const { packageVersion } = await import('../src/version.js');
    expect(packageVersion()).toBe('unknown');
  });

  it('reads package.json once', async () => {
    files.set(near(), JSON.stringify({ version: '1.2.3' }));
    const { packageVersion } = await import('../src/version.js');
    expect(packageVersion()).toBe('1.2.3');
    files.set(near(), JSON.stringify({ version: '4.5.6' }));
    expect(packageVersion()).toBe('1.2.3');
    expect(reads).toEqual([near()]);
  });
});
