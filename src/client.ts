import { ApplicationFailure, Client, InternalConnectionLikeSymbol, WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type InternalConnectionLike, type WorkflowHandle } from '@temporalio/client';
import { decodeArrayFromPayloads } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { formatMoney } from './domain/money.js';
import { AmountKey, CurrencyKey, FromAccountKey, ToAccountKey, TransferStatusKey } from './domain/search-attributes.js';
import { OUTCOME_FAILURE_PREFIX, validateTransfer, type RepairRequest, type TransferRequest, type TransferResult, type TransferState, type TransferStatus } from './domain/transfer.js';
import { approveUpdate, cancelUpdate, repairUpdate, statusQuery, TRANSFER_WORKFLOW, type ApproveAnswer } from '../workflows/definitions.js';
import { ledgerPicture, type LedgerPicture, type TransferRecords } from './repair.js';
import type { transferWorkflow } from '../workflows/transfer.js';
import { differingFields, parametersOf, storedParameters, TransferIdReusedError, type TransferParameters } from './domain/transfer-reuse.js';

export { TransferIdReusedError } from './domain/transfer-reuse.js';
export type { TransferParameter, TransferParameters } from './domain/transfer-reuse.js';

/** The transfer as clients see it: the fields our CLI prints and `--json` promises. */
export interface TransferView {
  id: string;
  status: TransferStatus;
  from: string;
  to: string;
  amount: string;
  currency: string;
  reason?: string;
  message?: string;
  memo?: string;
  startedAt?: string;
  closedAt?: string;
  result?: TransferResult;
  state?: TransferState;
  /** The workflow run's own status: RUNNING, COMPLETED, TERMINATED, TIMED_OUT, FAILED, … */
  runStatus?: string;
  /** What the ledger holds, read for runs that closed without a result (terminated, timed out, failed). */
  ledger?: LedgerPicture;
}

export interface StartedTransfer {
  id: string;
  handle: WorkflowHandle<typeof transferWorkflow>;
  /** False when the transfer id already existed: the start attached to it instead of paying again. */
  started: boolean;
  /** What the transfer's run was started with (for an existing id: the first request, not this one). */
  request: TransferParameters;
}

/**
 * Starts a transfer, once. Workflow id = transfer id: a start while it runs attaches to the running
 * one; a start after it closed is rejected by the id reuse policy and answers with the first run.
 * Either way the run's stored request must be this request: the same id with another from, to,
 * amount, currency or memo is a TransferIdReusedError, and nothing was started.
 */
export async function startTransfer(client: Client, taskQueue: string, request: TransferRequest & { transferId: string }): Promise<StartedTransfer> {
  const t = validateTransfer(request, request.transferId); // bad input changes nothing: checked before starting
  const requested = parametersOf(t);
  // requestedBy travels with the request (the four-eyes rule needs it) but is not one of the compared parameters.
  const request0 = { transferId: t.transferId, ...requested, ...(t.requestedBy ? { requestedBy: t.requestedBy } : {}) };
  try {
    // FAIL on a running run, REJECT_DUPLICATE on a closed one: a start that returns created this run,
    // with this request, so it needs no second call; every other start lands in the catch below.
    const created = await client.workflow.start<typeof transferWorkflow>(TRANSFER_WORKFLOW, {
      taskQueue,
      workflowId: t.transferId,
      args: [request0],
      memo: { request: request0 }, // what the workflow would otherwise upsert in its first task
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      // A client on a worker's native connection hands the first workflow task straight to that
      // worker: with the ledger steps as local activities, often the whole transfer.
      requestEagerStart: sharesWorkerConnection(client),
      staticSummary: `Transfer ${formatMoney(t.amount, t.currency)} from ${t.from} to ${t.to}`,
      staticDetails: t.memo ? `memo: ${t.memo}` : undefined,
      typedSearchAttributes: [
        { key: TransferStatusKey, value: 'RUNNING' },
        { key: FromAccountKey, value: t.from },
        { key: ToAccountKey, value: t.to },
        { key: CurrencyKey, value: t.currency },
        ...(t.amount <= BigInt(Number.MAX_SAFE_INTEGER) ? [{ key: AmountKey, value: Number(t.amount) }] : []),
      ],
    });
    return { id: t.transferId, handle: created, started: true, request: storedParameters(request0) };
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
  // The id exists (running: this start attaches to it; closed: its outcome stands). Compare with what
  // its run was started with, never with the memo: when two requests race for one id, the loser
  // attaches to a run whose first workflow task (which writes the memo) may not have run yet, and
  // only the start event already holds the winner's request.
  const stored = storedParameters(await startInput(client, t.transferId));
  const fields = differingFields(stored, requested);
  if (fields.length > 0) throw new TransferIdReusedError(t.transferId, fields, stored, requested);
  return { id: t.transferId, handle: client.workflow.getHandle<typeof transferWorkflow>(t.transferId), started: false, request: stored };
}

/** The input of the latest run's WorkflowExecutionStarted event. */
async function startInput(client: Client, workflowId: string): Promise<unknown> {
  const { history } = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId },
    maximumPageSize: 1,
  });
  const attributes = history?.events?.[0]?.workflowExecutionStartedEventAttributes;
  if (!attributes) throw new Error(`transfer ${workflowId}: its run has no start event to compare with`);
  const [input] = await decodeArrayFromPayloads(client.options.loadedDataConverter, attributes.input?.payloads);
  return input;
}

