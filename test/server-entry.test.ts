// The server's entry (src/server-entry.ts, run by src/main.ts), in-process with the process and the two steps of
// serving replaced: --help and --version answer on stdout/stderr with the exit code, no arguments start the server
// and install the signal handlers, a failed start-up is reported on stderr with exit 1. The compiled entry:
// test/smoke/command-line.test.ts.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { processIO, runMain, type EntryIO } from '../src/server-entry.js';
import { startServer, USAGE, type RunningServer } from '../src/server-main.js';
import { exitOnSignals, type ShutdownOptions } from '../src/shutdown.js';
import { packageVersion } from '../src/version.js';

/** An EntryIO that records: what was written, the exit code set, exit() called, and the two steps. */
function recordingIO(server?: RunningServer | Error) {
  const out: string[] = [];
  const err: string[] = [];
  const io = {
    stdout: { write: vi.fn((text: string) => out.push(text)) },
    stderr: { write: vi.fn((text: string) => err.push(text)) },
    setExitCode: vi.fn<(code: number) => void>(),
    exit: vi.fn<(code: number) => void>(),
    startServer: vi.fn(async (_env: NodeJS.ProcessEnv) => {
      if (server instanceof Error) throw server;
      if (!server) throw new Error('no server in this test');
      return server;
    }),
    exitOnSignals: vi.fn<(opts: ShutdownOptions) => void>(),
  } satisfies EntryIO;
  return { io, out, err };
}

/** A stand-in for a started server: only identities matter here. */
function fakeServer(): RunningServer {
  const log = { info() {}, error() {} };
  return {
    mode: 'standalone',
    app: { log } as unknown as FastifyInstance,
    closer: { closing: false } as unknown as RunningServer['closer'],
    port: 8443,
    metricsPort: 9090,
    stopRest: async () => undefined,
    close: async () => undefined,
  };
}

const argv = process.argv;
afterEach(() => {
  process.argv = argv;
  process.exitCode = undefined;
  vi.restoreAllMocks();
});

describe('runMain: the command line', () => {
  it.each(['--version', '-v'])('%s writes the version on stdout, sets exit code 0 and starts nothing', async (flag) => {
    const { io, out, err } = recordingIO();
    await runMain([flag], {}, io);
    expect(out).toEqual([`${packageVersion()}\n`]);
    expect(packageVersion()).toMatch(/^\d+\.\d+\.\d+/);
    expect(err).toEqual([]);
    expect(io.setExitCode.mock.calls).toEqual([[0]]);
    expect(io.exit).not.toHaveBeenCalled();
    expect(io.startServer).not.toHaveBeenCalled();
    expect(io.exitOnSignals).not.toHaveBeenCalled();
  });

  it.each(['--help', '-h'])('%s writes the usage on stdout and sets exit code 0', async (flag) => {
    const { io, out, err } = recordingIO();
    await runMain([flag], {}, io);
    expect(out).toEqual([USAGE]);
    expect(out[0]).toMatch(/^Usage: acr-pull-webhook server/);
    expect(err).toEqual([]);
    expect(io.setExitCode.mock.calls).toEqual([[0]]);
    expect(io.startServer).not.toHaveBeenCalled();
  });

  it('refuses an unknown argument on stderr with the usage and exit code 2, writing nothing on stdout', async () => {
    const { io, out, err } = recordingIO();
    await runMain(['--port=8443'], { PORT: '8443' }, io);
    expect(out).toEqual([]);
    expect(err).toEqual([`acr-pull-webhook: unknown argument "--port=8443"\n${USAGE}`]);
    expect(io.setExitCode.mock.calls).toEqual([[2]]);
    expect(io.exit).not.toHaveBeenCalled();
    expect(io.startServer).not.toHaveBeenCalled();
  });
});

describe('runMain: serving', () => {
  it('without arguments starts the server with the environment and hands app, closer, log and stopRest to exitOnSignals', async () => {
    const server = fakeServer();
    const { io, out, err } = recordingIO(server);
    const env = { PORT: '8443', ACR_PULL_WEBHOOK_MODE: 'standalone' };
    await runMain([], env, io);
    expect(io.startServer.mock.calls).toHaveLength(1);
    expect(io.startServer.mock.calls[0]![0]).toBe(env);
    expect(io.exitOnSignals.mock.calls).toHaveLength(1);
    const opts = io.exitOnSignals.mock.calls[0]![0];
    expect(Object.keys(opts).sort()).toEqual(['app', 'closer', 'log', 'stopRest']);
    expect(opts.app).toBe(server.app);
    expect(opts.closer).toBe(server.closer);
    expect(opts.log).toBe(server.app.log);
    expect(opts.stopRest).toBe(server.stopRest);
    expect(out).toEqual([]);
    expect(err).toEqual([]);
    expect(io.setExitCode).not.toHaveBeenCalled();
    expect(io.exit).not.toHaveBeenCalled();
  });

  it('a failed start-up writes startupFailure’s line on stderr and exits 1, without signal handlers', async () => {
    const { io, out, err } = recordingIO(new Error('PORT must be a port number, got "x"'));
    await runMain([], {}, io);
    expect(err).toEqual(['acr-pull-webhook: cannot start: PORT must be a port number, got "x"\n']);
    expect(out).toEqual([]);
    expect(io.exit.mock.calls).toEqual([[1]]);
    expect(io.exitOnSignals).not.toHaveBeenCalled();
    expect(io.setExitCode).not.toHaveBeenCalled();
  });

  it('a failure installing the signal handlers is reported the same way', async () => {
    const { io, err } = recordingIO(fakeServer());
    io.exitOnSignals.mockImplementation(() => {
      throw new Error('no signals here');
    });
    await runMain([], {}, io);
    expect(err).toEqual(['acr-pull-webhook: cannot start: no signals here\n']);
    expect(io.exit.mock.calls).toEqual([[1]]);
  });
});

describe('runMain: the defaults', () => {
  it('reads the arguments after node and the script from process.argv', async () => {
    process.argv = ['/usr/bin/node', '/app/dist/src/main.js', '--version'];
    const { io, out } = recordingIO();
    await runMain(undefined, {}, io);
    expect(out).toEqual([`${packageVersion()}\n`]);
    expect(io.startServer).not.toHaveBeenCalled();
  });

  it('starts with process.env', async () => {
    const { io } = recordingIO(fakeServer());
    await runMain([], undefined, io);
    expect(io.startServer.mock.calls[0]![0]).toBe(process.env);
  });

  it('writes to the real stdout and sets process.exitCode', async () => {
    process.argv = ['/usr/bin/node', '/app/dist/src/main.js', '-v'];
    process.exitCode = undefined;
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    await runMain();
    expect(write.mock.calls).toEqual([[`${packageVersion()}\n`]]);
    expect(process.exitCode).toBe(0);
  });

  it('processIO: the real streams, exit code, exit, startServer and exitOnSignals', () => {
    const io = processIO();
    expect(io.stdout).toBe(process.stdout);
    expect(io.stderr).toBe(process.stderr);
    expect(io.startServer).toBe(startServer);
    expect(io.exitOnSignals).toBe(exitOnSignals);
    process.exitCode = undefined;
    io.setExitCode(2);
    expect(process.exitCode).toBe(2);
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    io.exit(1);
    expect(exit.mock.calls).toEqual([[1]]);
  });
});
