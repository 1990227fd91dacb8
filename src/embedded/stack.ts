import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestWorkflowEnvironment, type EphemeralServerExecutable } from '@temporalio/testing';
import { NativeConnection } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import { TRANSFER_SEARCH_ATTRIBUTES } from '../domain/search-attributes.js';
import { evenSlotMap, formatSlotMap } from '../domain/slots.js';
import { resolveDevServer, type Progress } from '../temporal/binaries.js';
import { connectWhenHealthy, startWithRetry } from '../temporal/start-retry.js';
import { DEV_SERVER_TUNING, startDevServer } from '../temporal/dev-server.js';
import { resolveServerBinaries, TEMPORAL_SERVER_VERSION, TEMPORAL_UI_SERVER_VERSION, type ServerBinaries } from '../temporal/server-binaries.js';
import { historyShardsFromEnv, startTemporalServer } from '../temporal/server-profile.js';
import { readStackInfo, stackDir, stackFile, type StackInfo } from './stack-file.js';
import { freePort } from './ports.js';
import { startEmbeddedPostgres, type RunningPostgres } from './postgres.js';


/**
 * The embedded default: PostgreSQL with one database per shard, and the Temporal dev server with its
 * Web UI, all on 127.0.0.1. Where it listens is written to stack.json so commands run from a second
 * terminal find it with no configuration.
 */
export const SHARD_COUNT = 2;
export const shardDatabase = (shard: number) => `ledger_shard_${shard}`;
/** The example producer service's own database (the inbound transfer request table lives there). */
export const WALLET_SERVICE_DATABASE = 'wallet_service';

/** `dev`: the Temporal CLI's dev server (SQLite); `server`: the Temporal server on the embedded PostgreSQL. */
export type StackProfile = 'dev' | 'server';
export const STACK_PROFILES: readonly StackProfile[] = ['dev', 'server'];

export { readStackInfo, stackDir, stackFile, type StackInfo } from './stack-file.js';

/** Databases next to the shards: the webhook dispatcher's, and the reference receiver's. */
export const MESSAGES_DATABASE = 'transfer_messages';
export const FUND_ACCOUNT_DATABASE = 'fund_account';