/**
 * How a transfer ended: its run's result when COMPLETED, or the result carried by the typed failure
 * of any other outcome (see OUTCOME_FAILURE_PREFIX). A run that failed otherwise is an error.
 */
export async function transferResult(handle: WorkflowHandle<typeof transferWorkflow>): Promise<TransferResult> {
  try {
    return await handle.result();
  } catch (error) {
    const carried = carriedOutcome(error);
    if (carried) return carried;
    if (error instanceof WorkflowFailedError) throw new Error(`transfer workflow ${handle.workflowId} failed: ${error.cause?.message ?? error.message}`);
    throw error;
  }
}

/** The TransferResult a typed outcome failure carries (undefined for any other error). */
export function carriedOutcome(error: unknown): TransferResult | undefined {
  if (!(error instanceof WorkflowFailedError) || !(error.cause instanceof ApplicationFailure)) return undefined;
  const { type, details } = error.cause;
  if (!type?.startsWith(OUTCOME_FAILURE_PREFIX) || !details?.[0] || typeof details[0] !== 'object') return undefined;
  return details[0] as TransferResult;
}

const STATUS_QUERY_TIMEOUT_MS = 10_000;

export async function describeTransfer(client: Client, id: string, readLedger?: (id: string) => Promise<TransferRecords>): Promise<TransferView> {
  const handle = client.workflow.getHandle<typeof transferWorkflow>(id);
  const description = await handle.describe();
  const memo = (description.memo?.['request'] ?? {}) as Partial<TransferRequest>;
  const attrs = description.typedSearchAttributes;
  const runStatus = description.status.name;
  const base: TransferView = {
    id,
    status: (attrs.get(TransferStatusKey) as TransferStatus | undefined) ?? 'RUNNING',
    from: attrs.get(FromAccountKey) ?? String(memo.from ?? ''),
    to: attrs.get(ToAccountKey) ?? String(memo.to ?? ''),
    amount: String(memo.amount ?? attrs.get(AmountKey) ?? ''),
    currency: attrs.get(CurrencyKey) ?? String(memo.currency ?? ''),
    ...(memo.memo ? { memo: memo.memo } : {}),
    startedAt: description.startTime.toISOString(),
    ...(description.closeTime ? { closedAt: description.closeTime.toISOString() } : {}),
    runStatus,
  };
  const result = runStatus === 'COMPLETED' || runStatus === 'FAILED' ? await transferResult(handle).catch(() => undefined) : undefined;
  if (result) {
    return { ...base, status: result.status, amount: result.amount, ...(result.reason ? { reason: result.reason, message: result.message } : {}), result };
  }
  if (runStatus === 'RUNNING') {
    // The query needs a worker; with none polling it would wait a long time. Bounded, and without an
    // answer the search attribute (kept current by the workflow) still says where the transfer is.
    const state = await client.connection.withDeadline(Date.now() + STATUS_QUERY_TIMEOUT_MS, () => handle.query(statusQuery)).catch((error: Error) => error);
    if (state instanceof Error) return { ...base, message: `status query unanswered (${state.message}); status is from visibility` };
    const why = state.attention ?? state.lastError;
    return { ...base, status: state.status, state, ...(state.attention ? { reason: state.attention.code } : {}), ...(why ? { message: `${why.step}: ${why.message}` } : {}) };
  }
  // Terminated / timed out / failed runs returned no result, and their search attribute stopped where
  // the run stopped. The ledger still tells the truth: say how the run closed and what it holds.
  const reason = `WORKFLOW_${runStatus}`;
  if (!readLedger) return { ...base, status: 'NEEDS_ATTENTION', reason, message: `workflow run ${runStatus}; the ledger was not read` };
  const picture = await readLedger(id).then((records) => ledgerPicture(records, id, base.currency)).catch((error: Error) => error);
  if (picture instanceof Error) return { ...base, status: 'NEEDS_ATTENTION', reason, message: `workflow run ${runStatus}; the ledger could not be read: ${picture.message}` };
  const next = picture.status === 'NEEDS_ATTENTION' ? `; finish it with \`transfer repair ${id} --finish\`` : '';
  return { ...base, status: picture.status, reason, message: `workflow run ${runStatus}; ledger: ${picture.summary}${next}`, ledger: picture };
}

