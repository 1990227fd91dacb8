import { fingerprint, runStep } from './barrier.js';
import { stepArgs, type ShardContext } from './shard-context.js';
import type { EntryResult, HoldResult, HoldSide, HoldView, PostingView, VoidOutcome, VoidResult } from './types.js';

export interface Reserve {
  /** Idempotency key of this reservation; also the hold's key. */
  key: string;
  transferId: string;
  accountId: string;
  side: HoldSide;
  amount: bigint;
  currency: string;
  /** How long the hold may stay pending before the sweeper releases it. */
  ttlMs: number;
  /**
   * The other side of the transfer. Part of the fingerprint so that a second start of a transfer id
   * with a different destination is a reused key, not a replay of someone else's hold.
   */
  counterparty?: string;
}

/**
 * Two-phase reservation (`ledger_reserve`). A debit hold raises pending debits (so available falls,
 * checked by the database constraint); a credit hold raises pending credits (nothing is spendable
 * until posted).
 */
export async function reserve(ctx: ShardContext, input: Reserve): Promise<HoldResult> {
  const operation = `reserve-${input.side}`;
  const print = fingerprint(operation, {
    transfer: input.transferId,
    account: input.accountId,
    amount: input.amount.toString(),
    currency: input.currency,
    counterparty: input.counterparty ?? null,
  });
  const result = await runStep<{ hold: HoldView }>(ctx, 'ledger_reserve', [
    ...stepArgs(ctx, input.key, print),
    { value: input.transferId, type: 'text' },
    { value: input.accountId, type: 'text' },
    { value: input.side, type: 'text' },
    { value: input.amount.toString(), type: 'bigint' },
    { value: input.currency, type: 'text' },
    { value: input.ttlMs, type: 'bigint' },
  ]);
  return { key: input.key, operation, replayed: result.replayed, hold: result.outcome.hold };
}

/**
 * Which hold an operation acts on, and (when known) the account and transfer the caller believes it
 * belongs to: a caller naming the wrong account or transfer must never act on someone else's hold.
 */
export interface HoldRef {
  key: string;
  holdKey: string;
  accountId?: string;
  transferId?: string;
}

/** A post, void or refund: the arguments every hold step takes, in the functions' order. */
function holdArgs(ctx: ShardContext, operation: string, input: HoldRef) {
  return [
    ...stepArgs(ctx, input.key, fingerprint(operation, { hold: input.holdKey })),
    { value: input.holdKey, type: 'text' },
    { value: input.accountId ?? null, type: 'text' },
    { value: input.transferId ?? null, type: 'text' },
  ];
}

/**
 * Posts a pending hold (`ledger_post`), moving the money through the shard's clearing account: a
 * debit goes account → clearing, a credit clearing → account. Each shard balances alone; clearing
 * nets to zero across shards once both sides are posted. A hold found past its expiry is expired
 * (and released) by the post, which is refused HOLD_EXPIRED.
 */
export async function post(ctx: ShardContext, input: HoldRef): Promise<EntryResult> {
  const result = await runStep<{ hold: HoldView; postings: PostingView[] }>(ctx, 'ledger_post', holdArgs(ctx, 'post', input));
  return { key: input.key, operation: 'post', replayed: result.replayed, hold: result.outcome.hold, postings: result.outcome.postings };
}

/**
 * Voids a reservation (`ledger_void`). Safe in every order: with no reservation yet it leaves a
 * tombstone under the reservation's key (null compensation), so a reservation arriving later is
 * fenced and does nothing.
 */
export async function voidHold(ctx: ShardContext, input: HoldRef): Promise<VoidResult> {
  const result = await runStep<{ outcome: VoidOutcome; hold?: HoldView }>(ctx, 'ledger_void', [
    ...holdArgs(ctx, 'void', input),
    { value: fingerprint('tombstone', { by: input.key }), type: 'text' },
  ]);
  return {
    key: input.key,
    operation: 'void',
    replayed: result.replayed,
    outcome: result.outcome.outcome,
    ...(result.outcome.hold ? { hold: result.outcome.hold } : {}),
  };
}

/**
 * The way back from a posted debit (`ledger_refund`): a new balancing entry (clearing → account),
 * never an edit. A refund always lands: on a frozen account it lands as usual (the money is the
 * customer's; freezing stops new spending, not restitution), and when the account was closed after
 * the debit was posted it lands in the shard's suspense account, listed by `verify` until an
 * operator releases it.
 */
export async function refund(ctx: ShardContext, input: HoldRef): Promise<EntryResult> {
  const result = await runStep<{ postings: PostingView[]; suspense?: boolean }>(ctx, 'ledger_refund', holdArgs(ctx, 'refund', input));
  return {
    key: input.key,
    operation: 'refund',
    replayed: result.replayed,
    postings: result.outcome.postings,
    ...(result.outcome.suspense ? { suspense: true } : {}),
  };
}
