import type { Command } from 'commander';
import { join } from 'node:path';
import { setMaxListeners } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { batchSettingsFromEnv, ledgerConfig, poolSettingsFromEnv, temporalConfig } from '../../config.js';
import { DEFAULT_TASK_QUEUE } from '../../../workflows/names.js';
import { connectionOptions } from '../context.js';
import { CliError, emit, EXIT, type GlobalOptions } from '../output.js';
import { interrupted } from '../signals.js';

// The worker SDK, the embedded stack and the binaries resolver are heavy: each action imports what it runs.
const load = {
  worker: () => import('@temporalio/worker'),
  ledger: () => import('../../ledger/ledger.js'),
  logger: () => import('../../observability/logger.js'),
  binaries: () => import('../../temporal/binaries.js'),
  stack: () => import('../../embedded/stack.js'),
  runtime: () => import('../../runtime.js'),
  demo: () => import('../demo.js'),
  ports: () => import('../../embedded/ports.js'),
  telemetry: () => import('../../observability/runtime.js'),
  slots: () => import('../../domain/slots.js'),
};

const say = (line: string) => process.stderr.write(`${line}\n`);

/**
 * Migrates and checks every shard, waiting (capped back-off, until Ctrl-C) while PostgreSQL is
 * unreachable or recovering; a wrong identity, password or database fails at once.
 */
async function waitForLedger(ledger: import('../../ledger/ledger.js').Ledger, warn: (line: string) => void): Promise<void> {
  const { untilAvailable } = await import('../../db/wait.js');
  const stop = new AbortController();
  const abort = () => stop.abort();
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  try {
    await untilAvailable(async () => {
      await ledger.migrate();
      await ledger.checkIdentity();
    }, {
      signal: stop.signal,
      onRetry: (attempt, delay, error) => warn(`ledger unavailable (${error.message}); retry ${attempt} in ${(delay / 1000).toFixed(1)} s`),
    });
  } finally {
    process.off('SIGINT', abort);
    process.off('SIGTERM', abort);
  }
  if (stop.signal.aborted) throw new CliError('interrupted while waiting for the ledger', EXIT.UNREACHABLE, 'UNREACHABLE');
}


/**
 * Exit 2 at once when a live stack owns the data directory: stack.json is read without loading the
 * Temporal SDK or PostgreSQL, so nothing is provisioned, started or left behind.
 */
async function refuseWhileRunning(what: string): Promise<void> {
  const { readStackInfo, stackDir } = await import('../../embedded/stack-file.js');
  const running = await readStackInfo();
  if (running && running.pid !== process.pid) {
    throw new CliError(`an embedded stack is already running on ${stackDir()} (pid ${running.pid}, Web UI ${running.webUi}): stop it (Ctrl-C in its terminal, or \`kill ${running.pid}\`) before you ${what}`, EXIT.USAGE, 'STACK_RUNNING');
  }
}

