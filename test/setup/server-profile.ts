import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { migrate } from '../../src/db/migrate.js';
import { TRANSFER_SEARCH_ATTRIBUTES } from '../../src/domain/search-attributes.js';
import { startEmbeddedPostgres } from '../../src/embedded/postgres.js';
import { signalChildrenOnExit } from '../../src/embedded/children.js';
import { ephemeralPort } from '../../src/embedded/ports.js';
import { resolveDevServer } from '../../src/temporal/binaries.js';
import { resolveServerBinaries } from '../../src/temporal/server-binaries.js';
import { historyShardsFromEnv, startTemporalServer } from '../../src/temporal/server-profile.js';
import { WORKFLOWS_PATH } from '../../src/worker.js';
import { TEMPLATE_DB } from './global.js';

const say = (line: string) => process.stderr.write(`[server-profile setup] ${line}\n`);

/**
 * Once per run of test/server-profile/: PostgreSQL (a migrated ledger template, and Temporal's own
 * databases), the Temporal server itself on it (schema by temporal-sql-tool, namespace and search
 * attributes registered through the operator API) with its Web UI server, and the workflow bundle.
 * It provides the same keys as the default setup, so the test helpers (createTestLedger,
 * connectDevServer, withTransferWorker) run unchanged against the real server.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  // No Runtime.install here: the default project's setup may run in this same process, and this
  // setup makes no native connection (the client's Connection is pure JS).
  const runDir = await mkdtemp(join(tmpdir(), 'transfer-server-profile-'));
  await chmod(runDir, 0o755); // PostgreSQL runs as an unprivileged user when tests run as root
  const binaries = await resolveServerBinaries({ progress: say });
  const cli = await resolveDevServer({ progress: say }); // the `temporal` CLI, for the CLI recipes

  const postgres = await startEmbeddedPostgres({ dir: join(runDir, 'postgres'), databases: [TEMPLATE_DB], ephemeral: true });
  signalChildrenOnExit((pid) => (pid === postgres.pid ? 'SIGINT' : 'SIGTERM'));
  const pool = new pg.Pool({ connectionString: postgres.url(TEMPLATE_DB), max: 1 });
  await migrate(pool);
  await pool.end();

  const url = new URL(postgres.url('postgres'));
  const logFile = join(runDir, 'temporal-server.log');
  const [server, bundle] = await Promise.all([
    startTemporalServer({
      binaries,
      dir: join(runDir, 'temporal-server'),
      postgres: { host: '127.0.0.1', port: postgres.port, user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) },
      port: await ephemeralPort(),
      uiPort: await ephemeralPort(),
      namespace: 'default',
      searchAttributes: TRANSFER_SEARCH_ATTRIBUTES,
      historyShards: historyShardsFromEnv(),
      logFile,
      uiLogFile: join(runDir, 'temporal-ui.log'),
      progress: say,
    }),
    bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') }),
  ]);
  const bundlePath = join(runDir, 'workflow-bundle.js');
  await writeFile(bundlePath, bundle.code);

  project.provide('pgUrl', postgres.url('postgres'));
  project.provide('templateDb', TEMPLATE_DB);
  project.provide('timeSkippingAddress', ''); // no time skipping here: real time only
  project.provide('devServerAddress', server.address);
  project.provide('devServerUi', server.webUi ?? '');
  project.provide('temporalCli', cli.path ?? '');
  project.provide('workflowBundle', bundlePath);
  project.provide('runDir', runDir);
  project.provide('temporalProfile', 'server');
  project.provide('temporalServerLog', logFile);
  say(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s: PostgreSQL :${postgres.port}, Temporal server ${server.address} (pid ${server.pid}, ${server.historyShards} history shards), Web UI ${server.webUi ?? 'none'}`);

  return async () => {
    await server.stop();
    await postgres.stop();
    await rm(runDir, { recursive: true, force: true });
  };
}
