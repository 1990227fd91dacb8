import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { expect } from 'vitest';
import type { TransferRequest } from '../../src/domain/transfer.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { TRANSFER_WORKFLOW } from '../../workflows/definitions.js';
import type { transferWorkflow } from '../../workflows/transfer.js';
import { accountOnShard } from './ledger.js';

export async function openFunded(ledger: Ledger, shard: number, prefix: string, amount: string, currency = 'USD'): Promise<string> {
  const id = accountOnShard(ledger, shard, prefix);
  await ledger.openAccount({ id, currency });
  if (amount !== '0') await ledger.deposit({ key: `seed-${id}`, accountId: id, amount, currency });
  return id;
}

export function startTransfer(env: TestWorkflowEnvironment, taskQueue: string, request: TransferRequest & { transferId: string }): Promise<WorkflowHandle<typeof transferWorkflow>> {
  return env.client.workflow.start<typeof transferWorkflow>(TRANSFER_WORKFLOW, { taskQueue, workflowId: request.transferId, args: [request] });
}

export interface FailureLink {
  activity: string;
  type: string | undefined;
  nonRetryable: boolean | undefined;
  message: string | undefined;
}

/**
 * The failure chain as recorded in history: each ActivityTaskFailed event's ApplicationFailure
 * (type, nonRetryable). The saga handles refusals and returns a result, so the chain lives here.
 */
export async function activityFailures(handle: WorkflowHandle): Promise<FailureLink[]> {
  const history = await handle.fetchHistory();
  const scheduled = new Map<string, string>();
  const failures: FailureLink[] = [];
  for (const event of history.events ?? []) {
    const s = event.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(event.eventId), s.activityType?.name ?? '?');
    const f = event.activityTaskFailedEventAttributes;
    if (f) {
      failures.push({
        activity: scheduled.get(String(f.scheduledEventId)) ?? '?',
        type: f.failure?.applicationFailureInfo?.type ?? undefined,
        nonRetryable: f.failure?.applicationFailureInfo?.nonRetryable ?? undefined,
        message: f.failure?.message ?? undefined,
      });
    }
  }
  return failures;
}

/** Activity types in the order they were scheduled. */
export async function scheduledActivities(handle: WorkflowHandle): Promise<string[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name ?? '?'] : []));
}

export async function expectBalances(ledger: Ledger, expected: Record<string, { posted: string; pendingDebits?: string; pendingCredits?: string }>): Promise<void> {
  for (const [id, want] of Object.entries(expected)) {
    const account = await ledger.getAccount(id);
    expect({ id, posted: account.posted, pendingDebits: account.pendingDebits, pendingCredits: account.pendingCredits }).toEqual({
      id,
      posted: want.posted,
      pendingDebits: want.pendingDebits ?? '0',
      pendingCredits: want.pendingCredits ?? '0',
    });
  }
}

export async function expectLedgerClean(ledger: Ledger): Promise<void> {
  const report = await ledger.verify();
  expect(report.violations).toEqual([]);
}

