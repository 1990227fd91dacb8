import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The Temporal SDK's native parts misbehave in worker threads: one forked process per file.
    pool: 'forks',
    maxWorkers: 2,
    // Starts PostgreSQL, the time-skipping test server and the dev server once per run.
    globalSetup: ['./test/setup/global.ts'],
    setupFiles: ['./test/setup/runtime.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    reporters: ['default', './test/setup/summary-reporter.ts'],
  },
});
