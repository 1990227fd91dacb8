import type { Server } from 'node:http';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { policyFromEnv, workerTuningFromEnv } from './config.js';
import type { Ledger } from './ledger/ledger.js';
import type { Logger } from './observability/logger.js';
import { TransferMetrics } from './observability/metrics.js';
import { freePort } from './embedded/ports.js';
import { installTestFaults } from './testing/faults.js';
import { cachedWorkflowBundle } from './temporal/bundle.js';
import { createTransferWorker, startSweeper } from './worker.js';
import { TRANSFER_WORKFLOW } from '../workflows/names.js';

export interface RunningWorker {
  worker: Worker;
  metrics: TransferMetrics;
  metricsPort?: number;
  /** Resolves when the worker has drained and stopped. */
  done: Promise<void>;
  stop(): Promise<void>;
}

/** A worker with its sweeper and metrics endpoint: what both `up` and `worker` run. */
export async function runWorker(options: {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  ledger: Ledger;
  logger: Logger;
  metricsPort?: number;
  metricsHost?: string;
  /** How often the in-flight / awaiting-approval gauges are counted (default OPEN_TRANSFERS_EVERY_MS). */
  openTransfersEveryMs?: number;
}): Promise<RunningWorker> {
  const metrics = new TransferMetrics();
  metrics.watchLedger(options.ledger.shards);
  const testFaults = installTestFaults(); // inert unless the chaos test sets TRANSFER_TEST_FAULTS
  const worker = await createTransferWorker({
    // Built once per code version in a child process (the chaos test hands in its own).
    workflowBundle: testFaults.workflowBundle ?? (await cachedWorkflowBundle((line) => options.logger.info({}, line))),
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    ledger: options.ledger,
    policy: policyFromEnv(),
    logger: options.logger,
    metrics,
    overrides: workerTuningFromEnv(),
    ...testFaults,
  });
  let server: Server | undefined;
  let metricsPort: number | undefined;
  if (options.metricsPort !== 0) {
    metricsPort = options.metricsHost === '0.0.0.0' ? (options.metricsPort ?? 9464) : await freePort(options.metricsPort ?? 9464);
    server = await metrics.serve(metricsPort, options.metricsHost ?? '127.0.0.1', (err) => options.logger.error({ err }, 'metrics scrape failed'));
  }
  // After each sweep, the suspense gauge: money an operator must pay out shows on a dashboard.
  const stopSweeper = startSweeper(options.ledger, options.logger, undefined, async () => {
    const balances = await options.ledger.suspenseBalances();
    metrics.suspenseBalances(balances);
    for (const b of balances) options.logger.warn({ shard: b.shard, currency: b.currency, amount: b.amount }, 'money in suspense: see `transfer suspense list`');
  });
  const stopCounting = countOpenTransfers(options, metrics, options.openTransfersEveryMs);
  const done = worker.run();
  return {
    worker,
    metrics,
    ...(metricsPort ? { metricsPort } : {}),
    done,
    async stop() {
      stopCounting();
      await stopSweeper();
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    },
  };
}

/** How often the open-transfer gauges are refreshed from visibility. */
export const OPEN_TRANSFERS_EVERY_MS = 10_000;

/**
 * The in-flight and awaiting-approval gauges, from Temporal's visibility: a count query of running
 * transfers on this task queue, and of those whose TransferStatus is AWAITING_APPROVAL. Counting in
 * visibility rather than from this worker's own starts and ends keeps the gauges right across worker
 * restarts (an approval may wait a day) and with several workers on one queue. A failed count keeps
 * the last values (debug log); the next tick tries again.
 */
function countOpenTransfers(options: { connection: NativeConnection; namespace: string; taskQueue: string; logger: Logger }, metrics: TransferMetrics, everyMs = OPEN_TRANSFERS_EVERY_MS): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const queue = options.taskQueue.replace(/'/g, "\\'");
  const running = `WorkflowType = '${TRANSFER_WORKFLOW}' AND TaskQueue = '${queue}' AND ExecutionStatus = 'Running'`;
  const tick = async () => {
    try {
      const { Client } = await import('@temporalio/client');
      const client = new Client({ connection: options.connection, namespace: options.namespace });
      const [open, awaiting] = await Promise.all([
        client.workflow.count(running),
        client.workflow.count(`${running} AND TransferStatus = 'AWAITING_APPROVAL'`),
      ]);
      metrics.openTransfers(open.count, awaiting.count);
    } catch (error) {
      options.logger.debug({ err: (error as Error).message }, 'counting open transfers failed; will retry');
    } finally {
      if (!stopped) timer = setTimeout(() => void tick(), everyMs);
    }
  };
  timer = setTimeout(() => void tick(), 0);
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
