// The plugin's standard input and output (src/credential-provider/stdio.ts), in-process: stdin read from a file or a
// named pipe through the non-blocking path (as /proc/self/fd/0 is), or from a stream (the fallback); its limit,
// timeout and polling; writeAll on files and pipes; what the entry prints and which exit code it uses.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { crash, finish, readStdin, readStdinStream, writeAll, type Output } from '../../src/credential-provider/stdio.js';

const MiB = 1 << 20;
let dir: string;
const fds: number[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'acr-cp-stdio-'));
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  for (const fd of fds.splice(0)) {
    try {
      closeSync(fd);
    } catch {
      // already closed by the test
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function open(path: string, flags: number): number {
  const fd = openSync(path, flags);
  fds.push(fd);
  return fd;
}

/**
 * A named pipe with a writer, as the kubelet's stdin pipe is: `holder` is a reader that keeps the pipe open (a
 * writer cannot open it without one) and never reads.
 */
function fifo(): { path: string; holder: number; writer: number } {
  const path = join(dir, 'stdin');
  execFileSync('mkfifo', [path]);
  const holder = open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = open(path, constants.O_WRONLY | constants.O_NONBLOCK);
  return { path, holder, writer };
}

/** Settles into a readable state: 'pending', or what the promise gave. */
function watch(p: Promise<string>): { state: () => string } {
  let state = 'pending';
  p.then(
    (v) => (state = `resolved ${v.length}`),
    (e: Error) => (state = `rejected ${e.message}`),
  );
  return { state: () => state };
}

describe('readStdin (the non-blocking path)', () => {
  it('reads a file to its end, in 64 KiB reads, as UTF-8', async () => {
    const file = join(dir, 'req');
    // A two-byte character across the 64 KiB boundary: decoded once, at the end.
    const text = `${'a'.repeat((64 << 10) - 1)}é${'b'.repeat(100_000)}`;
    writeFileSync(file, text);
    expect(await readStdin(file)).toBe(text);
    writeFileSync(file, '');
    expect(await readStdin(file)).toBe('');
  });

  it('takes exactly 1 MiB, and refuses one byte more', async () => {
    const file = join(dir, 'req');
    writeFileSync(file, Buffer.alloc(MiB, 0x20));
    expect((await readStdin(file)).length).toBe(MiB);
    writeFileSync(file, Buffer.alloc(MiB + 1, 0x20));
    await expect(readStdin(file)).rejects.toThrow(new Error('the request on stdin exceeds 1048576 bytes'));
  });

  it('says what went wrong reading, other than nothing to read yet', async () => {
    mkdirSync(join(dir, 'd'));
    await expect(readStdin(join(dir, 'd'))).rejects.toThrow(new Error('cannot read stdin: EISDIR'));
  });

  it('closes the fd it opened, however the read ends', async () => {
    const open = () => readdirSync('/proc/self/fd').sort();
    const file = join(dir, 'req');
    mkdirSync(join(dir, 'd'));
    const before = open();
    for (let i = 0; i < 5; i++) {
      writeFileSync(file, '{}');
      expect(await readStdin(file)).toBe('{}');
      writeFileSync(file, Buffer.alloc(MiB + 1, 0x20));
      await expect(readStdin(file)).rejects.toThrow(new Error('the request on stdin exceeds 1048576 bytes'));
      await expect(readStdin(join(dir, 'd'))).rejects.toThrow(new Error('cannot read stdin: EISDIR'));
    }
    expect(open()).toEqual(before);
  });

  it('waits on a pipe for a request that arrives in pieces, until the writer closes it', async () => {
    const p = fifo();
    const reading = readStdin(p.path);
    closeSync(p.holder);
    setTimeout(() => writeSync(p.writer, '{"kind":'), 30);
    setTimeout(() => {
      writeSync(p.writer, '"CredentialProviderRequest"}');
      closeSync(p.writer);
    }, 80);
    expect(await reading).toBe('{"kind":"CredentialProviderRequest"}');
  });

  it('looks again after 1, 2, 4, 8, 16 ms, then every 32 ms', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const p = fifo();
    const r = watch(readStdin(p.path));
    closeSync(p.holder);
    // Reads at 0, 1, 3, 7, 15, 31, 63, 95, ...: the writer closes at 64, so the end is seen at 95.
    await vi.advanceTimersByTimeAsync(64);
    writeSync(p.writer, 'x');
    closeSync(p.writer);
    await vi.advanceTimersByTimeAsync(30);
    expect(r.state()).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(r.state()).toBe('resolved 1');
  });

  it('gives up on a pipe that is never closed after 10 s', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const p = fifo();
    const fds = readdirSync('/proc/self/fd').sort();
    const r = watch(readStdin(p.path));
    writeSync(p.writer, '{"apiVersion":');
    await vi.advanceTimersByTimeAsync(9_999);
    expect(r.state()).toBe('pending');
    // The first look at or after the deadline (reads every 32 ms: at 10,015).
    await vi.advanceTimersByTimeAsync(16);
    expect(r.state()).toBe('rejected no complete request on stdin within 10 s');
    expect(readdirSync('/proc/self/fd').sort()).toEqual(fds);
  });

  it('gives up at the first look that falls exactly on the 10 s deadline', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const p = fifo();
    const start = Date.now();
    const r = watch(readStdin(p.path));
    // The clock jumps to 1 ms before the deadline; the next look (1 ms after the first) is then at 10,000 ms exactly.
    vi.setSystemTime(start + 9_999);
    await vi.advanceTimersByTimeAsync(0);
    expect(r.state()).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(Date.now()).toBe(start + 10_000);
    expect(r.state()).toBe('rejected no complete request on stdin within 10 s');
  });

  it('reads the stream instead when the path cannot be opened (a socket as stdin)', async () => {
    const stream = new PassThrough();
    const reading = readStdin(join(dir, 'missing'), stream);
    stream.end('{"kind":"CredentialProviderRequest"}');
    expect(await reading).toBe('{"kind":"CredentialProviderRequest"}');
  });
});

