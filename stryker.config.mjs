// Mutation testing (`npm run mutate`): Stryker mutates the TypeScript sources that vitest imports, so only
// in-process tests can kill a mutant; tests that spawn the compiled server (dist/) guard the build instead.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.stryker.config.ts', related: true },
  mutate: [
    'src/**/*.ts',
    // Declarations and type-only modules hold no behaviour.
    '!src/types/**',
    '!src/acr/model.ts',
    '!src/admission/json-patch.ts',
  ],
  // Keep the sandbox copies small: built binaries, work dirs and reports are not needed to run unit tests.
  // `.stryker-tmp-*`: the sandboxes of another run beside this one (`npm run mutate:parts -- kube -- --tempDirName
  // .stryker-tmp-kube`); timer-bound parts leave the cores idle enough to run two.
  ignorePatterns: ['test/e2e/.bin', 'test/e2e/.work', '.local', 'coverage', 'bench/results', 'reports', '.stryker-tmp*'],
  coverageAnalysis: 'perTest',
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  // Two cores, shared: two workers, and room for a slow machine before a mutant counts as a timeout.
  concurrency: 2,
  timeoutFactor: 3,
  timeoutMS: 15_000,
  dryRunTimeoutMinutes: 30,
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0, reportScoreTable: true, reportMutants: true },
  thresholds: { high: 90, low: 85, break: null },
  tempDirName: '.stryker-tmp',
};
