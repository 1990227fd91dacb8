import { describe, expect, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { after, withTransferWorker } from '../support/control.js';
import type { TestLedger } from '../support/ledger.js';
import { useTimeSkipping } from '../support/temporal.js';
import { activityFailures, expectBalances, expectLedgerClean, openFunded, startTransfer, outcomeOf } from '../support/transfers.js';

let t: TestLedger;
let env: TestWorkflowEnvironment;
useTimeSkipping((ledger, environment) => {
  t = ledger;
  env = environment;
});

/** Rule of thumb for outcomes: FAILED means nothing was ever held; COMPENSATED means something was. */
describe('outcomes say what the ledger holds', () => {
  it('ends COMPENSATED (HOLD_EXPIRED), not FAILED, when both holds expired before posting', async () => {
    const from = await openFunded(t.ledger, 0, 'exp2-from', '900');
    const to = await openFunded(t.ledger, 1, 'exp2-to', '0');
    // The worker stalls past the holds' lifetime and the sweeper releases both.
    const stall = after('reserveCredit', async () => {
      t.clock.advance(60 * 60_000);
      await t.ledger.sweepExpired();
    });
    const result = await withTransferWorker(env, t.ledger, { wrap: stall }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: 'exp2-1', from, to, amount: '900', currency: 'USD' });
      const r = await outcomeOf(handle);
      expect(await activityFailures(handle)).toEqual([{ activity: 'postDebit', type: 'HOLD_EXPIRED', nonRetryable: true, message: expect.any(String) }]);
      return r;
    });
    expect(result).toMatchObject({ status: 'COMPENSATED', reason: 'HOLD_EXPIRED', sides: { debit: 'expired', credit: 'expired' } });
    expect(result.compensations).toEqual([{ step: 'void-credit', outcome: 'already_expired' }, { step: 'void-debit', outcome: 'already_expired' }]);
    await expectBalances(t.ledger, { [from]: { posted: '900' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });

  it('ends COMPENSATED when the debit hold expired and the credit was then refused', async () => {
    const from = await openFunded(t.ledger, 0, 'exp3-from', '500');
    const to = await openFunded(t.ledger, 1, 'exp3-to', '0');
    const stall = after('reserveDebit', async () => {
      t.clock.advance(60 * 60_000);
      await t.ledger.sweepExpired();
      await t.ledger.setStatus(to, 'frozen');
    });
    const result = await withTransferWorker(env, t.ledger, { wrap: stall }, async (taskQueue) => outcomeOf(await startTransfer(env, taskQueue, { transferId: 'exp3-1', from, to, amount: '500', currency: 'USD' })));
    expect(result).toMatchObject({ status: 'COMPENSATED', reason: 'ACCOUNT_FROZEN', compensations: [{ step: 'void-debit', outcome: 'already_expired' }], sides: { debit: 'expired', credit: 'none' } });
    await expectLedgerClean(t.ledger);
  });

  it('still ends FAILED when nothing was ever held, and says so per side', async () => {
    const from = await openFunded(t.ledger, 0, 'none-from', '10');
    const to = await openFunded(t.ledger, 1, 'none-to', '0');
    const result = await withTransferWorker(env, t.ledger, {}, async (taskQueue) => outcomeOf(await startTransfer(env, taskQueue, { transferId: 'none-1', from, to, amount: '11', currency: 'USD' })));
    expect(result).toMatchObject({ status: 'FAILED', reason: 'INSUFFICIENT_FUNDS', compensations: [], sides: { debit: 'none', credit: 'none' } });
  });
});

/**
 * Frozen accounts (decided rule): freezing stops new reservations, deposits and withdrawals; holds
 * already granted can still be posted, voided or refunded, because that money was already committed.
 */
describe('frozen accounts: holds already granted still finish', () => {
  it('completes when the debit account is frozen after its reservation', async () => {
    const from = await openFunded(t.ledger, 0, 'fz-d-from', '1000');
    const to = await openFunded(t.ledger, 1, 'fz-d-to', '0');
    const freeze = after('reserveDebit', async () => {
      await t.ledger.setStatus(from, 'frozen');
    });
    const result = await withTransferWorker(env, t.ledger, { wrap: freeze }, async (taskQueue) => outcomeOf(await startTransfer(env, taskQueue, { transferId: 'fz-d', from, to, amount: '600', currency: 'USD' })));
    expect(result).toMatchObject({ status: 'COMPLETED', sides: { debit: 'posted', credit: 'posted' } });
    expect((await t.ledger.getAccount(from)).status).toBe('frozen');
    await expectBalances(t.ledger, { [from]: { posted: '400' }, [to]: { posted: '600' } });
    await expectLedgerClean(t.ledger);
  });

  it('completes when the credit account is frozen after its reservation', async () => {
    const from = await openFunded(t.ledger, 0, 'fz-c-from', '1000');
    const to = await openFunded(t.ledger, 1, 'fz-c-to', '0');
    const freeze = after('reserveCredit', async () => {
      await t.ledger.setStatus(to, 'frozen');
    });
    const result = await withTransferWorker(env, t.ledger, { wrap: freeze }, async (taskQueue) => outcomeOf(await startTransfer(env, taskQueue, { transferId: 'fz-c', from, to, amount: '250', currency: 'USD' })));
    expect(result.status).toBe('COMPLETED');
    expect((await t.ledger.getAccount(to)).status).toBe('frozen');
    await expectBalances(t.ledger, { [from]: { posted: '750' }, [to]: { posted: '250' } });
    await expectLedgerClean(t.ledger);
  });

  it('refunds into a debit account frozen after its debit was posted', async () => {
    const from = await openFunded(t.ledger, 0, 'fz-r-from', '1000');
    const to = await openFunded(t.ledger, 1, 'fz-r-to', '0');
    const freezeAndStall = after('postDebit', async () => {
      await t.ledger.setStatus(from, 'frozen');
      t.clock.advance(16 * 60_000); // the credit hold expires: post-credit is refused
    });
    const result = await withTransferWorker(env, t.ledger, { wrap: freezeAndStall }, async (taskQueue) => outcomeOf(await startTransfer(env, taskQueue, { transferId: 'fz-r', from, to, amount: '700', currency: 'USD' })));
    expect(result).toMatchObject({ status: 'COMPENSATED', reason: 'HOLD_EXPIRED', sides: { debit: 'refunded', credit: 'expired' } });
    expect(result.compensations).toEqual([{ step: 'void-credit', outcome: 'already_expired' }, { step: 'refund-debit', outcome: 'refunded' }]);
    await expectBalances(t.ledger, { [from]: { posted: '1000' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });
});