export interface EmbeddedStack {
  info: StackInfo;
  /**
   * The embedded PostgreSQL, or undefined when the ledger lives on external servers (the server
   * profile always runs it: Temporal's own databases live there).
   */
  postgres?: RunningPostgres;
  /** The server profile's Temporal server and Web UI pids. */
  temporalPids?: number[];
  /** The server profile's one-line description for the ready block. */
  temporalDescription?: string;
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
  beforeConnect?: () => void | Promise<void>;
  profile?: StackProfile;
}): Promise<EmbeddedStack> {
  const { progress } = options;
  const profile = options.profile ?? 'dev';
  const running = await readStackInfo();
  if (running && running.pid !== process.pid) {
    throw new Error(`an embedded stack is already running (pid ${running.pid}, Web UI ${running.webUi})`);
  }
  const dir = stackDir();
  await mkdir(dir, { recursive: true });
  let server: Awaited<ReturnType<typeof resolveDevServer>> | undefined;
  let serverBinaries: ServerBinaries | undefined;
  if (profile === 'server') {
    serverBinaries = await resolveServerBinaries({ progress });
    progress(`Temporal server: ${serverBinaries.server} (${serverBinaries.source}); Web UI server: ${serverBinaries.uiServer ?? 'none'} (${serverBinaries.uiSource ?? '-'})`);
  } else {
    server = await resolveDevServer({ progress });
    progress(`Temporal dev server: ${server.path ?? 'SDK download'} (${server.source})`);
  }

  const databases = Array.from({ length: SHARD_COUNT }, (_, i) => shardDatabase(i));
  let postgres: RunningPostgres | undefined;
  if (options.external) progress(`ledger on external PostgreSQL (${options.external.shardUrls.length} shard(s))`);
  if (!options.external || profile === 'server') {
    progress(`starting PostgreSQL (embedded${options.external ? ', for Temporal only' : ''})…`);
    const ledgerDatabases = options.external ? [] : [...databases, WALLET_SERVICE_DATABASE, MESSAGES_DATABASE, FUND_ACCOUNT_DATABASE];
    postgres = await startEmbeddedPostgres({ dir: join(dir, 'postgres'), databases: ledgerDatabases, log: (l) => progress(`  ${l}`) });
  }
  const ledgerPostgres = options.external ? undefined : postgres;
  const taken = postgres ? [postgres.port] : [];
  let temporal: TemporalHandle | undefined;
  try {
    let temporalAddress: string;
    let webUi: string;
    if (serverBinaries) {
      const historyShards = historyShardsFromEnv();
      progress(`starting the Temporal server (PostgreSQL persistence, ${historyShards} history shards requested) and its Web UI…`);
      temporal = await startServerProfile(serverBinaries, postgres!, { dir, port: options.temporalPort ?? 7233, uiPort: options.uiPort ?? 8233, historyShards, progress, beforeConnect: options.beforeConnect });
      temporalAddress = temporal.address!;
      webUi = temporal.webUi ?? '';
    } else {
      const port = await freePort(options.temporalPort ?? 7233, taken);
      const uiPort = await freePort(options.uiPort ?? 8233, [...taken, port]);
      progress(`starting Temporal dev server on 127.0.0.1:${port} with Web UI on ${uiPort}…`);
      temporal = await startTemporal(server!.executable, { port, uiPort, dbFilename: join(dir, 'temporal.sqlite'), logFile: join(dir, 'temporal.log'), progress, beforeConnect: options.beforeConnect });
      temporalAddress = `127.0.0.1:${port}`;
      webUi = `http://127.0.0.1:${uiPort}`;
    }
    const info: StackInfo = {
      pid: process.pid,
      profile,
      startedAt: new Date().toISOString(),
      temporalAddress,
      namespace: 'default',
      taskQueue: options.taskQueue,
      webUi,
      shardUrls: options.external?.shardUrls ?? databases.map((db) => ledgerPostgres!.url(db)),
      slotMap: options.external?.slotMap ?? formatSlotMap(evenSlotMap(SHARD_COUNT)),
      ...(ledgerPostgres ? { producerUrl: ledgerPostgres.url(WALLET_SERVICE_DATABASE) } : process.env.MESSAGES_PRODUCER_URL ? { producerUrl: process.env.MESSAGES_PRODUCER_URL } : {}),
      ...(ledgerPostgres ? { messagesUrl: ledgerPostgres.url(MESSAGES_DATABASE), fundAccountUrl: ledgerPostgres.url(FUND_ACCOUNT_DATABASE) } : {}),
    };
    await writeFile(stackFile(), JSON.stringify(info, null, 2), { mode: 0o600 });
    const started = temporal;
    return {
      info,
      ...(ledgerPostgres ? { postgres: ledgerPostgres } : {}),
      ...(started.pids ? { temporalPids: started.pids } : {}),
      ...(started.description ? { temporalDescription: started.description } : {}),
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
  /** Set by the server profile. */
  address?: string;
  webUi?: string | undefined;
  pids?: number[];
  description?: string;
  stop(): Promise<void>;
}

/** The server profile: Temporal's databases in the embedded PostgreSQL, the server and the Web UI as our children. */
async function startServerProfile(
  binaries: ServerBinaries,
  postgres: RunningPostgres,
  o: { dir: string; port: number; uiPort: number; historyShards: number; progress: Progress; beforeConnect?: (() => void | Promise<void>) | undefined },
): Promise<TemporalHandle> {
  const url = new URL(postgres.url('postgres'));
  const server = await startTemporalServer({
    binaries,
    dir: join(o.dir, 'temporal-server'),
    postgres: { host: '127.0.0.1', port: postgres.port, user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) },
    port: o.port,
    uiPort: o.uiPort,
    namespace: 'default',
    searchAttributes: TRANSFER_SEARCH_ATTRIBUTES,
    historyShards: o.historyShards,
    logFile: join(o.dir, 'temporal-server.log'),
    uiLogFile: join(o.dir, 'temporal-ui.log'),
    progress: o.progress,
  });
  return {
    ...(await connectTo(server, o.beforeConnect)),
    address: server.address,
    webUi: server.webUi,
    pids: [server.pid, ...(server.uiPid ? [server.uiPid] : [])],
    description: `Temporal server ${TEMPORAL_SERVER_VERSION} (pid ${server.pid}) on PostgreSQL databases temporal + temporal_visibility, ${server.historyShards} history shards; Web UI server ${TEMPORAL_UI_SERVER_VERSION}${server.uiPid ? ` (pid ${server.uiPid})` : ' not running'}`,
  };
}

/**
 * The worker's native connection and a client of its own (not on the native connection: its long
 * polls, such as the demo's wait for a result, must stop on Ctrl-C through withAbortSignal) to a
 * server we started; stop() closes both, then the server. A failed connect (or beforeConnect) stops
 * the server.
 */
async function connectTo(server: { address: string; stop(): Promise<void> }, beforeConnect?: () => void | Promise<void>): Promise<Pick<TemporalHandle, 'nativeConnection' | 'client' | 'stop'>> {
  try {
    await beforeConnect?.();
    const nativeConnection = await connectWhenHealthy(() => NativeConnection.connect({ address: server.address }));
    const connection = await Connection.connect({ address: server.address });
    return {
      nativeConnection,
      client: new Client({ connection, namespace: 'default' }),
      async stop() {
        ignoreRetriesAfterClose();
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

let retriesIgnored = false;
/**
 * The client SDK retries a call that the server's stop cut (Ctrl-C reaches the dev server too) on a
 * timer; once we have closed the connection, that timer throws "Channel has been shut down" outside
 * any caller, as an uncaught exception that would end the process before its cleanup and its answer.
 * After our own close that is not a fault: it is dropped. Anything else uncaught still ends the
 * process as Node would (its stack on stderr, exit 1).
 */
function ignoreRetriesAfterClose(): void {
  if (retriesIgnored) return;
  retriesIgnored = true;
  process.on('uncaughtException', (error: Error) => {
    if (error?.message === 'Channel has been shut down') return;
    process.stderr.write(`${error?.stack ?? String(error)}\n`);
    process.exit(1);
  });
}

/**
 * A binary we have a path to runs as our own child (output to temporal.log, stopped by pid); the
 * SDK's download route runs through the SDK's ephemeral-server support.
 */
async function startTemporal(
  executable: EphemeralServerExecutable,
  o: { port: number; uiPort: number; dbFilename: string; logFile: string; progress: Progress; beforeConnect?: (() => void | Promise<void>) | undefined },
): Promise<TemporalHandle> {
  if (executable.type === 'existing-path') {
    const server = await startDevServer({ path: executable.path, ip: '127.0.0.1', port: o.port, uiPort: o.uiPort, dbFilename: o.dbFilename, namespace: 'default', searchAttributes: TRANSFER_SEARCH_ATTRIBUTES, logFile: o.logFile });
    return connectTo(server, o.beforeConnect);
  }
  await o.beforeConnect?.(); // the SDK's ephemeral server is itself a native object of the runtime
  const env = await startWithRetry('Temporal dev server', () => TestWorkflowEnvironment.createLocal({
    server: {
      executable, ip: '127.0.0.1', port: o.port, ui: true, uiPort: o.uiPort, namespace: 'default',
      dbFilename: o.dbFilename, searchAttributes: TRANSFER_SEARCH_ATTRIBUTES, log: { format: 'json', level: 'warn' },
      extraArgs: [...DEV_SERVER_TUNING],
    },
  }), 4, o.progress);
  return { nativeConnection: env.nativeConnection, client: env.client, stop: () => env.teardown() };
}
