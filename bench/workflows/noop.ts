/**
 * Bench-only workflows: the transfer workflow's shape with nothing behind it, to measure what the
 * Temporal server and worker cost per transfer on their own (the "Temporal ceiling" rows of
 * `npm run bench`). Same calls in the same order as workflows/transfer.ts on its happy path:
 * memo upsert, search attributes at start and on each status change, current details, one local
 * activity (transferPolicy), then four activities with the transfer's options and summaries. The
 * activities (bench/run.ts) return a constant of the real result's shape and touch nothing.
 */
import * as wf from '@temporalio/workflow';
import type { StepResult, TransferActivities } from '../../activities/index.js';
import { AmountKey, CurrencyKey, FromAccountKey, ToAccountKey, TransferStatusKey } from '../../src/domain/search-attributes.js';
import type { TransferRequest } from '../../src/domain/transfer.js';
import { POLICY_OPTIONS, POST_OPTIONS, RESERVE_OPTIONS } from '../../workflows/policies.js';

const policy = wf.proxyLocalActivities<TransferActivities>(POLICY_OPTIONS);
const reserving = wf.proxyActivities<TransferActivities>(RESERVE_OPTIONS);
const posting = wf.proxyActivities<TransferActivities>(POST_OPTIONS);
// Variant (c): the same four steps as local activities, with the same timeouts and retry policies.
const reservingLocal = wf.proxyLocalActivities<TransferActivities>(RESERVE_OPTIONS);
const postingLocal = wf.proxyLocalActivities<TransferActivities>(POST_OPTIONS);

export interface NoopResult {
  transferId: string;
  status: 'COMPLETED';
  steps: { step: string; replayed: boolean; attempt: number }[];
}

/** Four regular activities, as the real transfer runs them. */
export async function noopTransferWorkflow(input: TransferRequest): Promise<NoopResult> {
  return shape(input, false);
}

/** The same shape with the four steps as local activities. */
export async function noopLocalTransferWorkflow(input: TransferRequest): Promise<NoopResult> {
  return shape(input, true);
}

async function shape(input: TransferRequest, local: boolean): Promise<NoopResult> {
  const { workflowId } = wf.workflowInfo();
  const steps: NoopResult['steps'] = [];
  let status = 'RUNNING';
  wf.setHandler(wf.defineQuery<string>('status'), () => status);
  const setStatus = (next: string) => {
    status = next;
    wf.upsertSearchAttributes([{ key: TransferStatusKey, value: next }]);
  };
  wf.upsertMemo({ request: input });
  const amount = BigInt(input.amount);
  wf.upsertSearchAttributes([
    { key: TransferStatusKey, value: 'RUNNING' },
    { key: FromAccountKey, value: input.from },
    { key: ToAccountKey, value: input.to },
    { key: CurrencyKey, value: input.currency },
    { key: AmountKey, value: Number(amount) },
  ]);
  const money = `${amount} ${input.currency}`;
  await policy.transferPolicy(input.currency);

  const reserve = local ? reservingLocal : reserving;
  const post = local ? postingLocal : posting;
  const step = async (name: string, run: () => Promise<StepResult>) => {
    wf.setCurrentDetails(`${name}: ${money} from ${input.from} to ${input.to}`);
    const result = await run();
    steps.push({ step: name, replayed: result.replayed, attempt: result.attempt });
  };
  const reserveInput = { transferId: workflowId, amount: amount.toString(), currency: input.currency, ttlMs: 900_000 };
  const hold = (account: string, side: string) => ({ transferId: workflowId, account, holdKey: `${workflowId}:reserve-${side}` });
  await step('reserve-debit', () => reserve.reserveDebit.executeWithOptions({ summary: `reserve ${money} on ${input.from}` }, [{ ...reserveInput, account: input.from, counterparty: input.to }]));
  await step('reserve-credit', () => reserve.reserveCredit.executeWithOptions({ summary: `reserve ${money} credit on ${input.to}` }, [{ ...reserveInput, account: input.to, counterparty: input.from }]));
  await step('post-debit', () => post.postDebit.executeWithOptions({ summary: `post ${money} debit on ${input.from}` }, [hold(input.from, 'debit')]));
  await step('post-credit', () => post.postCredit.executeWithOptions({ summary: `post ${money} credit to ${input.to}` }, [hold(input.to, 'credit')]));
  setStatus('COMPLETED');
  wf.setCurrentDetails('COMPLETED');
  return { transferId: workflowId, status: 'COMPLETED', steps };
}
