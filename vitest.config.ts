import { defineConfig } from 'vitest/config';

/**
 * Tests whose assertions are wall-clock timing across processes (a rate at the target, the spacing
 * of starts granted by the limiter in Redis): they run last, one file at a time, alone on the machine.
 */
const QUIET = [
  'test/e2e/limits.test.ts',
  // A strict 50/s target judges lanes and single jobs on one key; the crash run keeps 3 workers busy.
  'test/e2e/lanes.test.ts',
  // Six redis-servers, worker processes, a master killed mid-batch and a strict target.
  'test/e2e/cluster.test.ts',
  'test/integration/burst-one.test.ts',
  'test/integration/limiter.test.ts',
  'test/integration/ndjson-long-line.test.ts',
  // Measures this process's own event-loop lag: a CPU-busy runner (property tests) makes lag it did not cause.
  'test/unit/event-loop-lag.test.ts',
];

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
        // their way to the target, and a lagging event loop makes the limiter give slots back.
        // Run them after everything else, and not side by side either.
        test: { ...shared, name: 'quiet', include: QUIET, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
