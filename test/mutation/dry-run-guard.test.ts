// The guard in vitest.stryker.config.ts, run by a real vitest the way Stryker's vitest runner drives it (bail 1, one
// worker, `mode` provided): a test file that fails in Stryker's dry run is an error naming the file, not a silently
// shorter run; mutant runs and `npm test` are left alone.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createVitest } from 'vitest/node';
import { StrykerDryRunGuard } from '../support/stryker-dry-run-guard.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/stryker-dry-run');

/** Runs the probe files matching `include` under the guard; the error the run ended with, if any. */
async function run(include: string[], mode: string | undefined): Promise<Error | undefined> {
  const vitest = await createVitest(
    'test',
    { config: false, root: FIXTURES, include, watch: false, bail: 1, maxWorkers: 1, reporters: [new StrykerDryRunGuard()] },
    { server: { watch: null } },
  );
  if (mode !== undefined) vitest.provide('mode' as never, mode as never);
  try {
    await vitest.start();
    return undefined;
  } catch (err) {
    return err as Error;
  } finally {
    await vitest.close();
  }
}

describe("Stryker's dry run guard", () => {
  it('a file that fails to load ends the dry run with an error naming it and its error', async () => {
    const err = await run(['*.probe.ts'], 'dry-run');
    expect(err?.message).toContain("Stryker's dry run is incomplete: broken-load.probe.ts (the sandbox lacks what this file needs)");
    expect(err?.message).toContain('count as NoCoverage');
  }, 60_000);

  it('a dry run where every file passes, a mutant run with the same failure, and a run outside Stryker end normally', async () => {
    expect(await run(['fine.probe.ts'], 'dry-run')).toBeUndefined();
    expect(await run(['*.probe.ts'], 'mutant')).toBeUndefined();
    expect(await run(['*.probe.ts'], undefined)).toBeUndefined();
  }, 60_000);
});