export function registerStackCommands(program: Command, globals: () => GlobalOptions): void {
  program
    .command('up')
    .description('run the embedded stack in the foreground: PostgreSQL shards, Temporal dev server (or server) + Web UI, a worker')
    .option('--profile <profile>', 'dev: the Temporal CLI dev server on SQLite; server: the Temporal server itself on the embedded PostgreSQL', 'dev')
    .option('--demo', 'run the demo transfers once the stack is up')
    .option('--exit', 'stop after the demo instead of running until Ctrl-C')
    .option('--port <port>', 'preferred Temporal frontend port', '7233')
    .option('--ui-port <port>', 'preferred Web UI port', '8233')
    .option('--metrics-port <port>', 'preferred Prometheus metrics port (0: off)', '9464')
    .option('--api-port <port>', 'preferred HTTP API port (0: off)', '8787')
    .action(async (opts: { profile: string; demo?: boolean; exit?: boolean; port: string; uiPort: string; metricsPort: string; apiPort: string }) => {
      const started = Date.now();
      if (opts.profile !== 'dev' && opts.profile !== 'server') throw new CliError(`--profile must be dev or server (got ${opts.profile})`, EXIT.USAGE, 'USAGE');
      const profile = opts.profile;
      // A second `up` on the same data directory stops here, before anything heavy is loaded or started.
      await refuseWhileRunning('start another stack on it');
      const [{ createLogger }, { bindFreePort }, { installRuntime }, { startEmbeddedStack, stackDir }, { Ledger }, { parseSlotMap, formatSlotMap }, { runWorker }] = await Promise.all([
        load.logger(), load.ports(), load.telemetry(), load.stack(), load.ledger(), load.slots(), load.runtime(),
      ]);
      const taskQueue = process.env.TEMPORAL_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
      await mkdir(stackDir(), { recursive: true });
      const logger = createLogger('transfer-worker', { destination: join(stackDir(), 'worker.log') });
      let runtimeMetricsPort = 0;
      // LEDGER_SHARD_URLS / DATABASE_URL switch the ledger to external PostgreSQL servers.
      const external = ledgerConfig();
      // Ctrl-C or SIGTERM while the stack starts (PostgreSQL initialising, the Temporal server
      // setting up its schema): the process ends at once, and as it exits each child it started is
      // signalled by its own pid, so nothing is left running. Once started, the graceful stop below
      // takes over.
      const { signalChildrenOnExit } = await import('../../embedded/children.js');
      signalChildrenOnExit();
      const duringStart = (signal: NodeJS.Signals) => {
        say(`${signal} during start: stopping what has started`);
        process.exit(EXIT.NOT_COMPLETED);
      };
      process.once('SIGINT', duringStart);
      process.once('SIGTERM', duringStart);
      let stack: Awaited<ReturnType<typeof startEmbeddedStack>>;
      try {
        stack = await startEmbeddedStack({
          progress: say,
          beforeConnect: async () => {
            if (Number(opts.metricsPort) === 0) return installRuntime(logger);
            // Chosen only now, after the Temporal server has bound its own ports.
            runtimeMetricsPort = await bindFreePort(Number(opts.metricsPort) + 1, [], async (port) => {
              installRuntime(logger, `127.0.0.1:${port}`);
              return port;
            });
          },
          taskQueue,
          profile,
          temporalPort: Number(opts.port),
          uiPort: Number(opts.uiPort),
          ...(external ? { external: { shardUrls: external.shardUrls, slotMap: formatSlotMap(external.slotMap) } } : {}),
        });
      } finally {
        process.off('SIGINT', duringStart);
        process.off('SIGTERM', duringStart);
      }
      const ledger = Ledger.connect({ shardUrls: stack.info.shardUrls, slotMap: parseSlotMap(stack.info.slotMap, stack.info.shardUrls.length), pool: poolSettingsFromEnv(), batch: batchSettingsFromEnv() });
      let running: Awaited<ReturnType<typeof runWorker>> | undefined;
      let relay: import('../../messaging/run-relay.js').RunningRelay | undefined;
      let messaging: Awaited<ReturnType<typeof import('../../messaging/webhooks/up.js').startMessagingForUp>>;
      let api: import('../../api/listen.js').RunningApi | undefined;
      try {
        await waitForLedger(ledger, (line) => {
          logger.warn({}, line);
          say(line);
        });
        running = await runWorker({ connection: stack.nativeConnection, namespace: stack.info.namespace, taskQueue, ledger, logger, metricsPort: Number(opts.metricsPort) });
        if (stack.info.producerUrl) {
          const { runRelay } = await import('../../messaging/run-relay.js');
          const mode = process.env.TRANSFER_RELAY_MODE === 'log' ? 'log' : 'poll';
          const metrics = running.metrics;
          relay = await runRelay({ url: stack.info.producerUrl, client: stack.client, taskQueue, mode, example: true, log: (line) => logger.warn({}, line), onSlotLag: (bytes) => metrics.relaySlotLag.set(bytes) });
        }
        // Outbound messages: the webhook dispatcher and the reference fund-account receiver.
        const { startMessagingForUp } = await import('../../messaging/webhooks/up.js');
        messaging = await startMessagingForUp({
          messagesUrl: process.env.MESSAGES_DATABASE_URL || stack.info.messagesUrl,
          fundAccountUrl: process.env.FUND_ACCOUNT_DATABASE_URL || stack.info.fundAccountUrl,
          shardUrls: stack.info.shardUrls, logger, say,
        });
        // The HTTP API for other services, on loopback like everything else (TRANSFER_API_KEYS: bearer keys).
        if (Number(opts.apiPort) !== 0) {
          const { listenApi } = await import('../../api/listen.js');
          api = await bindFreePort(Number(opts.apiPort), [stack.postgres?.port ?? 0, Number(opts.port), Number(opts.uiPort)], (port) =>
            listenApi({ client: stack.client, taskQueue, ledger, host: '127.0.0.1', port, log: logger }));
          // A second terminal's `transfer status` asks this API (no Temporal SDK to load there).
          await (await import('../../embedded/stack-file.js')).recordApiUrl(api.url);
        }
        say(`\nReady in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        say(`  Temporal      ${stack.info.temporalAddress} (namespace ${stack.info.namespace}, task queue ${taskQueue})${profile === 'server' ? `; profile server: ${stack.temporalDescription ?? 'Temporal server'}` : ''}`);
        say(`  Web UI        ${stack.info.webUi}`);
        say(`  PostgreSQL    ${stack.postgres ? `127.0.0.1:${stack.postgres.port}` : 'external'} (${stack.info.shardUrls.length} shards)`);
        if (running.metricsPort) say(`  Metrics       http://127.0.0.1:${running.metricsPort}/metrics (transfers), http://127.0.0.1:${runtimeMetricsPort}/metrics (Temporal SDK)`);
        say(`  Data          ${stackDir()} (kept between runs; \`npx transfer reset\` removes it)`);
        say(`  Worker log    ${join(stackDir(), 'worker.log')}`);
        if (api) say(`  HTTP API      ${api.url}/v1 (OpenAPI ${api.url}/openapi.json; ${api.authenticated ? 'bearer API keys from TRANSFER_API_KEYS' : 'no API keys configured: no authentication, loopback only'})`);
        if (relay) say(`  Relay         ${relay.mode} mode: transfer requests from database wallet_service (transfer_outbox.transfer_requests)`);
        // Listening from here on, the demo included: the Temporal runtime answers Ctrl-C by stopping
        // the worker, and a demo left waiting for that worker would never end. Never rejects: a worker
        // that fails is one more reason to stop, not an unhandled rejection.
        const stopping = Promise.race([interrupted(), running.done.then(() => 'worker stopped', (error: Error) => `worker failed (${error.message})`)]);
        if (opts.demo) {
          const { runDemo } = await load.demo();
          const abort = new AbortController();
          // Every Temporal call of the demo (starts, approval-gate queries, results) listens on this one signal.
          setMaxListeners(100, abort.signal);
          const demo = stack.client.withAbortSignal(abort.signal, () => runDemo({ client: stack.client, ledger, taskQueue, webUi: stack.info.webUi, namespace: stack.info.namespace, ...(relay && stack.info.producerUrl ? { producerUrl: stack.info.producerUrl } : {}), print: (l) => (globals().json ? process.stderr : process.stdout).write(`${l}\n`) }));
          const outcomes = await Promise.race([demo, stopping]);
          if (typeof outcomes === 'string') {
            // Cancel the demo's Temporal calls and let it settle before the connection closes: a call
            // cut by the close is retried by the SDK on a timer, which then throws an uncaught error.
            abort.abort();
            // Bounded: a call the signal cannot reach (an update waiting for the stopped worker) must not
            // keep Ctrl-C from stopping the stack; closing the connection below ends it.
            await Promise.race([demo.then(() => undefined, () => undefined), new Promise((r) => setTimeout(r, 5_000).unref())]);
            throw new CliError(`${outcomes} during the demo: stopped before it finished`, EXIT.NOT_COMPLETED, 'INTERRUPTED');
          }
          const { moreTransfers } = await load.demo();
          const print = (l: string) => (globals().json ? process.stderr : process.stdout).write(`${l}\n`);
          await messaging?.demoReport(print, () => moreTransfers(stack.client, taskQueue, 2, print));
          if (globals().json) emit(globals(), { items: outcomes }, () => '');
        }
        if (!opts.exit) {
          say('\nRunning. Try `npx transfer send --from demo-wallet --to demo-savings --amount 1.50 --currency USD --wait` in another terminal. Ctrl-C stops.');
          say(`\n${await stopping}: shutting down…`);
        }
      } finally {
        await api?.stop().catch((e) => say(`HTTP API stop: ${(e as Error).message}`));
        await relay?.stop().catch((e) => say(`relay stop: ${(e as Error).message}`));
        await messaging?.stop().catch((e) => say(`webhooks stop: ${(e as Error).message}`));
        await running?.stop().catch((e) => say(`worker stop: ${(e as Error).message}`));
        await ledger.close().catch(() => undefined);
        await stack.stop();
        say(`stopped: PostgreSQL, ${profile === 'server' ? 'Temporal server, Web UI' : 'Temporal dev server'} and worker are down`);
      }
    });

  program
    .command('worker')
    .description('run a worker against an external Temporal and PostgreSQL (configured by environment variables)')
    .action(async () => {
      const config = ledgerConfig();
      if (!config) throw new CliError('set LEDGER_SHARD_URLS (or DATABASE_URL) to the ledger shard databases', EXIT.USAGE, 'NOT_CONFIGURED');
      const temporal = temporalConfig();
      const [{ NativeConnection }, { createLogger }, { installRuntime }, { Ledger }, { runWorker }] = await Promise.all([
        load.worker(), load.logger(), load.telemetry(), load.ledger(), load.runtime(),
      ]);
      const logger = createLogger('transfer-worker');
      const metricsPort = process.env.METRICS_PORT === undefined || process.env.METRICS_PORT === '' ? 9464 : Number(process.env.METRICS_PORT);
      if (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535) throw new CliError(`METRICS_PORT must be a port number or 0 (got ${process.env.METRICS_PORT})`, EXIT.USAGE, 'NOT_CONFIGURED');
      const ledger = Ledger.connect({ ...config, pool: poolSettingsFromEnv(), batch: batchSettingsFromEnv() });
      let connection: Awaited<ReturnType<typeof NativeConnection.connect>> | undefined;
      try {
        // A worker started while PostgreSQL is down or still recovering waits for it, with back-off.
        await waitForLedger(ledger, (line) => logger.warn({}, line));
        // The Temporal runtime keeps the process alive until its last native object is gone: install it
        // only now, so a ledger that cannot be reached ends the command instead of hanging it.
        const runtimeMetrics = process.env.TEMPORAL_METRICS_PORT ?? '9465';
        installRuntime(logger, runtimeMetrics === '0' ? undefined : `${process.env.METRICS_HOST ?? '0.0.0.0'}:${runtimeMetrics}`);
        connection = await NativeConnection.connect(await connectionOptions(temporal)).catch((error: Error) => {
          throw new CliError(`Temporal at ${temporal.address} is unreachable: ${error.message}`, EXIT.UNREACHABLE, 'UNREACHABLE');
        });
        const running = await runWorker({ connection, namespace: temporal.namespace, taskQueue: temporal.taskQueue, ledger, logger, metricsPort, metricsHost: process.env.METRICS_HOST ?? '0.0.0.0' });
        logger.info({ address: temporal.address, namespace: temporal.namespace, taskQueue: temporal.taskQueue, shards: config.shardUrls.length, metricsPort: running.metricsPort }, 'worker started');
        const signal = await Promise.race([interrupted(), running.done.then(() => 'worker stopped')]);
        logger.info({ signal }, 'shutting down');
        await running.stop();
      } finally {
        // A worker that fails to start must not linger on open pools and connections.
        await ledger.close().catch(() => undefined);
        await connection?.close().catch(() => undefined);
      }
    });

  program
    .command('provision')
    .description('find or build the Temporal dev server, the time-skipping test server, and the server profile\'s Temporal server, SQL tool and Web UI server (cached after the first run)')
    .option('--no-server-profile', 'skip the server profile\'s binaries (the Temporal server and Web UI server builds)')
    .action(async (opts: { serverProfile: boolean }) => {
      const started = Date.now();
      const { resolveDevServer, resolveTestServer } = await load.binaries();
      const test = await resolveTestServer({ progress: say });
      const dev = await resolveDevServer({ progress: say });
      const serverStarted = Date.now();
      const server = opts.serverProfile ? await (await import('../../temporal/server-binaries.js')).resolveServerBinaries({ progress: say }) : undefined;
      const serverSeconds = (Date.now() - serverStarted) / 1000;
      emit(globals(), { devServer: dev, testServer: test, ...(server ? { temporalServer: { ...server, seconds: serverSeconds } } : {}), seconds: (Date.now() - started) / 1000 }, () => [
        `Temporal dev server:  ${dev.path ?? 'SDK download'} (${dev.source})`,
        `Temporal test server: ${test.path ?? 'SDK download'} (${test.source})`,
        ...(server ? [
          `Temporal server:      ${server.server} (${server.source}${server.source === 'build' ? `, ${serverSeconds.toFixed(0)} s with the Web UI server` : ''})`,
          `Temporal SQL tool:    ${server.sqlTool}, schema ${server.schemaDir}`,
          `Temporal Web UI:      ${server.uiServer ?? 'none'} (${server.uiSource ?? '-'})`,
        ] : []),
      ].join('\n'));
    });

  program
    .command('reset')
    .description('delete the embedded stack data (ledger databases, Temporal history); the stack must be stopped')
    .action(async () => {
      await refuseWhileRunning('reset it');
      const { resetStack, stackDir } = await load.stack();
      await resetStack();
      emit(globals(), { removed: stackDir() }, () => `removed ${stackDir()}`);
    });
}
