// The server's entry file (src/main.ts, `node dist/src/main.js`): loading it runs runMain with the real process.
// What runMain does: server-entry.test.ts; the compiled entry: test/smoke/command-line.test.ts.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

beforeEach(() => {
  vi.resetModules();
});
afterEach(() => {
  vi.doUnmock('../src/server-entry.js');
});

describe('main', () => {
  it('runs runMain once, with its defaults (process.argv, process.env, the real process)', async () => {
    const runMain = vi.fn(async () => undefined);
    vi.doMock('../src/server-entry.js', () => ({ runMain }));
    await import('../src/main.js');
    expect(runMain.mock.calls).toEqual([[]]);
  });
});
