import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, type InjectedSinks, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type TransferActivities } from '../activities/index.js';
import type { TransferSinks } from '../workflows/sinks.js';
import type { TransferPolicy } from './domain/transfer.js';
import type { Ledger } from './ledger/ledger.js';
import type { Logger } from './observability/logger.js';
import type { TransferMetrics } from './observability/metrics.js';
import { markEnded } from './observability/endings.js';

/**
 * The workflow code the SDK bundles at worker start: the TypeScript source when this module runs
 * through tsx, the compiled workflows (dist/workflows/index.js) when it runs from dist/.
 */
export const WORKFLOWS_PATH = fileURLToPath(new URL(import.meta.url.endsWith('.js') ? '../workflows/index.js' : '../workflows/index.ts', import.meta.url));

export interface TransferWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue: string;
  ledger: Ledger;
  policy: (currency: string) => TransferPolicy;
  logger?: Logger;
  metrics?: TransferMetrics;
  /** A pre-built workflow bundle (tests build it once per run); default: bundle workflows/ at start. */
  workflowBundle?: { codePath: string } | { code: string };
  /** Extra worker options (tests shorten shutdown, etc.). */
  overrides?: Partial<WorkerOptions>;
  /** Fault injection for tests: wraps the real activities (e.g. lose a response after commit). */
  wrapActivities?: (activities: TransferActivities) => TransferActivities;
}

/**
 * What the workflow reports without an activity: metrics, and the one log line of each ending
 * (info when COMPLETED; warn with the reason and its message otherwise: the activity that was
 * refused logs only at debug, so a refusal is one line, not two). Replay workers are given them too,
 * so a replay never reports an unregistered sink (they are not called during replay).
 */
export function createTransferSinks(logger?: Logger, metrics?: TransferMetrics): InjectedSinks<TransferSinks> {
  return {
    transferMetrics: {
      outcome: {
        fn: (info, status, reason, detail) => {
          const seconds = (Date.now() - info.startTime.getTime()) / 1000;
          metrics?.outcome(status, reason, seconds, detail?.replayed ? undefined : detail?.amount, detail?.currency);
          const fields = {
            transferId: info.workflowId,
            status,
            ...(reason ? { reason } : {}),
            ...(detail ? { from: detail.from, to: detail.to, amount: detail.amount, currency: detail.currency } : {}),
            durationMs: Math.round(seconds * 1000),
            ...(detail?.replayed ? { replayed: true } : {}),
          };
          if (status === 'COMPLETED') logger?.info(fields, 'transfer COMPLETED');
          else {
            markEnded(info.runId); // the SDK's "Workflow failed" for this run repeats this line (see sdkLogLevel)
            logger?.warn({ ...fields, ...(detail?.message ? { err: detail.message } : {}) }, `transfer ${status}${reason ? ` (${reason})` : ''}${detail?.message ? `: ${detail.message}` : ''}`);
          }
        },
        callDuringReplay: false,
      },
      attention: {
        fn: (info, step, code, message) => {
          metrics?.attention(step, code);
          logger?.error({ transferId: info.workflowId, step, code, err: message }, `transfer needs attention: ${step} refused with ${code}; run \`transfer repair ${info.workflowId}\``);
        },
        callDuringReplay: false,
      },
      repaired: {
        fn: (info, step, action, by, note) => {
          metrics?.repair(action);
          logger?.warn({ transferId: info.workflowId, step, action, by, note }, `operator repair: ${action} ${step}`);
        },
        callDuringReplay: false,
      },
      approvalRefused: {
        fn: (info, by, reason) => {
          metrics?.approvalRefused();
          logger?.warn({ transferId: info.workflowId, by, reason }, 'approval refused');
        },
        callDuringReplay: false,
      },
    },
  };
}

export async function createTransferWorker(options: TransferWorkerOptions): Promise<Worker> {
  const { logger, metrics } = options;
  const sinks = createTransferSinks(logger, metrics);
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace ?? 'default',
    taskQueue: options.taskQueue,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: (options.wrapActivities ?? ((a) => a))(createActivities({
      ledger: options.ledger,
      policy: options.policy,
      ...(logger ? { log: { debug: (f, m) => logger.debug(f, m), warn: (f, m) => logger.warn(f, m) } } : {}),
      ...(metrics ? { observer: metrics } : {}),
    })),
    sinks,
    ...options.overrides,
  });
}

/**
 * Releases holds nobody will post (their workflow is gone for longer than the hold lives). Runs in
 * every worker; jitter keeps workers from sweeping in lockstep, SKIP LOCKED keeps them apart. The
 * returned stop waits for a sweep in progress, so the pools it uses are closed only after it.
 */
export function startSweeper(ledger: Ledger, logger?: Logger, everyMs = 15_000, afterSweep?: () => Promise<void>): () => Promise<void> {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const sweep = async () => {
    try {
      for (const result of await ledger.sweepExpired()) {
        for (const hold of result.expired) {
          logger?.warn({ transferId: hold.transferId, hold: hold.key, account: hold.accountId, amount: hold.amount }, 'hold expired and released');
        }
      }
      await afterSweep?.();
    } catch (error) {
      logger?.warn({ err: (error as Error).message }, 'sweep failed; will retry');
    }
  };
  const tick = () => {
    running = sweep().finally(() => {
      if (!stopped) timer = setTimeout(tick, everyMs * (0.75 + Math.random() * 0.5));
    });
  };
  timer = setTimeout(tick, everyMs * Math.random());
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await running;
  };
}
