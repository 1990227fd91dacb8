import * as wf from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { HoldInput, ReserveInput, StepResult, TransferActivities } from '../activities/index.js';
import { Refusal } from '../src/domain/codes.js';
import { RefusalError } from '../src/domain/errors.js';
import { formatMoney } from '../src/domain/money.js';
import { AmountKey, CurrencyKey, FromAccountKey, ToAccountKey, TransferStatusKey } from '../src/domain/search-attributes.js';
import {
  outcomeFailureType,
  stepKey,
  type StepName,
  type StepRecord,
  type TransferOutcome,
  type TransferRequest,
  type TransferResult,
  type TransferState,
  type TransferStatus,
  type ValidTransfer,
  validateCancelRequest,
  validateTransfer,
} from '../src/domain/transfer.js';
import { installApprovalGate } from './approval.js';
import { Compensator, type Compensation } from './compensation.js';
import { cancelUpdate, statusQuery, type CancelRequest } from './definitions.js';
import { blockedBy, describeFailure, type StepFailure } from './failures.js';
import { compensatedOutcome, sides } from './outcome.js';
import type { TransferSinks } from './sinks.js';
import { COMPENSATION_OPTIONS, LOCAL_POST_OPTIONS, LOCAL_RESERVE_OPTIONS, POLICY_OPTIONS, POST_OPTIONS, RESERVE_OPTIONS } from './policies.js';

/** Marks histories where a cancel or timeout during approval runs the voids (tombstones, hole 7). */
export const APPROVAL_TOMBSTONES_PATCH = 'approval-cancel-tombstones';
/**
 * Marks histories on the fast path: the four ledger steps run as local activities, and the memo and
 * search attributes the client already set at start are not upserted again. Older histories replay
 * with activity tasks and their upserts.
 */
export const FAST_PATH_PATCH = 'local-ledger-steps';
/** Marks histories where an outcome other than COMPLETED closes the run as Failed (typed, carrying the result). */
export const TYPED_OUTCOME_PATCH = 'outcome-as-typed-failure';
/**
 * Marks histories where an unwind of the reserve phase voids both sides. A ledger step that runs as a
 * local activity leaves no trace in history until its workflow task completes: a task that was lost
 * (its worker killed, its completion refused) may have reserved the credit side although the history
 * the next worker replays stops before it. So both voids are on the stack from the start; a void
 * with nothing to void leaves a tombstone, which also fences that reservation if it lands later.
 */
export const VOID_BOTH_SIDES_PATCH = 'reserve-phase-voids-both-sides';
/**
 * Marks histories where an unwind that finds the credit posted by the transfer's own post-credit
 * completes the transfer instead of stopping for an operator. A lost workflow task can run all four
 * local ledger steps; a cancel accepted by the next worker (its replayed history shows nothing done)
 * then unwinds a transfer the ledger has already completed. Post-credit runs only after post-debit
 * succeeded, so both posts replay their stored outcomes and the transfer ends COMPLETED.
 */
export const ROLL_FORWARD_PATCH = 'unwind-rolls-forward-when-posted';

const policy = wf.proxyLocalActivities<TransferActivities>(POLICY_OPTIONS);
const reserving = wf.proxyActivities<TransferActivities>(RESERVE_OPTIONS);
const posting = wf.proxyActivities<TransferActivities>(POST_OPTIONS);
const reservingLocally = wf.proxyLocalActivities<TransferActivities>(LOCAL_RESERVE_OPTIONS);
const postingLocally = wf.proxyLocalActivities<TransferActivities>(LOCAL_POST_OPTIONS);
const compensating = wf.proxyActivities<TransferActivities>(COMPENSATION_OPTIONS);
const { transferMetrics } = wf.proxySinks<TransferSinks>();

/**
 * One transfer as a saga: reserve debit → reserve credit → post debit → post credit.
 * Debit before credit: a hold can be released, a spent credit cannot. Each compensation is pushed
 * before its step runs (an answer that never arrived may still have committed; a void with nothing
 * to void is safe) and the stack unwinds in reverse, in a scope nothing can cancel.
 */
