import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestWorkflowEnvironment, type EphemeralServerExecutable } from '@temporalio/testing';
import { NativeConnection } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import { TRANSFER_SEARCH_ATTRIBUTES } from '../domain/search-attributes.js';
import { evenSlotMap, formatSlotMap } from '../domain/slots.js';
import { resolveDevServer, type Progress } from '../temporal/binaries.js';
import { startWithRetry } from '../temporal/start-retry.js';
import { DEV_SERVER_TUNING, startDevServer } from '../temporal/dev-server.js';
import { readStackInfo, stackDir, stackFile, type StackInfo } from './stack-info.js';
import { freePort } from './ports.js';
import { startEmbeddedPostgres, type RunningPostgres } from './postgres.js';

export { readStackInfo, stackDir, stackFile, type StackInfo } from './stack-info.js';

/**
 * The embedded default: PostgreSQL with one database per shard, and the Temporal dev server with its
 * Web UI, all on 127.0.0.1. Where it listens is written to stack.json so commands run from a second
 * terminal find it with no configuration.
 */
export const SHARD_COUNT = 2;
export const shardDatabase = (shard: number) => `ledger_shard_${shard}`;
/** The example producer service's own database (the inbound transfer request table lives there). */
export const WALLET_SERVICE_DATABASE = 'wallet_service';

/** Databases next to the shards: the webhook dispatcher's, and the reference receiver's. */
export const MESSAGES_DATABASE = 'transfer_messages';
export const FUND_ACCOUNT_DATABASE = 'fund_account';

export interface EmbeddedStack {
  info: StackInfo;
  /** The embedded PostgreSQL, or undefined when the ledger lives on external servers. */
  postgres?: RunningPostgres;
  nativeConnection: NativeConnection;
  client: Client;
  stop(): Promise<void>;
}

export async function resetStack(): Promise<void> {
  if (await readStackInfo()) throw new Error('the embedded stack is running; stop it (Ctrl-C) before resetting');
  await rm(stackDir(), { recursive: true, force: true });
}

export async function startEmbeddedStack(options: {
  progress: Progress;
  taskQueue: string;
  temporalPort?: number;
  uiPort?: number;
  /** LEDGER_SHARD_URLS / DATABASE_URL: use these databases instead of starting PostgreSQL. */
  external?: { shardUrls: string[]; slotMap: string };
  /**
   * Runs right before the first Temporal connection, once everything else started: the place to
   * install the Temporal runtime. Installed earlier, a runtime with no connection yet keeps the
   * process alive (and takes over SIGINT/SIGTERM), so a start that failed would never exit.
   */
  beforeConnect?: () => void;
}): Promise<EmbeddedStack> {
  const { progress } = options;
  const running = await readStackInfo();
  if (running && running.pid !== process.pid) {
    throw new Error(`an embedded stack is already running (pid ${running.pid}, Web UI ${running.webUi})`);
  }
  const dir = stackDir();
  await mkdir(dir, { recursive: true });
  const server = await resolveDevServer({ progress });
  progress(`Temporal dev server: ${server.path ?? 'SDK download'} (${server.source})`);

  const databases = Array.from({ length: SHARD_COUNT }, (_, i) => shardDatabase(i));
  let postgres: RunningPostgres | undefined;
  if (options.external) {
    progress(`ledger on external PostgreSQL (${options.external.shardUrls.length} shard(s))`);
  } else {
    progress('starting PostgreSQL (embedded)…');
    postgres = await startEmbeddedPostgres({ dir: join(dir, 'postgres'), databases: [...databases, WALLET_SERVICE_DATABASE, MESSAGES_DATABASE, FUND_ACCOUNT_DATABASE], log: (l) => progress(`  ${l}`) });
  }
  const taken = postgres ? [postgres.port] : [];
  let temporal: TemporalHandle | undefined;
  try {
    const port = await freePort(options.temporalPort ?? 7233, taken);
    const uiPort = await freePort(options.uiPort ?? 8233, [...taken, port]);
    progress(`starting Temporal dev server on 127.0.0.1:${port} with Web UI on ${uiPort}…`);
    temporal = await startTemporal(server.executable, { port, uiPort, dbFilename: join(dir, 'temporal.sqlite'), logFile: join(dir, 'temporal.log'), progress, beforeConnect: options.beforeConnect });
    const info: StackInfo = {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      temporalAddress: `127.0.0.1:${port}`,
      namespace: 'default',
      taskQueue: options.taskQueue,
      webUi: `http://127.0.0.1:${uiPort}`,
      shardUrls: options.external?.shardUrls ?? databases.map((db) => postgres!.url(db)),
      slotMap: options.external?.slotMap ?? formatSlotMap(evenSlotMap(SHARD_COUNT)),
      ...(postgres ? { producerUrl: postgres.url(WALLET_SERVICE_DATABASE) } : process.env.MESSAGES_PRODUCER_URL ? { producerUrl: process.env.MESSAGES_PRODUCER_URL } : {}),
      ...(postgres ? { messagesUrl: postgres.url(MESSAGES_DATABASE), fundAccountUrl: postgres.url(FUND_ACCOUNT_DATABASE) } : {}),
    };
    await writeFile(stackFile(), JSON.stringify(info, null, 2), { mode: 0o600 });
    const started = temporal;
    return {
      info,
      postgres,
      nativeConnection: started.nativeConnection,
      client: started.client,
      async stop() {
        await rm(stackFile(), { force: true });
        await started.stop();
        await postgres?.stop();
      },
    };
  } catch (error) {
    await temporal?.stop().catch(() => undefined);
    await postgres?.stop();
    throw error;
  }
}

