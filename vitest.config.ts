import { defineConfig } from 'vitest/config';

/**
 * Two projects, each with its own global setup; vitest runs a project's global setup only when one of
 * its files is in the run, so `npx vitest run test/e2e/up.test.ts` does not start the server profile.
 * - default: PostgreSQL, the time-skipping test server and the Temporal CLI's dev server;
 * - server-profile (test/server-profile/): the Temporal server itself on PostgreSQL with its Web UI,
 *   the saga scenarios run against it to catch what differs from the dev server.
 */
export default defineConfig({
  test: {
    // The Temporal SDK's native parts misbehave in worker threads: one forked process per file.
    pool: 'forks',
    maxWorkers: 2,
    setupFiles: ['./test/setup/runtime.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    reporters: ['default', './test/setup/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'default',
          include: ['test/**/*.test.ts'],
          exclude: ['test/server-profile/**', '**/node_modules/**'],
          // Starts PostgreSQL, the time-skipping test server and the dev server once per run.
          globalSetup: ['./test/setup/global.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'server-profile',
          include: ['test/server-profile/**/*.test.ts'],
          // Starts PostgreSQL and the Temporal server profile (server + Web UI) once per run.
          globalSetup: ['./test/setup/server-profile.ts'],
          // The server profile's first start registers the namespace; a cold server is slower.
          hookTimeout: 240_000,
          testTimeout: 120_000,
        },
      },
    ],
  },
});
