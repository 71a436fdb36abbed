import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The real-API-server tests run in the end-to-end suite, after the control plane is built.
    exclude: ['test/e2e/**', 'test/manifests/apiserver.test.ts', 'node_modules/**'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
