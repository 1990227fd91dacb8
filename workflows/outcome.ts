import * as wf from '@temporalio/workflow';
import type { HoldSummary, TransferOutcome, TransferResult } from '../src/domain/transfer.js';
import type { StepFailure } from './failures.js';

/** Marks histories where an expired hold counts as held (COMPENSATED rather than FAILED, hole 7). */
export const HELD_MEANS_COMPENSATED_PATCH = 'held-means-compensated';

/** Compensation outcomes that prove a hold existed (and is released, refunded or settled now). */
const HELD = new Set(['voided', 'refunded', 'already_refunded', 'already_voided', 'already_expired', 'resolved_by_operator']);

/**
 * The outcome after compensating. Rule: FAILED means nothing was ever held; COMPENSATED means
 * something was held or posted and has been released (voided or expired) or refunded; CANCELLED wins
 * when the transfer was cancelled; RESOLVED when an operator settled a compensation by hand.
 */
export function compensatedOutcome(failure: StepFailure, holds: readonly HoldSummary[], compensations: TransferResult['compensations'], resolved: boolean): TransferOutcome {
  if (resolved) return 'RESOLVED'; // only reachable on the NEEDS_ATTENTION path, itself patched
  if (failure.cancelled) return 'CANCELLED';
  if (compensations.some((c) => c.outcome === 'voided' || c.outcome === 'refunded')) return 'COMPENSATED';
  const held = holds.length > 0 || compensations.some((c) => HELD.has(c.outcome));
  // Before the patch a hold that had expired by itself ended FAILED; recorded runs keep that answer.
  return held && wf.patched(HELD_MEANS_COMPENSATED_PATCH) ? 'COMPENSATED' : 'FAILED';
}

/** How each side ended, in one word: posted, pending, voided, expired, refunded, settled by operator, none. */
export function sides(holds: readonly HoldSummary[], compensations: TransferResult['compensations']): { debit: string; credit: string } {
  const side = (which: 'debit' | 'credit'): string => {
    const undo = compensations.filter((c) => (which === 'debit' ? c.step === 'void-debit' || c.step === 'refund-debit' : c.step === 'void-credit'));
    if (undo.some((c) => c.outcome === 'refunded' || c.outcome === 'already_refunded')) return 'refunded';
    if (undo.some((c) => c.outcome === 'resolved_by_operator')) return 'settled by operator';
    const hold = holds.find((h) => h.side === which);
    if (hold) return hold.state;
    if (undo.some((c) => c.outcome === 'already_expired')) return 'expired';
    if (undo.some((c) => c.outcome === 'voided' || c.outcome === 'already_voided')) return 'voided';
    return 'none';
  };
  return { debit: side('debit'), credit: side('credit') };
}
