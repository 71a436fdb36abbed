import { defineConfig } from 'vitest/config';

// The end-to-end suite: one real control plane, tests in order, generous timeouts.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts', 'test/manifests/apiserver.test.ts'],
    fileParallelism: false,
    sequence: { concurrent: false },
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
});
