import { describe, expect, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { TransferActivities } from '../../activities/index.js';
import type { TransferState } from '../../src/domain/transfer.js';
import { cancelUpdate, statusQuery } from '../../workflows/definitions.js';
import { fenced, pauseBefore, waitFor, withTransferWorker } from '../support/control.js';
import type { TestLedger } from '../support/ledger.js';
import { Latch, useDevServer } from '../support/temporal.js';
import { completeOutsideTheSaga, expectBalances, expectLedgerClean, openFunded, outcomeOf, postCreditOutsideTheSaga, startTransfer } from '../support/transfers.js';

let t: TestLedger;
let env: TestWorkflowEnvironment;
useDevServer((ledger, environment) => {
  t = ledger;
  env = environment;
});

/**
 * Cancels that abandon an activity mid-flight, on the real dev server. The abandoned attempt later
 * reaches the ledger after its compensation and must be fenced. (The Java time-skipping server keeps
 * time locked after a cancelled activity's late completion, so these do not run there.)
 */
/** A held step keeps its workflow task open; the cancel arrives at the task's next heartbeat. */
const HELD_STEP = { workflowTaskTimeout: '2s' };

describe('cancel while a reservation is in flight', () => {
  it('cancels during the debit reservation: the void leaves a tombstone and the late reservation is fenced', async () => {
    const from = await openFunded(t.ledger, 0, 'c-rd-from', '1000');
    const to = await openFunded(t.ledger, 1, 'c-rd-to', '0');
    const latch = new Latch();
    const result = await withTransferWorker(env, t.ledger, { wrap: pauseBefore('reserveDebit', latch) }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: 'cancel-rd', from, to, amount: '700', currency: 'USD' }, HELD_STEP);
      await latch.reached;
      expect(await handle.query(statusQuery)).toMatchObject({ status: 'RUNNING', step: 'reserve-debit', cancellable: true });
      const answer = await handle.executeUpdate(cancelUpdate, { args: [{}] });
      latch.open(); // the abandoned attempt now reaches the ledger, after its compensation
      return answer;
    });
    // Both sides are voided: a lost workflow task may have reserved the credit already (local
    // activities), so the credit gets a tombstone too.
    expect(result).toMatchObject({ status: 'CANCELLED', reason: 'CANCELLED', compensations: [{ step: 'void-credit', outcome: 'null_compensation' }, { step: 'void-debit', outcome: 'null_compensation' }] });
    await waitFor(async () => (await t.ledger.transferRecords('cancel-rd')).holds.length === 0 && (await fenced(t.ledger, from, 'cancel-rd')));
    expect(await fenced(t.ledger, to, 'cancel-rd', 'credit')).toBe(true);
    await expectBalances(t.ledger, { [from]: { posted: '1000' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });
  it('cancels during the credit reservation: both sides are released', async () => {
    const from = await openFunded(t.ledger, 0, 'c-rc-from', '1000');
    const to = await openFunded(t.ledger, 1, 'c-rc-to', '0');
    const latch = new Latch();
    const result = await withTransferWorker(env, t.ledger, { wrap: pauseBefore('reserveCredit', latch) }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: 'cancel-rc', from, to, amount: '250', currency: 'USD' }, HELD_STEP);
      await latch.reached;
      const state: TransferState = await handle.query(statusQuery);
      expect(state).toMatchObject({ step: 'reserve-credit', holds: [{ side: 'debit', state: 'pending', amount: '250' }] });
      await expectBalances(t.ledger, { [from]: { posted: '1000', pendingDebits: '250' } });
      const answer = await handle.executeUpdate(cancelUpdate, { args: [{ reason: 'operator' }] });
      latch.open();
      return answer;
    });
    expect(result.status).toBe('CANCELLED');
    expect(result.compensations).toEqual([{ step: 'void-credit', outcome: 'null_compensation' }, { step: 'void-debit', outcome: 'voided' }]);
    await waitFor(() => fenced(t.ledger, to, 'cancel-rc', 'credit'));
    await expectBalances(t.ledger, { [from]: { posted: '1000' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });
  it('workflow cancellation during reservation compensates and ends CANCELLED', async () => {
    const from = await openFunded(t.ledger, 0, 'c-wf-from', '1000');
    const to = await openFunded(t.ledger, 1, 'c-wf-to', '0');
    const latch = new Latch();
    const result = await withTransferWorker(env, t.ledger, { wrap: pauseBefore('reserveCredit', latch) }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: 'cancel-wf', from, to, amount: '300', currency: 'USD' }, HELD_STEP);
      await latch.reached;
      await handle.cancel();
      // Let the workflow unwind before the paused attempt finishes (the Java test server rejects a
      // cancel command for an activity that completed in the same instant; a real server does not).
      await waitFor(async () => (await handle.describe()).status.name !== 'RUNNING');
      latch.open();
      return outcomeOf(handle);
    });
    expect(result).toMatchObject({ status: 'CANCELLED', reason: 'CANCELLED' });
    expect(result.compensations.map((c) => c.step)).toEqual(['void-credit', 'void-debit']);
    await waitFor(() => fenced(t.ledger, to, 'cancel-wf', 'credit'));
    await expectBalances(t.ledger, { [from]: { posted: '1000' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });
});

/**
 * With the ledger steps as local activities one workflow task can run the whole transfer. If that
 * task is lost (its worker killed before it completed), the next worker replays a history that shows
 * nothing done and accepts a cancel. The unwind then finds the credit posted by the transfer's own
 * post-credit: the money has moved, so the transfer completes instead of undoing half of it.
 */
describe('a cancel that arrives after a lost task already finished the transfer', () => {
  it('during the reservation: the unwind finds both sides posted by the transfer and ends COMPLETED', async () => {
    const from = await openFunded(t.ledger, 0, 'c-lost-from', '1000');
    const to = await openFunded(t.ledger, 1, 'c-lost-to', '0');
    const latch = new Latch();
    let lost = false;
    // The "lost task": all four steps reach the ledger with the transfer's own keys, then its first
    // reservation hangs as if its worker had died, and the history never learns of any of them.
    const lostTask = (acts: TransferActivities): TransferActivities => ({
      ...acts,
      reserveDebit: async (input) => {
        if (!lost) {
          lost = true;
          await acts.reserveDebit(input);
          await acts.reserveCredit({ ...input, account: input.counterparty, counterparty: input.account });
          await acts.postDebit({ transferId: input.transferId, account: input.account, holdKey: `${input.transferId}:reserve-debit` });
          await acts.postCredit({ transferId: input.transferId, account: input.counterparty, holdKey: `${input.transferId}:reserve-credit` });
          await latch.wait();
        }
        return acts.reserveDebit(input);
      },
    });
    const result = await withTransferWorker(env, t.ledger, { wrap: lostTask }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: 'cancel-lost', from, to, amount: '600', currency: 'USD' }, HELD_STEP);
      await latch.reached;
      await expectBalances(t.ledger, { [from]: { posted: '400' }, [to]: { posted: '600' } });
      expect(await handle.query(statusQuery)).toMatchObject({ status: 'RUNNING', step: 'reserve-debit', cancellable: true });
      const answer = await handle.executeUpdate(cancelUpdate, { args: [{ reason: 'too late' }] });
      latch.open();
      expect(await outcomeOf(handle)).toMatchObject({ status: 'COMPLETED' });
      return answer;
    });
    // The cancel's answer is how the transfer ended: it completed, nothing was compensated.
    expect(result).toMatchObject({ status: 'COMPLETED', compensations: [], sides: { debit: 'posted', credit: 'posted' } });
    expect(result.reason).toBeUndefined();
    expect(result.steps.map((s) => [s.step, s.outcome])).toEqual([
      ['reserve-debit', 'cancelled'],
      ['void-credit', 'refused'],
      ['post-debit', 'ok'],
      ['post-credit', 'ok'],
    ]);
    expect(result.steps.filter((s) => s.step.startsWith('post-')).every((s) => s.replayed)).toBe(true);
    expect(result.postings.filter((p) => !p.account.startsWith('sys:')).map((p) => [p.step, p.account, p.amount])).toEqual([['post-debit', from, '-600'], ['post-credit', to, '600']]);
    await expectBalances(t.ledger, { [from]: { posted: '400' }, [to]: { posted: '600' } }); // once, not twice, not undone
    await expectLedgerClean(t.ledger);
  });

  it('while awaiting approval: a cancel after the transfer was carried out elsewhere ends COMPLETED', async () => {
    const from = await openFunded(t.ledger, 0, 'c-lostap-from', '1000');
    const to = await openFunded(t.ledger, 1, 'c-lostap-to', '0');
    const id = 'cancel-lost-approval';
    const result = await withTransferWorker(env, t.ledger, { approvalThreshold: '500' }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: id, from, to, amount: '800', currency: 'USD' });
      await waitFor(async () => (await handle.query(statusQuery)).awaitingApproval);
      // An approval delivered to a task that was then lost: its steps reached the ledger, the history
      // kept waiting for approval.
      await completeOutsideTheSaga(t.ledger, { id, from, to, amount: '800' });
      return handle.executeUpdate(cancelUpdate, { args: [{}] });
    });
    expect(result).toMatchObject({ status: 'COMPLETED', compensations: [], sides: { debit: 'posted', credit: 'posted' } });
    await expectBalances(t.ledger, { [from]: { posted: '200' }, [to]: { posted: '800' } });
    await expectLedgerClean(t.ledger);
  });

  it('a credit posted outside the saga is not taken for the transfer\'s own: the unwind still stops for an operator', async () => {
    const from = await openFunded(t.ledger, 0, 'c-oob-from', '1000');
    const to = await openFunded(t.ledger, 1, 'c-oob-to', '0');
    const id = 'cancel-oob';
    await withTransferWorker(env, t.ledger, { approvalThreshold: '500' }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: id, from, to, amount: '800', currency: 'USD' });
      await waitFor(async () => (await handle.query(statusQuery)).awaitingApproval);
      await postCreditOutsideTheSaga(t.ledger, { id, from, to, amount: '800' }, 'ops:posted-by-hand');
      const cancel = handle.executeUpdate(cancelUpdate, { args: [{}] }).catch(() => undefined); // answers only once it ends
      await waitFor(async () => (await handle.query(statusQuery)).status === 'NEEDS_ATTENTION');
      const state: TransferState = await handle.query(statusQuery);
      expect(state).toMatchObject({ attention: { step: 'void-credit', code: 'HOLD_POSTED', message: expect.stringContaining('already posted') } });
      await expectBalances(t.ledger, { [from]: { posted: '1000' } }); // not rolled forward: nothing debited
      await handle.terminate('test done');
      await cancel;
    });
  });

  it('when the roll forward itself is refused, the operator is told who posted the credit', async () => {
    const from = await openFunded(t.ledger, 0, 'c-rff-from', '1000');
    const to = await openFunded(t.ledger, 1, 'c-rff-to', '0');
    const id = 'cancel-rf-fails';
    await withTransferWorker(env, t.ledger, { approvalThreshold: '500' }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: id, from, to, amount: '800', currency: 'USD' });
      await waitFor(async () => (await handle.query(statusQuery)).awaitingApproval);
      // A credit posted under the transfer's own post-credit key with no debit hold behind it (only
      // a hand-made ledger call can do this): the roll forward's post-debit is refused.
      await postCreditOutsideTheSaga(t.ledger, { id, from, to, amount: '800' }, `${id}:post-credit`);
      const cancel = handle.executeUpdate(cancelUpdate, { args: [{}] }).catch(() => undefined);
      await waitFor(async () => (await handle.query(statusQuery)).status === 'NEEDS_ATTENTION');
      const state: TransferState = await handle.query(statusQuery);
      expect(state).toMatchObject({ attention: { step: 'void-credit', code: 'HOLD_POSTED', message: expect.stringContaining(`posted under ${id}:post-credit`) } });
      await expectBalances(t.ledger, { [from]: { posted: '1000' } }); // nothing debited by the attempt
      await handle.terminate('test done');
      await cancel;
    });
  });
});