describe('readStdinStream', () => {
  it('collects the pieces up to the end', async () => {
    const stream = new PassThrough();
    const reading = readStdinStream(stream);
    stream.write('{"kind":');
    stream.write(Buffer.from([0xc3]));
    stream.end(Buffer.from([0xa9, 0x7d]));
    expect(await reading).toBe('{"kind":é}');
  });

  it('takes exactly 1 MiB; one byte more is refused and the stream destroyed', async () => {
    const exact = new PassThrough();
    const ok = readStdinStream(exact);
    exact.write(Buffer.alloc(MiB - 1, 0x20));
    exact.end(Buffer.alloc(1, 0x20));
    expect((await ok).length).toBe(MiB);
    const over = new PassThrough();
    const refused = readStdinStream(over);
    over.write(Buffer.alloc(MiB, 0x20));
    over.write(Buffer.alloc(1, 0x20));
    await expect(refused).rejects.toThrow(new Error('the request on stdin exceeds 1048576 bytes'));
    expect(over.destroyed).toBe(true);
  });

  it('passes a stream error on', async () => {
    const stream = new PassThrough();
    const reading = readStdinStream(stream);
    const broken = new Error('ECONNRESET');
    stream.destroy(broken);
    await expect(reading).rejects.toBe(broken);
  });

  it('does not keep the process alive with its timer', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const stream = new PassThrough();
    const reading = readStdinStream(stream);
    expect(timers()).toBe(before);
    stream.end('{}');
    expect(await reading).toBe('{}');
  });

  it('gives up after 10 s without an end, and leaves no timer behind once the stream ends', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const open = new PassThrough();
    const r = watch(readStdinStream(open));
    open.write('{"apiVersion":');
    await vi.advanceTimersByTimeAsync(9_999);
    expect(r.state()).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(r.state()).toBe('rejected no complete request on stdin within 10 s');
    for (const end of [(s: PassThrough) => s.end('{}'), (s: PassThrough) => s.destroy(new Error('x')), (s: PassThrough) => s.end(Buffer.alloc(MiB + 1))]) {
      const s = new PassThrough();
      const done = readStdinStream(s).catch(() => '');
      end(s);
      await done;
      expect(vi.getTimerCount()).toBe(0);
    }
  });
});

