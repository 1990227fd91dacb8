import { ApplicationFailure, Context } from '@temporalio/activity';
import { COMPENSATION_BLOCKED, Refusal } from '../src/domain/codes.js';
import { RefusalError } from '../src/domain/errors.js';
import { stepKey, type HoldSummary, type TransferPolicy } from '../src/domain/transfer.js';
import type { Ledger } from '../src/ledger/ledger.js';
import type { HoldView } from '../src/ledger/types.js';
import { asActivity } from './errors.js';

/**
 * Thin wrappers over the ledger. Each derives its idempotency key from the transfer id and its own
 * step name, so every attempt of one step carries the same key and no two steps share one.
 */

export interface ActivityLogger {
  /** A step that went through: debug, off the hot path unless LOG_LEVEL=debug asks for it. */
  debug(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface ActivityObserver {
  /** A step's ledger call finished (ms), and whether the ledger replayed an earlier outcome. */
  step(step: string, ms: number, outcome: 'ok' | 'refused' | 'error', replayed: boolean): void;
  compensation(step: string, outcome: string): void;
}

export interface ActivityDeps {
  ledger: Ledger;
  log?: ActivityLogger;
  observer?: ActivityObserver;
  policy: (currency: string) => TransferPolicy;
}

export interface ReserveInput {
  transferId: string;
  account: string;
  amount: string;
  currency: string;
  ttlMs: number;
  /** The other account of the transfer (fingerprinted with the reservation). */
  counterparty: string;
}

export interface HoldInput {
  transferId: string;
  account: string;
  holdKey: string;
}

export interface StepResult {
  hold: HoldSummary;
  replayed: boolean;
  attempt: number;
  postings?: { entryId: string; account: string; amount: string }[];
}

export interface CompensationResult {
  outcome: string;
  replayed: boolean;
  attempt: number;
  /** The hold as the compensation left it (absent when there was none: null compensation). */
  hold?: HoldSummary;
}

function summary(hold: HoldView): HoldSummary {
  return { key: hold.key, side: hold.side, account: hold.accountId, shard: hold.shard, amount: hold.amount, state: hold.state, expiresAt: hold.expiresAt };
}

export function createActivities(deps: ActivityDeps) {
  const { ledger } = deps;
  const noop = () => undefined;
  const log = deps.log ?? { debug: noop, warn: noop };
  const observe = deps.observer ?? { step: noop, compensation: noop };

  async function timed<T extends { replayed: boolean }>(transferId: string, step: string, fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    try {
      const result = await fn();
      observe.step(step, Date.now() - started, 'ok', result.replayed);
      log.debug({ transferId, step, replayed: result.replayed, attempt: attempt() }, result.replayed ? `${step} replayed` : `${step} done`);
      return result;
    } catch (error) {
      const refused = error instanceof RefusalError;
      observe.step(step, Date.now() - started, refused ? 'refused' : 'error', false);
      // A refusal is final and the workflow's outcome line says it (reason and message): debug here.
      // Anything else will be retried, and an operator wants to see it.
      const fields = { transferId, step, attempt: attempt(), code: (error as RefusalError).code, err: (error as Error).message };
      if (refused) log.debug(fields, `${step} refused`);
      else log.warn(fields, `${step} failed`);
      throw error;
    }
  }

  const reserve = (side: 'debit' | 'credit') => (input: ReserveInput): Promise<StepResult> =>
    asActivity(() =>
      timed(input.transferId, `reserve-${side}`, async () => {
        const key = stepKey(input.transferId, `reserve-${side}`);
        const result = await ledger.reserve({ key, transferId: input.transferId, accountId: input.account, side, amount: input.amount, currency: input.currency, ttlMs: input.ttlMs, counterparty: input.counterparty });
        return { hold: summary(result.hold), replayed: result.replayed, attempt: attempt() };
      }),
    );

  const postHold = (side: 'debit' | 'credit') => (input: HoldInput): Promise<StepResult> =>
    asActivity(() =>
      timed(input.transferId, `post-${side}`, async () => {
        const result = await ledger.post({ key: stepKey(input.transferId, `post-${side}`), holdKey: input.holdKey, accountId: input.account, transferId: input.transferId });
        return {
          hold: summary(result.hold!),
          replayed: result.replayed,
          attempt: attempt(),
          postings: result.postings.map((p) => ({ entryId: p.entryId, account: p.accountId, amount: p.amount })),
        };
      }),
    );

  return {
    /** Worker configuration recorded in history, so replay sees the same policy the run saw. */
    async transferPolicy(currency: string): Promise<TransferPolicy> {
      return deps.policy(currency);
    },

    reserveDebit: reserve('debit'),
    reserveCredit: reserve('credit'),
    postDebit: postHold('debit'),
    postCredit: postHold('credit'),

    /**
     * Undo the debit side: void the hold, or refund it if it was posted. Safe before (or instead of)
     * the reservation: the ledger records a tombstone.
     */
    async compensateDebit(input: HoldInput): Promise<CompensationResult> {
      return asActivity(() => compensate(input, 'debit'));
    },

    async compensateCredit(input: HoldInput): Promise<CompensationResult> {
      return asActivity(() => compensate(input, 'credit'));
    },
  };

  /*
   * The refusals a compensation can meet, and why each is impossible, done, or a human's call:
   * - void HOLD_NOT_FOUND (hold on another account): impossible, the account is the transfer's own.
   * - void INVALID_INPUT (key shape): impossible, keys derive from a validated transfer id.
   * - void IDEMPOTENCY_KEY_REUSED (someone else's record under the step key): impossible once keys are
   *   namespaced by operation (the ledger's change for issue 9, hole 4); until then, a human's call.
   * - void HOLD_POSTED: on the debit, the refund below; on the credit, either the transfer's own
   *   post-credit (a lost workflow task finished the transfer before a cancel was accepted: the
   *   failure names that key and the workflow completes instead) or someone outside the saga
   *   (refunding the debit would pay twice over): a human's call.
   * - refund HOLD_NOT_POSTED: impossible, the void just found it posted and a posted hold is final.
   * - refund ALREADY_REFUNDED (refunded under another key, e.g. by `transfer repair --finish`): done.
   * - account status: never refused, granted holds still finish on frozen accounts and a refund into
   *   a closed account lands in the shard's suspense account (the ledger's rule).
   * Anything else is stopped as COMPENSATION_BLOCKED: the workflow shows NEEDS_ATTENTION.
   */
  async function compensate(input: HoldInput, side: 'debit' | 'credit'): Promise<CompensationResult> {
    const voidStep = side === 'debit' ? 'void-debit' : 'void-credit';
    try {
      return await timed(input.transferId, voidStep, async () => {
        try {
          const result = await ledger.void({ key: stepKey(input.transferId, voidStep), holdKey: input.holdKey, accountId: input.account, transferId: input.transferId });
          observe.compensation(voidStep, result.outcome);
          return { outcome: result.outcome, replayed: result.replayed, attempt: attempt(), ...(result.hold ? { hold: summary(result.hold) } : {}) };
        } catch (error) {
          if (side === 'debit' && error instanceof RefusalError && error.code === Refusal.HOLD_POSTED) return refundDebit(input);
          throw error;
        }
      });
    } catch (error) {
      // A refusal will not change by retrying the same key (refusals are sticky): stop and let the
      // workflow surface it for an operator. Transient faults are rethrown and retried without end.
      if (error instanceof RefusalError) throw blocked(input, voidStep, error, error.code === Refusal.HOLD_POSTED ? await postedBy(input) : undefined);
      throw error;
    }
  }

  /**
   * Which key posted a hold the compensation found posted: the transfer's own post step (a lost
   * workflow task finished the transfer, the workflow rolls forward) or someone outside the saga.
   */
  async function postedBy(input: HoldInput): Promise<string | undefined> {
    try {
      const { holds } = await ledger.transferRecords(input.transferId);
      return holds.find((h) => h.key === input.holdKey)?.resolvedBy ?? undefined;
    } catch {
      // Any shard unreachable: not knowing sends the transfer to an operator (whose retry asks
      // again) rather than retrying this compensation with no one told.
      return undefined;
    }
  }

  /** The way back from a posted debit. Already refunded means done: the money is back either way. */
  async function refundDebit(input: HoldInput): Promise<CompensationResult> {
    try {
      // Lands in the account, or in the shard's suspense account if it closed since (see the ledger).
      const refund = await ledger.refund({ key: stepKey(input.transferId, 'refund-debit'), holdKey: input.holdKey, accountId: input.account, transferId: input.transferId });
      observe.compensation('refund-debit', refund.suspense ? 'refunded_to_suspense' : 'refunded');
      return { outcome: 'refunded', replayed: refund.replayed, attempt: attempt() };
    } catch (error) {
      if (!(error instanceof RefusalError) || error.code !== Refusal.ALREADY_REFUNDED) throw error;
      observe.compensation('refund-debit', 'already_refunded');
      return { outcome: 'already_refunded', replayed: true, attempt: attempt() };
    }
  }
}

/**
 * A compensation the ledger refused: non-retryable, so the workflow stops and asks an operator
 * instead of retrying forever. The refusal code travels in the details and the message.
 */
function blocked(input: HoldInput, step: string, refusal: RefusalError, postedBy?: string): ApplicationFailure {
  return ApplicationFailure.create({
    type: COMPENSATION_BLOCKED,
    message: `compensation ${step} of ${input.holdKey} is blocked by ${refusal.code}: ${refusal.message}${postedBy ? ` (posted under ${postedBy})` : ''}`,
    nonRetryable: true,
    details: [{ code: refusal.code, message: refusal.message, ...(postedBy ? { postedBy } : {}) }],
  });
}

function attempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1; // called outside an activity (unit tests)
  }
}

export type TransferActivities = ReturnType<typeof createActivities>;