/**
 * Where a just-started transfer stands once its policy was applied: at the approval gate
 * (status AWAITING_APPROVAL) or past it. The threshold is the worker's configuration, so the workflow
 * is asked (its state query, repeated while the step is still 'validate'). Bounded: with no worker
 * polling there is no answer, and undefined.
 */
export async function gateState(client: Client, id: string, withinMs: number): Promise<TransferState | undefined> {
  const deadline = Date.now() + withinMs;
  const handle = client.workflow.getHandle(id);
  while (Date.now() < deadline) {
    const state = await client.connection.withDeadline(deadline, () => handle.query(statusQuery)).catch(() => undefined);
    if (state && state.step !== 'validate') return state;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

export async function cancelTransfer(client: Client, id: string, reason?: string): Promise<TransferResult> {
  const handle = client.workflow.getHandle<typeof transferWorkflow>(id);
  return handle.executeUpdate(cancelUpdate, { args: [{ ...(reason ? { reason } : {}) }] });
}

/** The approve update: answers, or fails with the refusal (not an approver, the requester, not waiting). */
export async function approveTransfer(client: Client, id: string, by?: string): Promise<ApproveAnswer> {
  return client.workflow.getHandle(id).executeUpdate(approveUpdate, { args: [{ ...(by ? { by } : {}) }] });
}

/** An operator's decision on a transfer that NEEDS_ATTENTION; answers with the state that followed. */
export async function repairTransfer(client: Client, id: string, request: RepairRequest): Promise<TransferState> {
  return client.workflow.getHandle(id).executeUpdate(repairUpdate, { args: [request] });
}

/** Visibility query over our search attributes (values are quoted; ids are validated upstream). */
export async function listTransfers(client: Client, filter: { status?: string; account?: string; limit?: number }): Promise<TransferView[]> {
  const clauses = [`WorkflowType = '${TRANSFER_WORKFLOW}'`];
  if (filter.status) clauses.push(`TransferStatus = '${filter.status.replace(/'/g, '')}'`);
  if (filter.account) {
    const a = filter.account.replace(/'/g, '');
    clauses.push(`(FromAccount = '${a}' OR ToAccount = '${a}')`);
  }
  const items: TransferView[] = [];
  for await (const wf of client.workflow.list({ query: clauses.join(' AND ') })) {
    const attrs = wf.typedSearchAttributes;
    items.push({
      id: wf.workflowId,
      status: (attrs.get(TransferStatusKey) as TransferStatus | undefined) ?? 'RUNNING',
      from: attrs.get(FromAccountKey) ?? '',
      to: attrs.get(ToAccountKey) ?? '',
      amount: String(attrs.get(AmountKey) ?? ''),
      currency: attrs.get(CurrencyKey) ?? '',
      startedAt: wf.startTime.toISOString(),
      ...(wf.closeTime ? { closedAt: wf.closeTime.toISOString() } : {}),
    });
    if (items.length >= (filter.limit ?? 100)) break;
  }
  return items;
}

function sharesWorkerConnection(client: Client): boolean {
  return (client.connection as InternalConnectionLike)[InternalConnectionLikeSymbol]?.supportsEagerStart === true;
}