interface TemporalHandle {
  nativeConnection: NativeConnection;
  client: Client;
  stop(): Promise<void>;
}

/**
 * A binary we have a path to runs as our own child (output to temporal.log, stopped by pid); the
 * SDK's download route runs through the SDK's ephemeral-server support.
 */
async function startTemporal(
  executable: EphemeralServerExecutable,
  o: { port: number; uiPort: number; dbFilename: string; logFile: string; progress: Progress; beforeConnect?: (() => void) | undefined },
): Promise<TemporalHandle> {
  if (executable.type === 'existing-path') {
    const server = await startDevServer({ path: executable.path, ip: '127.0.0.1', port: o.port, uiPort: o.uiPort, dbFilename: o.dbFilename, namespace: 'default', searchAttributes: TRANSFER_SEARCH_ATTRIBUTES, logFile: o.logFile });
    try {
      o.beforeConnect?.();
      const nativeConnection = await NativeConnection.connect({ address: server.address });
      // A client of its own (not on the worker's native connection): its long polls, such as the
      // demo's wait for a result, must stop on Ctrl-C through withAbortSignal.
      const connection = await Connection.connect({ address: server.address });
      return {
        nativeConnection,
        client: new Client({ connection, namespace: 'default' }),
        async stop() {
          await connection.close().catch(() => undefined);
          await nativeConnection.close().catch(() => undefined);
          await server.stop();
        },
      };
    } catch (error) {
      await server.stop();
      throw error;
    }
  }
  o.beforeConnect?.(); // the SDK's ephemeral server is itself a native object of the runtime
  const env = await startWithRetry('Temporal dev server', () => TestWorkflowEnvironment.createLocal({
    server: {
      executable, ip: '127.0.0.1', port: o.port, ui: true, uiPort: o.uiPort, namespace: 'default',
      dbFilename: o.dbFilename, searchAttributes: TRANSFER_SEARCH_ATTRIBUTES, log: { format: 'json', level: 'warn' },
      extraArgs: [...DEV_SERVER_TUNING],
    },
  }), 4, o.progress);
  return { nativeConnection: env.nativeConnection, client: env.client, stop: () => env.teardown() };
}
