// The installed command (src/bin.ts) hands main the arguments after node and the script, and sets the exit code.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const argv = process.argv;
beforeEach(() => {
  vi.resetModules();
});
afterEach(() => {
  process.argv = argv;
  process.exitCode = undefined;
  vi.doUnmock('../src/cli.js');
});

describe('bin', () => {
  it('calls main with the user arguments and sets process.exitCode to its result', async () => {
    const main = vi.fn(() => 3);
    vi.doMock('../src/cli.js', () => ({ main }));
    process.argv = ['/usr/bin/node', '/usr/bin/acr-pull-webhook', 'review', '--file', 'x.json'];
    await import('../src/bin.js');
    expect(main.mock.calls).toEqual([[['review', '--file', 'x.json']]]);
    expect(process.exitCode).toBe(3);
  });
});
