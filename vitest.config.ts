import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration and e2e tests start redis-servers and worker processes: keep the 2-core machine calm.
    fileParallelism: true,
    maxWorkers: 2,
    setupFiles: ['test/helpers/leak-check.ts'],
  },
});
