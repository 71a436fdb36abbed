// The plugin's stdin and stdout (src/credential-provider/stdio.ts) where the real file system cannot show it: the
// path it opens by default, a read error without an errno code, how many times writeAll retries a pipe that stays
// full, and what finish and crash write and exit with when given no output. node:fs passes through to the real one unless a test sets a hook. stdio.test.ts has the rest.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

type Fs = typeof import('node:fs');
const hook = vi.hoisted(() => ({
  openSync: undefined as ((actual: Fs['openSync'], path: string, flags: number) => number) | undefined,
  readSync: undefined as (() => number) | undefined,
  writeSync: undefined as ((...args: unknown[]) => number) | undefined,
}));
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<Fs>();
  const openSync = ((path: string, flags: number) => (hook.openSync ? hook.openSync(actual.openSync, path, flags) : actual.openSync(path, flags))) as Fs['openSync'];
  const readSync = ((...args: Parameters<Fs['readSync']>) => (hook.readSync ? hook.readSync() : actual.readSync(...args))) as Fs['readSync'];
  const writeSync = ((...args: Parameters<Fs['writeSync']>) => (hook.writeSync ? hook.writeSync(...args) : (actual.writeSync as (...a: unknown[]) => number)(...args))) as Fs['writeSync'];
  const fs = { ...actual, openSync, readSync, writeSync };
  return { ...fs, default: fs };
});

let stdio: typeof import('../../src/credential-provider/stdio.js');
let dir: string;

beforeEach(async () => {
  stdio = await import('../../src/credential-provider/stdio.js');
  dir = mkdtempSync(join(tmpdir(), 'acr-cp-stdio-fs-'));
  hook.openSync = hook.readSync = hook.writeSync = undefined;
});
afterEach(() => {
  hook.openSync = hook.readSync = hook.writeSync = undefined;
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

describe('readStdin', () => {
  it('reads /proc/self/fd/0 (the process stdin, opened again non-blocking) when given no path', async () => {
    const file = join(dir, 'req');
    writeFileSync(file, '{"kind":"CredentialProviderRequest"}');
    const opened: string[] = [];
    // /proc/self/fd/0 stands for the request file here; any other path is opened as it is.
    hook.openSync = (openSync, path, flags) => {
      opened.push(path);
      return openSync(path === '/proc/self/fd/0' ? file : path, flags);
    };
    // The stream is the fallback for a stdin that cannot be opened; it must not be what answers.
    const stream = new PassThrough();
    stream.end('from the stream');
    expect(await stdio.readStdin(undefined, stream)).toBe('{"kind":"CredentialProviderRequest"}');
    expect(opened).toEqual(['/proc/self/fd/0']);
  });

  it("says 'error' for a read failure that carries no errno code", async () => {
    const file = join(dir, 'req');
    writeFileSync(file, 'x');
    hook.readSync = () => {
      throw new Error('no code here');
    };
    await expect(stdio.readStdin(file)).rejects.toThrow(new Error('cannot read stdin: error'));
  });
});

describe('writeAll', () => {
  it('tries a full pipe again after each 1 ms wait, 5,000 times, then gives up', () => {
    let writes = 0;
    hook.writeSync = () => {
      writes++;
      throw Object.assign(new Error('EAGAIN: resource temporarily unavailable, write'), { code: 'EAGAIN' });
    };
    const wait = vi.spyOn(Atomics, 'wait').mockReturnValue('timed-out');
    stdio.writeAll(1, 'never written');
    expect(writes).toBe(5001);
    expect(wait).toHaveBeenCalledTimes(5000);
    expect(wait.mock.calls[0]!.slice(1)).toEqual([0, 0, 1]);
  });

  it('goes on writing once the pipe takes the text again', () => {
    const written: number[] = [];
    let full = 3;
    hook.writeSync = () => {
      if (full-- > 0) throw Object.assign(new Error('EAGAIN'), { code: 'EAGAIN' });
      written.push(1);
      return 7;
    };
    const wait = vi.spyOn(Atomics, 'wait').mockReturnValue('timed-out');
    stdio.writeAll(1, 'x'.repeat(14));
    expect(wait).toHaveBeenCalledTimes(3);
    expect(written).toEqual([1, 1]);
  });
});

describe('finish and crash without an output of their own', () => {
  it('write to fds 1 and 2 and exit the process', () => {
    const written: Array<[unknown, string]> = [];
    hook.writeSync = (fd, buf, offset) => {
      const rest = (buf as Buffer).subarray(offset as number);
      written.push([fd, rest.toString('utf8')]);
      return rest.length;
    };
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    stdio.finish({ code: 0, stdout: '{"kind":"CredentialProviderResponse"}', stderr: ['cached'] });
    expect(written).toEqual([
      [1, '{"kind":"CredentialProviderResponse"}\n'],
      [2, 'acr-credential-provider: cached\n'],
    ]);
    expect(exit.mock.calls).toEqual([[0]]);
    written.length = 0;
    stdio.crash(new TypeError('secret in here'));
    expect(written).toEqual([[2, 'acr-credential-provider: internal error: TypeError\n']]);
    expect(exit.mock.calls).toEqual([[0], [1]]);
  });
});
