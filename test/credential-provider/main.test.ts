// The plugin's entry (src/credential-provider/main.ts), loaded in-process with run() and the stdio functions
// replaced: it passes the arguments after the script, the environment and stdin to run(), then hands the result
// to finish() or a failure to crash(). What those do: run.test.ts and stdio.test.ts; the built binary: bin.test.ts.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RunIO, RunResult } from '../../src/credential-provider/run.js';

const fake = vi.hoisted(() => ({
  run: vi.fn<(io: RunIO) => Promise<RunResult>>(),
  readStdin: vi.fn<(path?: string) => Promise<string>>(),
  finish: vi.fn<(result: RunResult) => void>(),
  crash: vi.fn<(e: unknown) => void>(),
}));
vi.mock('../../src/credential-provider/run.js', () => ({ run: fake.run }));
vi.mock('../../src/credential-provider/stdio.js', () => ({ readStdin: fake.readStdin, finish: fake.finish, crash: fake.crash }));

const argv = process.argv;

beforeEach(() => {
  vi.resetModules();
  for (const f of Object.values(fake)) f.mockReset();
  process.argv = ['/usr/bin/node', '/opt/cni/bin/acr-credential-provider', '--config', '/etc/kubernetes/acr.json'];
});
afterEach(() => {
  process.argv = argv;
});

/** Loads the entry, which runs at once, and waits until it has handed on what run() gave. */
async function start(): Promise<void> {
  await import('../../src/credential-provider/main.js');
  await vi.waitFor(() => expect(fake.finish.mock.calls.length + fake.crash.mock.calls.length).toBe(1), { timeout: 5000, interval: 5 });
}

describe('the entry', () => {
  it('runs with the arguments after the script, the environment and stdin, and finishes with the result', async () => {
    const result: RunResult = { code: 0, stdout: '{"kind":"CredentialProviderResponse"}', stderr: [] };
    fake.run.mockResolvedValue(result);
    fake.readStdin.mockResolvedValue('{"kind":"CredentialProviderRequest"}');
    await start();
    expect(fake.run).toHaveBeenCalledTimes(1);
    const io = fake.run.mock.calls[0]![0];
    expect(io.argv).toEqual(['--config', '/etc/kubernetes/acr.json']);
    expect(io.env).toBe(process.env);
    expect(io.now).toBeUndefined();
    // stdin is read only when run() asks, from the default place (no path, no stream).
    expect(fake.readStdin).not.toHaveBeenCalled();
    expect(await io.readStdin()).toBe('{"kind":"CredentialProviderRequest"}');
    expect(fake.readStdin.mock.calls).toEqual([[]]);
    expect(fake.finish.mock.calls).toEqual([[result]]);
    expect(fake.crash).not.toHaveBeenCalled();
  });

  it('hands a failure of run() itself to crash()', async () => {
    const failure = new RangeError('never shown');
    fake.run.mockRejectedValue(failure);
    await start();
    expect(fake.crash.mock.calls).toEqual([[failure]]);
    expect(fake.finish).not.toHaveBeenCalled();
  });
});
