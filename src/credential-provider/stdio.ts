// The plugin's standard input and output, read and written with fs on fds 0, 1 and 2: process.stdin/stdout/stderr
// would load Node's stream machinery, several milliseconds of every pull's start. main.ts, the entry, only wires
// these to run(); they live here so that tests can call them in-process (on a pipe, a file or a stream).
import { closeSync, constants, openSync, readSync, writeSync } from 'node:fs';
import type { RunResult } from './run.js';

type Readable = NodeJS.ReadableStream & { destroy(): void };

const LIMIT = 1 << 20;
const STDIN_TIMEOUT_MS = 10_000;
/** A stdin with nothing to read yet is looked at again after 1 ms, then less and less often (at most every 32 ms). */
const POLL_MAX_MS = 32;

/**
 * The request: all of stdin up to its end. The kubelet writes it to a pipe and closes it; a writer that never
 * closes must not hang the pull, so reads never block: stdin's pipe (or file) is opened again, non-blocking, through
 * /proc/self/fd/0, and polled until its end or the timeout. (A blocking read in flight would keep the process from
 * exiting.) Where that cannot be opened (a socket, as Node's child_process gives; no /proc), process.stdin reads it.
 * `path` and `stream`: what to read instead, in tests. (process.stdin is only touched in that fallback: reading it
 * loads the stream machinery.)
 */
export function readStdin(path = '/proc/self/fd/0', stream?: Readable): Promise<string> {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return readStdinStream(stream ?? process.stdin);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const deadline = Date.now() + STDIN_TIMEOUT_MS;
    // The fd opened above is this reader's own: closed once it is done, however it ends (a test or an embedding
    // reads again in the same process).
    const settle = (finish: () => void) => {
      closeSync(fd);
      finish();
    };
    let wait = 1;
    const poll = () => {
      try {
        for (;;) {
          const buf = Buffer.allocUnsafe(64 << 10);
          let n: number;
          try {
            n = readSync(fd, buf, 0, buf.length, null);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw new Error(`cannot read stdin: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
            if (Date.now() >= deadline) throw new Error('no complete request on stdin within 10 s');
            setTimeout(poll, wait);
            wait = Math.min(POLL_MAX_MS, wait * 2);
            return;
          }
          if (n === 0) return settle(() => resolve(Buffer.concat(chunks, size).toString('utf8')));
          size += n;
          if (size > LIMIT) throw new Error(`the request on stdin exceeds ${LIMIT} bytes`);
          chunks.push(buf.subarray(0, n));
        }
      } catch (e) {
        settle(() => reject(e as Error));
      }
    };
    poll();
  });
}

/** Stdin through a stream (process.stdin, or what a test gives), with the same limit and timeout. */
export function readStdinStream(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => reject(new Error('no complete request on stdin within 10 s')), STDIN_TIMEOUT_MS);
    timer.unref();
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size > LIMIT) {
        clearTimeout(timer);
        reject(new Error(`the request on stdin exceeds ${LIMIT} bytes`));
        stream.destroy();
        return;
      }
      chunks.push(c);
    });
    stream.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    stream.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Writes all of `text` to a pipe or file; a reader that has gone away (EPIPE) loses it, nothing else does. */
export function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text, 'utf8');
  let offset = 0;
  for (let waits = 0; offset < buf.length; ) {
    try {
      offset += writeSync(fd, buf, offset);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // A non-blocking pipe that is full: wait 1 ms for the reader, at most 5 s.
      if (code !== 'EAGAIN' || ++waits > 5000) return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

export interface Output {
  write(fd: number, text: string): void;
  exit(code: number): void;
}

/**
 * The real process's output: fds 1 and 2, and process.exit. (Made per call, not a module constant, so that a
 * mutation test can change it per test run.)
 */
function processOutput(): Output {
  return { write: writeAll, exit: (code) => process.exit(code) };
}

/** The answer on fd 1 (with a newline), each stderr line on fd 2 with the plugin's name, then exit with its code. */
export function finish(result: RunResult, out: Output = processOutput()): void {
  if (result.stdout) out.write(1, `${result.stdout}\n`);
  if (result.stderr.length > 0) out.write(2, result.stderr.map((line) => `acr-credential-provider: ${line}\n`).join(''));
  // Exit now rather than wait for idle sockets or the stdin timer.
  out.exit(result.code);
}

/** run() itself failed: its name only (a message might hold a secret), exit 1. */
export function crash(e: unknown, out: Output = processOutput()): void {
  out.write(2, `acr-credential-provider: internal error: ${(e as Error)?.name ?? 'Error'}\n`);
  out.exit(1);
}
