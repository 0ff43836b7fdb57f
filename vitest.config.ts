import { defineConfig } from 'vitest/config';

/** Tests that measure timing across worker processes: they run last, alone on the machine. */
const QUIET = ['test/e2e/limits.test.ts'];

const shared = {
  testTimeout: 30_000,
  hookTimeout: 30_000,
  setupFiles: ['test/helpers/leak-check.ts'],
};

export default defineConfig({
  test: {
    // Integration and e2e tests start redis-servers and worker processes: keep the 2-core machine calm.
    maxWorkers: 2,
    projects: [
      {
        test: { ...shared, name: 'main', include: ['test/**/*.test.ts'], exclude: QUIET, sequence: { groupOrder: 0 } },
      },
      {
        // The rate-limit accuracy checks need CPU headroom: a starved machine delays requests on
        // their way to the target, which no limiter can see. Run them after everything else.
        test: { ...shared, name: 'quiet', include: QUIET, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