describe('writeAll', () => {
  it('writes all of the text to a file', () => {
    const file = join(dir, 'out');
    const fd = open(file, constants.O_WRONLY | constants.O_CREAT);
    const text = `${'x'.repeat(200_000)}é\n`;
    writeAll(fd, text);
    expect(readFileSync(file, 'utf8')).toBe(text);
  });

  it('waits while a full non-blocking pipe is read by another process, and writes all of the text', async () => {
    const p = fifo();
    const out = join(dir, 'out');
    const cat = spawn('sh', ['-c', 'exec cat "$0" > "$1"', p.path, out], { stdio: 'ignore' });
    const exited = new Promise((r) => cat.on('close', r));
    const text = 'y'.repeat(MiB);
    writeAll(p.writer, text);
    closeSync(p.writer);
    closeSync(p.holder);
    const timer = setTimeout(() => cat.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    expect(readFileSync(out, 'utf8')).toBe(text);
  });

  it('drops the text when the reader has gone (EPIPE), without waiting', () => {
    const p = fifo();
    closeSync(p.holder);
    const started = Date.now();
    expect(() => writeAll(p.writer, 'lost')).not.toThrow();
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('gives up after 5 s on a pipe nobody reads', () => {
    const p = fifo();
    const started = Date.now();
    writeAll(p.writer, 'z'.repeat(MiB));
    const ms = Date.now() - started;
    expect(ms).toBeGreaterThanOrEqual(5000);
    expect(ms).toBeLessThan(15_000);
    // What fitted in the pipe was written; the rest is lost.
    const buf = Buffer.alloc(MiB);
    let n = 0;
    try {
      for (let i = 0; i < 100; i++) n += readSync(p.holder, buf, n, buf.length - n, null);
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe('EAGAIN');
    }
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThan(MiB);
    expect(buf.subarray(0, n).toString()).toBe('z'.repeat(n));
  }, 20_000);
});

describe('what the entry prints', () => {
  function output(): Output & { written: Array<[number, string]>; codes: number[] } {
    const written: Array<[number, string]> = [];
    const codes: number[] = [];
    return { written, codes, write: (fd, text) => written.push([fd, text]), exit: (code) => codes.push(code) };
  }

  it('the answer on stdout with a newline, each stderr line with the plugin name, then the exit code', () => {
    const out = output();
    finish({ code: 0, stdout: '{"kind":"CredentialProviderResponse"}', stderr: ['first', 'second'] }, out);
    expect(out.written).toEqual([
      [1, '{"kind":"CredentialProviderResponse"}\n'],
      [2, 'acr-credential-provider: first\nacr-credential-provider: second\n'],
    ]);
    expect(out.codes).toEqual([0]);
  });

  it('nothing to write for an empty answer without messages; only the exit code', () => {
    const out = output();
    finish({ code: 2, stdout: '', stderr: [] }, out);
    expect(out.written).toEqual([]);
    expect(out.codes).toEqual([2]);
  });

  it('an internal error by its name only, exit 1', () => {
    for (const [e, line] of [
      [new RangeError('secret in here'), 'acr-credential-provider: internal error: RangeError\n'],
      [undefined, 'acr-credential-provider: internal error: Error\n'],
      [{}, 'acr-credential-provider: internal error: Error\n'],
    ] as const) {
      const out = output();
      crash(e, out);
      expect(out.written).toEqual([[2, line]]);
      expect(out.codes).toEqual([1]);
    }
  });

  it('exits the process with the code by default', () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    finish({ code: 1, stdout: '', stderr: [] });
    expect(exit.mock.calls).toEqual([[1]]);
  });
});