export async function transferWorkflow(input: TransferRequest): Promise<TransferResult> {
  const { workflowId } = wf.workflowInfo();
  const fast = wf.patched(FAST_PATH_PATCH);
  // Every later patch is decided here, before any local activity: on replay the SDK resolves a local
  // activity from its marker early, so a patch first asked right after one can miss its own marker.
  const typedOutcome = fast && wf.patched(TYPED_OUTCOME_PATCH);
  const bothSides = fast && wf.patched(VOID_BOTH_SIDES_PATCH);
  const rollsForward = fast && wf.patched(ROLL_FORWARD_PATCH);
  const state: TransferState = { transferId: workflowId, status: 'RUNNING', step: 'validate', holds: [], attempts: {}, cancellable: true, awaitingApproval: false };
  const steps: StepRecord[] = [];
  const postings: TransferResult['postings'] = [];
  const compensations: TransferResult['compensations'] = [];
  let cancelReason: string | undefined;
  const reservePhase = new wf.CancellationScope();

  function record(step: StepRecord['step'], result: { attempt: number; replayed: boolean } | undefined, startedAt: number, outcome: StepRecord['outcome'], detail?: string) {
    steps.push({ step, startedAt: new Date(startedAt).toISOString(), finishedAt: new Date(Date.now()).toISOString(), outcome, ...(detail ? { detail } : {}), ...(result ? { attempt: result.attempt, replayed: result.replayed } : {}) });
    if (result) state.attempts[step] = result.attempt;
  }
  const setStatus = (status: TransferStatus) => {
    state.status = status;
    if (fast && wf.workflowInfo().typedSearchAttributes.get(TransferStatusKey) === status) return; // already so
    wf.upsertSearchAttributes([{ key: TransferStatusKey, value: status }]);
  };

  wf.setHandler(statusQuery, () => state);
  const approval = installApprovalGate(state, (by, reason) => record('approval', undefined, Date.now(), 'refused', `approval${by ? ` by ${by}` : ''} refused: ${reason}`));
  // Histories with the roll-forward patch always stop for an operator and never ask the older patch:
  // asked first after the roll-forward's local activities, it could miss its marker on replay.
  const compensator = new Compensator({ state, setStatus, record, compensations, ...(rollsForward ? { stopsForOperator: true } : {}) });
  wf.setHandler(
    cancelUpdate,
    async (request: CancelRequest) => {
      // `temporal workflow update execute --name cancel` may send no argument at all.
      cancelReason = request?.reason ?? 'cancelled by request';
      reservePhase.cancel();
      await wf.condition(() => state.result !== undefined);
      return state.result!;
    },
    {
      validator: (request: CancelRequest) => {
        validateCancelRequest(request); // a bad request is rejected here and cancels nothing
        if (!state.cancellable) {
          throw new Error(state.result ? `transfer ${workflowId} already ended ${state.result.status}` : `transfer ${workflowId} is already posting the debit; it can no longer be cancelled`);
        }
      },
    },
  );
  if (!fast || JSON.stringify(wf.workflowInfo().memo?.['request']) !== JSON.stringify(input)) wf.upsertMemo({ request: input });

  let t: ValidTransfer;
  try {
    t = validateTransfer(input, workflowId);
  } catch (error) {
    if (!(error instanceof RefusalError)) throw error;
    return finish('FAILED', { type: error.code, message: error.message, refusal: true, cancelled: false }, invalidResult(workflowId, input));
  }
  const attributes: SearchAttributeUpdatePair[] = [
    { key: TransferStatusKey, value: 'RUNNING' },
    { key: FromAccountKey, value: t.from },
    { key: ToAccountKey, value: t.to },
    { key: CurrencyKey, value: t.currency },
    ...(t.amount <= BigInt(Number.MAX_SAFE_INTEGER) ? [{ key: AmountKey, value: Number(t.amount) }] : []),
  ];
  // Clients of this package set them at start; a bare `temporal workflow start` does not.
  const current = wf.workflowInfo().typedSearchAttributes;
  const missing = fast ? attributes.filter((a) => current.get(a.key as never) !== a.value) : attributes;
  if (missing.length > 0) wf.upsertSearchAttributes(missing);
  const money = formatMoney(t.amount, t.currency);
  const base = { transferId: t.transferId, from: t.from, to: t.to, amount: t.amount.toString(), currency: t.currency, ...(t.memo ? { memo: t.memo } : {}) };

  async function step(name: StepName, run: () => Promise<StepResult>): Promise<StepResult> {
    state.step = name;
    wf.setCurrentDetails(`${name}: ${money} from ${t.from} to ${t.to}`);
    const startedAt = Date.now();
    try {
      const result = await run();
      record(name, result, startedAt, 'ok');
      state.holds = [...state.holds.filter((h) => h.key !== result.hold.key), result.hold];
      for (const p of result.postings ?? []) postings.push({ step: name, ...p });
      return result;
    } catch (error) {
      const failure = describeFailure(error);
      record(name, undefined, startedAt, failure.cancelled ? 'cancelled' : failure.refusal ? 'refused' : 'failed', `${failure.type}: ${failure.message}`);
      state.lastError = { step: name, type: failure.type, message: failure.message };
      throw error;
    }
  }

  /** A ledger step as a local activity on the fast path, as an activity task in older histories. */
  function ledgerStep(name: 'reserveDebit' | 'reserveCredit', summary: string, input: ReserveInput): Promise<StepResult>;
  function ledgerStep(name: 'postDebit' | 'postCredit', summary: string, input: HoldInput): Promise<StepResult>;
  function ledgerStep(name: 'reserveDebit' | 'reserveCredit' | 'postDebit' | 'postCredit', summary: string, input: ReserveInput | HoldInput): Promise<StepResult> {
    const reserve = name === 'reserveDebit' || name === 'reserveCredit';
    const run = (fast ? (reserve ? reservingLocally : postingLocally) : reserve ? reserving : posting)[name] as (typeof reserving)['postDebit'];
    return run.executeWithOptions({ summary }, [input as HoldInput]);
  }

  const debitHold = { transferId: t.transferId, account: t.from, holdKey: stepKey(t.transferId, 'reserve-debit') };
  const creditHold = { transferId: t.transferId, account: t.to, holdKey: stepKey(t.transferId, 'reserve-credit') };
  const voidDebit: Compensation = { name: 'void-debit', run: () => compensating.compensateDebit.executeWithOptions({ summary: `release ${money} held on ${t.from}` }, [debitHold]) };
  const voidCredit: Compensation = {
    name: 'void-credit',
    run: () => compensating.compensateCredit.executeWithOptions({ summary: `release ${money} reserved for ${t.to}` }, [creditHold]),
    ...(rollsForward ? { rollForward: completeInstead } : {}),
  };

  /** Debit first: post-credit runs only once the debit is posted (the roll forward relies on it). */
  async function postBothSides(): Promise<void> {
    await step('post-debit', () => ledgerStep('postDebit', `post ${money} debit on ${t.from}`, debitHold));
    await step('post-credit', () => ledgerStep('postCredit', `post ${money} credit to ${t.to}`, creditHold));
  }

  /** The credit was posted by this transfer's own post-credit: finish the transfer, do not undo it. */
  async function completeInstead(error: unknown, startedAt: number): Promise<boolean> {
    const refusal = blockedBy(error);
    if (refusal.code !== Refusal.HOLD_POSTED || refusal.postedBy !== stepKey(t.transferId, 'post-credit')) return false;
    record('void-credit', undefined, startedAt, 'refused', `${refusal.code}: this transfer already posted the credit (a workflow task lost after it finished); completing instead`);
    try {
      await postBothSides();
    } catch {
      return false; // cannot happen (post-credit runs only after post-debit succeeded): an operator decides
    }
    state.lastError = undefined; // the cancelled step that started the unwind no longer describes the transfer
    return true;
  }

  // Approval gate for large amounts: the policy comes from worker configuration, recorded in history.
  const rules = await policy.transferPolicy(t.currency);
  if (rules.approvalThreshold !== null && t.amount >= BigInt(rules.approvalThreshold)) {
    const startedAt = Date.now();
    approval.setRules(rules, t.requestedBy);
    setStatus('AWAITING_APPROVAL');
    state.awaitingApproval = true;
    state.step = 'approval';
    wf.setCurrentDetails(`waiting for approval of ${money} (auto-cancels after ${Math.round(rules.approvalTimeoutMs / 60_000)} min)`);
    let decided = false;
    let interrupted = false;
    try {
      decided = await reservePhase.run(() => wf.condition(() => approval.approved || cancelReason !== undefined, rules.approvalTimeoutMs));
    } catch (error) {
      if (!wf.isCancellation(error)) throw error;
      interrupted = true; // the cancel update or a workflow cancellation, not the timer
    }
    state.awaitingApproval = false;
    if (!approval.approved) {
      const timedOut = !decided && !interrupted && cancelReason === undefined;
      record('approval', undefined, startedAt, 'cancelled', timedOut ? 'approval timed out' : cancelReason);
      const failure = timedOut
        ? { type: Refusal.APPROVAL_TIMEOUT, message: `not approved within ${rules.approvalTimeoutMs} ms`, refusal: true, cancelled: true }
        : { type: Refusal.CANCELLED, message: cancelReason ?? 'workflow cancelled', refusal: false, cancelled: true };
      if (wf.patched(APPROVAL_TOMBSTONES_PATCH)) {
        // Nothing was reserved, but a reservation may still arrive (a run forced past the id policy,
        // an abandoned attempt): the voids leave tombstones under both hold keys, so it is FENCED.
        state.cancellable = false;
        const end = await wf.CancellationScope.nonCancellable(() => compensator.unwind([voidDebit, voidCredit], failure.type));
        if (end === 'rolled-forward') return finish('COMPLETED', undefined, base);
      }
      return finish(compensator.resolution ? 'RESOLVED' : 'CANCELLED', failure, base);
    }
    record('approval', undefined, startedAt, 'ok', approval.approvedBy ? `approved by ${approval.approvedBy}` : 'approved');
    setStatus('RUNNING');
  }

  const stack: Compensation[] = [];
  const reserveInput = { transferId: t.transferId, amount: t.amount.toString(), currency: t.currency, ttlMs: rules.holdTtlMs };

  let failure: StepFailure | undefined;
  try {
    await reservePhase.run(async () => {
      stack.push(voidDebit);
      if (bothSides) stack.push(voidCredit);
      // A refused debit reservation wrote nothing, and nothing after it ran in any task: no voids.
      await guarded(stack, () => step('reserve-debit', () => ledgerStep('reserveDebit', `reserve ${money} on ${t.from}`, { ...reserveInput, account: t.from, counterparty: t.to })), bothSides ? 2 : 1);
      if (!bothSides) stack.push(voidCredit);
      await guarded(stack, () => step('reserve-credit', () => ledgerStep('reserveCredit', `reserve ${money} credit on ${t.to}`, { ...reserveInput, account: t.to, counterparty: t.from })));
    });
    if (cancelReason !== undefined) throw new wf.CancelledFailure(cancelReason);
    // From here the transfer finishes: the cancel update is rejected and workflow cancellation waits.
    state.cancellable = false;
    await wf.CancellationScope.nonCancellable(postBothSides);
  } catch (error) {
    failure = describeFailure(error);
    if (cancelReason !== undefined && failure.cancelled) failure = { ...failure, type: Refusal.CANCELLED, message: cancelReason };
  }

  if (!failure) return finish('COMPLETED', undefined, base);

  state.cancellable = false;
  setStatus('COMPENSATING');
  const cause = failure.type;
  const end = await wf.CancellationScope.nonCancellable(() => compensator.unwind(stack, cause));
  if (end === 'rolled-forward') return finish('COMPLETED', undefined, base);
  return finish(compensatedOutcome(failure, state.holds, compensations, compensator.resolution !== undefined), failure, base);

  async function finish(status: TransferOutcome, why: StepFailure | undefined, fields: Omit<TransferResult, 'status' | 'holds' | 'postings' | 'compensations' | 'steps'>): Promise<TransferResult> {
    const result: TransferResult = {
      ...fields,
      status,
      ...(why ? { reason: why.type, message: why.message } : {}),
      holds: state.holds,
      postings,
      compensations,
      steps,
      sides: sides(state.holds, compensations),
      ...(compensator.resolution ? { resolution: compensator.resolution } : {}),
    };
    state.cancellable = false;
    state.step = 'done';
    state.result = result;
    setStatus(status);
    transferMetrics.outcome(status, why?.type ?? '', { from: result.from, to: result.to, amount: result.amount, currency: result.currency, ...(why ? { message: why.message } : {}), ...(steps.some((s) => s.step === 'post-debit' && s.replayed) ? { replayed: true } : {}) });
    wf.setCurrentDetails(`${status}${why ? `: ${why.type}` : ''}`);
    // Let a waiting cancel or repair update return its answer before the run closes (not
    // cancellable: after a workflow cancellation the transfer still reports how it ended).
    await wf.CancellationScope.nonCancellable(() => wf.condition(wf.allHandlersFinished));
    if (status !== 'COMPLETED' && typedOutcome) {
      throw wf.ApplicationFailure.create({ type: outcomeFailureType(status), message: outcomeMessage(result), nonRetryable: true, details: [result] });
    }
    return result;
  }
}

/**
 * Runs a reservation; on a definitive refusal the step wrote nothing, so its compensation (pushed
 * just before; `drop` of them when later steps' voids were pushed with it) is dropped. It must be: a reused key means the hold under it belongs to another
 * request, which this transfer must never void.
 */
async function guarded(stack: Compensation[], run: () => Promise<unknown>, drop = 1): Promise<void> {
  try {
    await run();
  } catch (error) {
    const failure = describeFailure(error);
    if (failure.refusal) stack.splice(stack.length - drop, drop);
    throw error;
  }
}

/** What the Web UI shows as the failure of a transfer that did not complete. */
function outcomeMessage(result: TransferResult): string {
  const what = `${result.status}${result.reason && result.reason !== result.status ? ` (${result.reason})` : ''}`;
  return `${what}: ${result.message ?? 'see the result'}; money: debit ${result.sides?.debit ?? '-'}, credit ${result.sides?.credit ?? '-'}`;
}

function invalidResult(transferId: string, input: unknown): Omit<TransferResult, 'status' | 'holds' | 'postings' | 'compensations' | 'steps'> {
  const req = (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v));
  return { transferId, from: text(req['from']), to: text(req['to']), amount: text(req['amount']), currency: text(req['currency']) };
}
