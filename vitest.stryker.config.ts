import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';
import { FastFirstSequencer } from './test/support/fast-first-sequencer.js';
import { StrykerDryRunGuard } from './test/support/stryker-dry-run-guard.js';

// The suite as Stryker runs it: in-process tests only. Tests that read the source text (the RBAC scan) would see
// Stryker's instrumented copy, and tests of the compiled server, the packaged files and the manifests exercise no
// mutant (Stryker mutates src/ as vitest imports it); they stay in `npm test`.
export default mergeConfig(
  base,
  defineConfig({
    test: {
      sequence: { sequencer: FastFirstSequencer },
      // A test file failing in the sandbox would otherwise end the dry run silently (see the guard's header).
      reporters: ['default', new StrykerDryRunGuard()],
      // The dry run shares two cores with other runs and helpers: a test that takes 2 s alone can pass 20 s there,
      // and one timeout in the dry run ends the whole run. Mutant runs use Stryker's own timeout (timeoutMS).
      testTimeout: 60_000,
      hookTimeout: 60_000,
      exclude: [
        'test/manifests/**',
        'test/chart/**',
        'test/package/**',
        'test/release/**',
        'test/smoke/**',
        'test/cli/review-command.test.ts',
        'test/tools/**',
        'test/scripts/**',
        'test/credential-provider/bin.test.ts',
        'test/credential-provider/manifests.test.ts',
        // Reads src/cloud's source text for the RAM actions it calls: Stryker's instrumented copy is not that text.
        'test/cloud/ram-actions.test.ts',
      ],
    },
  }),
);
