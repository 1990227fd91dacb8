import { describe, expect, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { TransferState } from '../../src/domain/transfer.js';
import { cancelUpdate, statusQuery } from '../../workflows/definitions.js';
import { fenced, pauseBefore, waitFor, withTransferWorker } from '../support/control.js';
import type { TestLedger } from '../support/ledger.js';
import { Latch, useDevServer } from '../support/temporal.js';
import { expectBalances, expectLedgerClean, openFunded, startTransfer, outcomeOf } from '../support/transfers.js';

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
