import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { TransferActivities } from '../../activities/index.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import type { Logger } from '../../src/observability/logger.js';
import type { TransferMetrics } from '../../src/observability/metrics.js';
import { createTestWorker, type Latch, testPolicy, uniqueTaskQueue } from './temporal.js';

/** Holds one activity at a latch (before it touches the ledger) so a test can act in that phase. */
export function pauseBefore(name: 'reserveDebit' | 'reserveCredit' | 'postDebit' | 'postCredit', latch: Latch) {
  return (acts: TransferActivities): TransferActivities => ({
    ...acts,
    [name]: async (input: never) => {
      await latch.wait();
      return (acts[name] as (i: never) => Promise<unknown>)(input);
    },
  });
}

/** Runs `fn` with a worker on a fresh task queue, shutting it down afterwards. */
export async function withTransferWorker<T>(
  env: TestWorkflowEnvironment,
  ledger: Ledger,
  options: { wrap?: (a: TransferActivities) => TransferActivities; approvalThreshold?: string; approvers?: string[]; metrics?: TransferMetrics; logger?: Logger },
  fn: (taskQueue: string) => Promise<T>,
): Promise<T> {
  const taskQueue = uniqueTaskQueue();
  const worker = await createTestWorker(env, ledger, {
    taskQueue,
    policy: testPolicy({ approvalThreshold: options.approvalThreshold ?? null, ...(options.approvers ? { approvers: options.approvers } : {}) }),
    ...(options.wrap ? { wrap: options.wrap } : {}),
    ...(options.metrics ? { metrics: options.metrics } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  return worker.runUntil(() => fn(taskQueue));
}

/** True once a late reservation under this transfer's key was refused by the tombstone. */
export async function fenced(ledger: Ledger, account: string, transferId: string, side: 'debit' | 'credit' = 'debit'): Promise<boolean> {
  const shard = ledger.shardFor(account);
  const { rows } = await shard.pool.query<{ state: string }>('SELECT state FROM idempotency_keys WHERE key = $1', [`${transferId}:reserve-${side}`]);
  return rows[0]?.state === 'cancelled' && (await ledger.transferRecords(transferId)).holds.every((h) => h.state !== 'pending');
}

export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs `hook` (say, move the ledger clock or freeze an account) right after an activity succeeded. */
export function after(name: keyof TransferActivities, hook: () => Promise<unknown> | void) {
  return (acts: TransferActivities): TransferActivities => ({
    ...acts,
    [name]: async (input: never) => {
      const result = await (acts[name] as (i: never) => Promise<unknown>)(input);
      await hook();
      return result;
    },
  });
}

/** Chains activity wrappers (the first wraps innermost). */
export function wrapAll(...wraps: ((a: TransferActivities) => TransferActivities)[]) {
  return (acts: TransferActivities): TransferActivities => wraps.reduce((a, w) => w(a), acts);
}

/** The real ledger, except that `void` answers with `fault()` while it returns an error. */
export function ledgerWithVoidFault(ledger: Ledger, fault: () => Error | undefined): Ledger {
  return new Proxy(ledger, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (prop === 'void') {
        return async (input: Parameters<Ledger['void']>[0]) => {
          const error = fault();
          if (error) throw error;
          return target.void(input);
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
