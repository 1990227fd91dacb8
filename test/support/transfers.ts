import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { expect } from 'vitest';
import { transferResult } from '../../src/client.js';
import type { TransferRequest, TransferResult } from '../../src/domain/transfer.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { TRANSFER_WORKFLOW } from '../../workflows/definitions.js';
import type { transferWorkflow } from '../../workflows/transfer.js';
import { accountOnShard } from './ledger.js';

/** How a transfer ended: the run's result, or the result its typed outcome failure carries. */
export function outcomeOf(handle: WorkflowHandle): Promise<TransferResult> {
  return transferResult(handle as WorkflowHandle<typeof transferWorkflow>);
}

export async function openFunded(ledger: Ledger, shard: number, prefix: string, amount: string, currency = 'USD'): Promise<string> {
  const id = accountOnShard(ledger, shard, prefix);
  await ledger.openAccount({ id, currency });
  if (amount !== '0') await ledger.deposit({ key: `seed-${id}`, accountId: id, amount, currency });
  return id;
}

/**
 * `workflowTaskTimeout`: a ledger step runs as a local activity inside a workflow task, and a cancel,
 * query or update reaches the workflow when that task is heartbeated (at 80% of this timeout, 10 s by
 * default). Tests that hold a step at a latch shorten it so they need not wait that long.
 */
export function startTransfer(env: TestWorkflowEnvironment, taskQueue: string, request: TransferRequest & { transferId: string }, options: { workflowTaskTimeout?: string } = {}): Promise<WorkflowHandle<typeof transferWorkflow>> {
  return env.client.workflow.start<typeof transferWorkflow>(TRANSFER_WORKFLOW, { taskQueue, workflowId: request.transferId, args: [request], ...options });
}

export interface FailureLink {
  activity: string;
  type: string | undefined;
  nonRetryable: boolean | undefined;
  message: string | undefined;
}

type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];

/** The activity type a local activity's marker records (undefined for any other event). */
function localActivityType(event: HistoryEvent): string | undefined {
  const marker = event.markerRecordedEventAttributes;
  if (marker?.markerName !== 'core_local_activity') return undefined;
  const data = marker.details?.['data']?.payloads?.[0]?.data;
  if (!data) return '?';
  return (JSON.parse(Buffer.from(data).toString('utf8')) as { activity_type?: string }).activity_type ?? '?';
}

/** The policy lookup is a local activity on every path; the lists below are about ledger steps. */
const POLICY_ACTIVITY = 'transferPolicy';

/**
 * The failure chain as recorded in history: each ActivityTaskFailed event's ApplicationFailure
 * (type, nonRetryable), and each failed local activity's marker (the fast path runs the ledger steps
 * as local activities). The saga handles refusals and returns a result, so the chain lives here.
 */
export async function activityFailures(handle: WorkflowHandle): Promise<FailureLink[]> {
  const history = await handle.fetchHistory();
  const scheduled = new Map<string, string>();
  const failures: FailureLink[] = [];
  for (const event of history.events ?? []) {
    const s = event.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(event.eventId), s.activityType?.name ?? '?');
    const f = event.activityTaskFailedEventAttributes?.failure ?? (localActivityType(event) ? event.markerRecordedEventAttributes?.failure : undefined);
    if (f) {
      const activity = localActivityType(event) ?? scheduled.get(String(event.activityTaskFailedEventAttributes?.scheduledEventId)) ?? '?';
      failures.push({
        activity,
        type: f.applicationFailureInfo?.type ?? f.cause?.applicationFailureInfo?.type ?? undefined,
        nonRetryable: f.applicationFailureInfo?.nonRetryable ?? f.cause?.applicationFailureInfo?.nonRetryable ?? undefined,
        message: (f.applicationFailureInfo ? f.message : (f.cause?.message ?? f.message)) ?? undefined,
      });
    }
  }
  return failures;
}

/** Ledger activities in the order they ran: activity tasks scheduled and local activities recorded. */
export async function scheduledActivities(handle: WorkflowHandle): Promise<string[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).flatMap((e) => {
    const name = e.activityTaskScheduledEventAttributes?.activityType?.name ?? localActivityType(e);
    return name === undefined || name === POLICY_ACTIVITY ? [] : [name];
  });
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

interface LedgerSides { id: string; from: string; to: string; amount: string }

/** The transfer's credit hold, reserved under its own key and posted under `postKey`, with no saga behind it. */
export async function postCreditOutsideTheSaga(ledger: Ledger, t: LedgerSides, postKey: string): Promise<void> {
  await ledger.reserve({ key: `${t.id}:reserve-credit`, transferId: t.id, accountId: t.to, side: 'credit', amount: t.amount, currency: 'USD', ttlMs: 60_000, counterparty: t.from });
  await ledger.post({ key: postKey, holdKey: `${t.id}:reserve-credit`, accountId: t.to, transferId: t.id });
}

/** What a lost workflow task that ran the whole transfer leaves: both holds posted under the transfer's own keys. */
export async function completeOutsideTheSaga(ledger: Ledger, t: LedgerSides): Promise<void> {
  await ledger.reserve({ key: `${t.id}:reserve-debit`, transferId: t.id, accountId: t.from, side: 'debit', amount: t.amount, currency: 'USD', ttlMs: 60_000, counterparty: t.to });
  await ledger.post({ key: `${t.id}:post-debit`, holdKey: `${t.id}:reserve-debit`, accountId: t.from, transferId: t.id });
  await postCreditOutsideTheSaga(ledger, t, `${t.id}:post-credit`);
}
