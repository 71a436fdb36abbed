// enableCompileCache (src/credential-provider/compile-cache.ts): V8's compile cache where Node has the API (22.1+),
// nothing where it has not (20). node:module is mocked so that both cases run on any Node.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { enableCompileCache } from '../../src/credential-provider/compile-cache.js';

const api = vi.hoisted(() => ({ enable: undefined as ((dir: string) => unknown) | undefined }));
vi.mock('node:module', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:module')>();
  return {
    ...actual,
    get enableCompileCache() {
      return api.enable;
    },
  };
});

describe('enableCompileCache', () => {
  let dir: ReturnType<typeof vi.fn<() => string | undefined>>;
  beforeEach(() => {
    dir = vi.fn<() => string | undefined>(() => '/var/lib/acr-credential-provider/compile-cache');
    api.enable = undefined;
  });

  it('turns the cache on in the directory it is given', () => {
    const enable = vi.fn();
    api.enable = enable;
    enableCompileCache(dir);
    expect(dir).toHaveBeenCalledTimes(1);
    expect(enable.mock.calls).toEqual([['/var/lib/acr-credential-provider/compile-cache']]);
  });

  it('does nothing, and does not ask for (or make) the directory, where Node has no such API', () => {
    enableCompileCache(dir);
    expect(dir).not.toHaveBeenCalled();
    // Something else under that name (not a function) is no API either.
    api.enable = 'yes' as unknown as (d: string) => unknown;
    enableCompileCache(dir);
    expect(dir).not.toHaveBeenCalled();
  });

  it('does not turn it on without a directory (the cache directory was refused)', () => {
    const enable = vi.fn();
    api.enable = enable;
    dir.mockReturnValue(undefined);
    enableCompileCache(dir);
    expect(dir).toHaveBeenCalledTimes(1);
    expect(enable).not.toHaveBeenCalled();
  });

  it('lets a pull go on when turning it on fails (only an optimisation)', () => {
    const enable = vi.fn(() => {
      throw new Error('EACCES');
    });
    api.enable = enable;
    expect(() => enableCompileCache(dir)).not.toThrow();
    expect(enable).toHaveBeenCalledTimes(1);
  });
});
