import { describe, expect, it } from 'vitest';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { TransferResult } from '../../src/domain/transfer.js';
import { approveSignal, cancelUpdate, statusQuery } from '../../workflows/definitions.js';
import type { TestLedger } from '../support/ledger.js';
import { pauseBefore, waitFor, withTransferWorker } from '../support/control.js';
import { refusalCodeOf } from '../support/refusals.js';
import { Latch, useTimeSkipping } from '../support/temporal.js';
import { expectBalances, expectLedgerClean, openFunded, scheduledActivities, startTransfer, outcomeOf } from '../support/transfers.js';

let t: TestLedger;
let env: TestWorkflowEnvironment;
useTimeSkipping((ledger, environment) => {
  t = ledger;
  env = environment;
});

/** A reservation arriving late under the transfer's own hold keys (an abandoned attempt, a forced rerun). */
async function lateReservations(from: string, to: string, transferId: string, amount: string): Promise<string[]> {
  const reserve = (side: 'debit' | 'credit', account: string, counterparty: string) =>
    refusalCodeOf(t.ledger.reserve({ key: `${transferId}:reserve-${side}`, transferId, accountId: account, side, amount, currency: 'USD', ttlMs: 60_000, counterparty }));
  return [await reserve('debit', from, to), await reserve('credit', to, from)];
}

/**
 * Control on the time-skipping server: approval windows of a day pass in milliseconds. Cancels that
 * abandon a running activity are in cancellation.test.ts, on the dev server (see there why).
 */
describe('control: cancel before reserving and while posting, approval', () => {
  it('cancels while awaiting approval: nothing was ever held', async () => {
    const from = await openFunded(t.ledger, 0, 'c-appr-from', '10000');
    const to = await openFunded(t.ledger, 1, 'c-appr-to', '0');
    const result = await withTransferWorker(env, t.ledger, { approvalThreshold: '5000' }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: 'cancel-approval', from, to, amount: '6000', currency: 'USD' });
      await waitFor(async () => (await handle.query(statusQuery)).status === 'AWAITING_APPROVAL');
      const answer = await handle.executeUpdate(cancelUpdate, { args: [{ reason: 'customer changed their mind' }] });
      // Nothing was reserved, but both voids run: their tombstones fence any late reservation.
      expect(await scheduledActivities(handle)).toEqual(['compensateCredit', 'compensateDebit']);
      return answer;
    });
    expect(result).toMatchObject({ status: 'CANCELLED', reason: 'CANCELLED', message: 'customer changed their mind', holds: [] });
    expect(result.compensations).toEqual([{ step: 'void-credit', outcome: 'null_compensation' }, { step: 'void-debit', outcome: 'null_compensation' }]);
    expect(await lateReservations(from, to, 'cancel-approval', '6000')).toEqual(['FENCED', 'FENCED']);
    await expectBalances(t.ledger, { [from]: { posted: '10000' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });



  it('a workflow cancellation while awaiting approval is a cancel, not an approval timeout', async () => {
    const from = await openFunded(t.ledger, 0, 'c-wfa-from', '10000');
    const to = await openFunded(t.ledger, 1, 'c-wfa-to', '0');
    const result = await withTransferWorker(env, t.ledger, { approvalThreshold: '5000' }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: 'cancel-wf-approval', from, to, amount: '6000', currency: 'USD' });
      await waitFor(async () => (await handle.query(statusQuery)).status === 'AWAITING_APPROVAL');
      await handle.cancel();
      return outcomeOf(handle);
    });
    expect(result).toMatchObject({ status: 'CANCELLED', reason: 'CANCELLED', holds: [] });
    expect(await lateReservations(from, to, 'cancel-wf-approval', '6000')).toEqual(['FENCED', 'FENCED']);
    await expectBalances(t.ledger, { [from]: { posted: '10000' }, [to]: { posted: '0' } });
  });

  it('rejects cancel once the debit is being posted, and completes', async () => {
    const from = await openFunded(t.ledger, 0, 'c-pd-from', '1000');
    const to = await openFunded(t.ledger, 1, 'c-pd-to', '0');
    const latch = new Latch();
    const result = await withTransferWorker(env, t.ledger, { wrap: pauseBefore('postDebit', latch) }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: 'cancel-pd', from, to, amount: '100', currency: 'USD' });
      await latch.reached;
      const rejected = await handle.executeUpdate(cancelUpdate, { args: [{}] }).then(() => undefined, (e: unknown) => e);
      expect(rejected).toBeInstanceOf(WorkflowUpdateFailedError);
      expect(String((rejected as WorkflowUpdateFailedError).cause?.message)).toMatch(/can no longer be cancelled/);
      latch.open();
      return outcomeOf(handle);
    });
    expect(result.status).toBe('COMPLETED');
    await expectBalances(t.ledger, { [from]: { posted: '900' }, [to]: { posted: '100' } });
    await expectLedgerClean(t.ledger);
  });


  it('waits for approval above the threshold and completes once approved', async () => {
    const from = await openFunded(t.ledger, 0, 'a-ok-from', '100000');
    const to = await openFunded(t.ledger, 1, 'a-ok-to', '0');
    const result = await withTransferWorker(env, t.ledger, { approvalThreshold: '50000' }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: 'approve-ok', from, to, amount: '50000', currency: 'USD' });
      await waitFor(async () => (await handle.query(statusQuery)).awaitingApproval);
      await env.sleep('23h'); // time skips; still inside the 24 h window
      await expectBalances(t.ledger, { [from]: { posted: '100000' } });
      await handle.signal(approveSignal, { by: 'risk-team' });
      return outcomeOf(handle);
    });
    expect(result.status).toBe('COMPLETED');
    expect(result.steps.map((s) => s.step)).toEqual(['approval', 'reserve-debit', 'reserve-credit', 'post-debit', 'post-credit']);
    expect(result.steps[0]).toMatchObject({ outcome: 'ok', detail: 'approved by risk-team' });
    await expectBalances(t.ledger, { [from]: { posted: '50000' }, [to]: { posted: '50000' } });
  });

  it('auto-cancels an unapproved transfer after the approval timeout (time skipped, not waited)', async () => {
    const from = await openFunded(t.ledger, 0, 'a-to-from', '100000');
    const to = await openFunded(t.ledger, 1, 'a-to-to', '0');
    const startedAt = await env.currentTimeMs();
    const wallStart = Date.now();
    const result: TransferResult = await withTransferWorker(env, t.ledger, { approvalThreshold: '1000' }, async (taskQueue) =>
      outcomeOf(await startTransfer(env, taskQueue, { transferId: 'approve-timeout', from, to, amount: '1000', currency: 'USD' })),
    );
    expect(result).toMatchObject({ status: 'CANCELLED', reason: 'APPROVAL_TIMEOUT', holds: [], compensations: [{ step: 'void-credit', outcome: 'null_compensation' }, { step: 'void-debit', outcome: 'null_compensation' }] });
    expect(await lateReservations(from, to, 'approve-timeout', '1000')).toEqual(['FENCED', 'FENCED']);
    expect((await env.currentTimeMs()) - startedAt).toBeGreaterThanOrEqual(24 * 60 * 60_000);
    expect(Date.now() - wallStart).toBeLessThan(30_000);
    await expectBalances(t.ledger, { [from]: { posted: '100000' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });
});

