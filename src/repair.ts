import { clearingAccountId } from './domain/accounts.js';
import { Refusal } from './domain/codes.js';
import { RefusalError } from './domain/errors.js';
import { formatMoney } from './domain/money.js';
import { stepKey, type CompensationName, type StepName, type TransferStatus } from './domain/transfer.js';
import type { Ledger } from './ledger/ledger.js';
import type { HoldView, PostingView } from './ledger/types.js';

/**
 * What the ledger holds for one transfer, read when its workflow run can no longer say (terminated,
 * timed out, failed), and how to finish such a transfer from the ledger alone. Only ever used on a
 * closed run: while a run is open the workflow owns these steps.
 */

export type TransferRecords = { holds: HoldView[]; postings: PostingView[] };

/** One side in the ledger's words: none, pending, posted, refunded, voided, expired. */
export type SideState = 'none' | HoldView['state'] | 'refunded';

export interface LedgerPicture {
  debit: SideState;
  credit: SideState;
  /** Minor units this transfer left in clearing (debit posted and not refunded, minus credit posted). */
  inClearing: string;
  currency: string;
  /** The transfer's status as the ledger alone implies it. */
  status: TransferStatus;
  /** e.g. "debit posted, credit pending: 12.34 USD in clearing" */
  summary: string;
}

function sideOf(records: TransferRecords, transferId: string, side: 'debit' | 'credit'): SideState {
  // By side, not by key text: a transfer has at most one hold per side (its reservation key is
  // `<transferId>:reserve-<side>`), and how the ledger spells keys inside is the ledger's business.
  const hold = records.holds.find((h) => h.transferId === transferId && h.side === side);
  if (!hold) return 'none';
  if (hold.state === 'posted' && records.postings.some((p) => p.kind === 'refund' && p.holdKey === hold.key)) return 'refunded';
  return hold.state;
}

export function ledgerPicture(records: TransferRecords, transferId: string, currency: string): LedgerPicture {
  const debit = sideOf(records, transferId, 'debit');
  const credit = sideOf(records, transferId, 'credit');
  const clearing = clearingAccountId(currency);
  const inClearing = records.postings.filter((p) => p.accountId === clearing).reduce((sum, p) => sum + BigInt(p.amount), 0n);
  // COMPLETED: both posted. NEEDS_ATTENTION: a hold is still pending or money sits in clearing (the
  // repair command finishes it). COMPENSATED: something was held and is released or refunded.
  // FAILED: nothing was ever held.
  const status: TransferStatus =
    debit === 'posted' && credit === 'posted' && inClearing === 0n ? 'COMPLETED'
      : debit === 'pending' || credit === 'pending' || inClearing !== 0n ? 'NEEDS_ATTENTION'
        : debit === 'none' && credit === 'none' ? 'FAILED'
          : 'COMPENSATED';
  const where = inClearing === 0n ? '' : inClearing > 0n ? `: ${formatMoney(inClearing, currency)} in clearing` : `: clearing short by ${formatMoney(-inClearing, currency)}`;
  return { debit, credit, inClearing: inClearing.toString(), currency, status, summary: `debit ${debit}, credit ${credit}${where}` };
}

export interface FinishStep {
  step: StepName | CompensationName;
  outcome: string;
}

export interface FinishReport {
  before: LedgerPicture;
  after: LedgerPicture;
  steps: FinishStep[];
  /** Set when the ledger refused a step: a human has to look (nothing after it was attempted). */
  blocked?: { step: string; code: string; message: string };
}

/**
 * Finishes a transfer whose run is closed, from the ledger, with the saga's own step keys (so a step
 * the run already did replays instead of repeating): with the debit posted, post the credit if its
 * hold is still pending and the ledger accepts it (unexpired); otherwise void the credit side and
 * refund the debit. With the debit not posted, void both sides (a missing hold gets a tombstone, so a
 * late reservation is fenced). The caller guarantees the run is closed.
 */
export async function finishFromLedger(ledger: Ledger, transfer: { transferId: string; from: string; to: string; currency: string }): Promise<FinishReport> {
  const { transferId: id, from, to, currency } = transfer;
  const before = ledgerPicture(await ledger.transferRecords(id), id, currency);
  const steps: FinishStep[] = [];
  const at = { step: 'post-credit' }; // the step being attempted, named if the ledger refuses it
  const hold = (side: 'debit' | 'credit') => stepKey(id, side === 'debit' ? 'reserve-debit' : 'reserve-credit');
  const report = async (blocked?: FinishReport['blocked']): Promise<FinishReport> => ({
    before,
    after: ledgerPicture(await ledger.transferRecords(id), id, currency),
    steps,
    ...(blocked ? { blocked } : {}),
  });

  try {
    if (before.debit === 'posted' && before.credit === 'posted') return await report();
    if (before.debit === 'posted' && before.credit === 'pending') {
      try {
        const posted = await ledger.post({ key: stepKey(id, 'post-credit'), holdKey: hold('credit'), accountId: to, transferId: id });
        steps.push({ step: 'post-credit', outcome: posted.replayed ? 'replayed' : 'posted' });
        return await report();
      } catch (error) {
        if (!(error instanceof RefusalError) || error.code !== Refusal.HOLD_EXPIRED) throw error;
        steps.push({ step: 'post-credit', outcome: 'expired' }); // too late to pay: undo instead
      }
    }
    at.step = 'void-credit';
    const voidCredit = await ledger.void({ key: stepKey(id, 'void-credit'), holdKey: hold('credit'), accountId: to, transferId: id });
    steps.push({ step: 'void-credit', outcome: voidCredit.outcome });
    await undoDebit(ledger, id, from, hold('debit'), steps, at);
    return await report();
  } catch (error) {
    if (!(error instanceof RefusalError)) throw error;
    return report({ step: at.step, code: error.code, message: error.message });
  }
}

/** The debit side of the unwind, as the saga's compensateDebit does it: void, or refund a posted debit. */
async function undoDebit(ledger: Ledger, id: string, from: string, holdKey: string, steps: FinishStep[], at: { step: string }): Promise<void> {
  at.step = 'void-debit';
  try {
    const voided = await ledger.void({ key: stepKey(id, 'void-debit'), holdKey, accountId: from, transferId: id });
    steps.push({ step: 'void-debit', outcome: voided.outcome });
    return;
  } catch (error) {
    if (!(error instanceof RefusalError) || error.code !== Refusal.HOLD_POSTED) throw error;
  }
  at.step = 'refund-debit';
  try {
    const refund = await ledger.refund({ key: stepKey(id, 'refund-debit'), holdKey, accountId: from, transferId: id });
    steps.push({ step: 'refund-debit', outcome: refund.replayed ? 'replayed' : refund.suspense ? 'refunded_to_suspense' : 'refunded' });
  } catch (error) {
    // Already refunded means done: the money is back either way.
    if (!(error instanceof RefusalError) || error.code !== Refusal.ALREADY_REFUNDED) throw error;
    steps.push({ step: 'refund-debit', outcome: 'already_refunded' });
  }
}
