import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { temporal } from '@temporalio/proto';
import { migrate } from '../../src/db/migrate.js';
import { TRANSFER_SEARCH_ATTRIBUTES } from '../../src/domain/search-attributes.js';
import { startEmbeddedPostgres } from '../../src/embedded/postgres.js';
import { signalChildrenOnExit } from '../../src/embedded/children.js';
import { resolveDevServer, resolveTestServer } from '../../src/temporal/binaries.js';
import { startWithRetry } from '../../src/temporal/start-retry.js';
import { DEV_SERVER_TUNING } from '../../src/temporal/dev-server.js';
import { WORKFLOWS_PATH } from '../../src/worker.js';

export const TEMPLATE_DB = 'ledger_template';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
    templateDb: string;
    timeSkippingAddress: string;
    devServerAddress: string;
    devServerUi: string;
    temporalCli: string;
    workflowBundle: string;
    runDir: string;
    /** `server` in the server-profile project: `devServerAddress` is then the Temporal server's frontend. */
    temporalProfile: 'dev' | 'server';
    /** The server profile's log file (server-profile project only). */
    temporalServerLog: string;
  }
}

const say = (line: string) => process.stderr.write(`[setup] ${line}\n`);

/**
 * Once per run: real PostgreSQL (a migrated template database that each test file clones), the
 * Java time-skipping test server, the Temporal dev server with our search attributes, and the
 * workflow bundle. Test files get their addresses through `inject`.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const runDir = await mkdtemp(join(tmpdir(), 'transfer-test-'));
  await chmod(runDir, 0o755); // PostgreSQL runs as an unprivileged user when tests run as root
  const [testServer, devServer] = [await resolveTestServer({ progress: say }), await resolveDevServer({ progress: say })];

  const postgres = await startEmbeddedPostgres({ dir: join(runDir, 'postgres'), databases: [TEMPLATE_DB], ephemeral: true });
  // vitest exits within a millisecond on SIGINT/SIGTERM, skipping the teardown below: the servers
  // are then stopped by their pids as the process exits (PostgreSQL with a fast shutdown).
  signalChildrenOnExit((pid) => (pid === postgres.pid ? 'SIGINT' : 'SIGTERM'));
  const pool = new pg.Pool({ connectionString: postgres.url(TEMPLATE_DB), max: 1 });
  await migrate(pool);
  await pool.end();

  const [timeSkipping, dev, bundle] = await Promise.all([
    startWithRetry('time-skipping test server', () => TestWorkflowEnvironment.createTimeSkipping({ server: { executable: testServer.executable } }), 4, say),
    startWithRetry('dev server', () =>
      TestWorkflowEnvironment.createLocal({
        server: { executable: devServer.executable, ip: '127.0.0.1', ui: true, searchAttributes: TRANSFER_SEARCH_ATTRIBUTES, log: { format: 'json', level: 'error' }, extraArgs: [...DEV_SERVER_TUNING] },
      }), 4, say),
    bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') }),
  ]);
  // The test server starts without our custom search attributes; register them like the dev server has them.
  await timeSkipping.connection.operatorService.addSearchAttributes({
    namespace: 'default',
    searchAttributes: Object.fromEntries(TRANSFER_SEARCH_ATTRIBUTES.map((k) => [k.name, k.type === 'INT' ? temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT : temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
  });
  const bundlePath = join(runDir, 'workflow-bundle.js');
  await writeFile(bundlePath, bundle.code);
  const devAddress = dev.address;
  const uiPort = Number(devAddress.split(':').pop()) + 1000;

  project.provide('pgUrl', postgres.url('postgres'));
  project.provide('templateDb', TEMPLATE_DB);
  project.provide('timeSkippingAddress', timeSkipping.address);
  project.provide('devServerAddress', devAddress);
  project.provide('devServerUi', `http://127.0.0.1:${uiPort}`);
  project.provide('temporalCli', devServer.path ?? '');
  project.provide('workflowBundle', bundlePath);
  project.provide('runDir', runDir);
  project.provide('temporalProfile', 'dev');
  say(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s: PostgreSQL :${postgres.port}, test server ${timeSkipping.address}, dev server ${devAddress} (UI :${uiPort})`);

  return async () => {
    await Promise.allSettled([timeSkipping.teardown(), dev.teardown()]);
    await postgres.stop();
    await rm(runDir, { recursive: true, force: true });
  };
}
