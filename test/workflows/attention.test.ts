import { describe, expect, it } from 'vitest';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Refusal } from '../../src/domain/codes.js';
import { RefusalError } from '../../src/domain/errors.js';
import { TransferStatusKey } from '../../src/domain/search-attributes.js';
import type { TransferState } from '../../src/domain/transfer.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { TransferMetrics } from '../../src/observability/metrics.js';
import { repairUpdate, statusQuery } from '../../workflows/definitions.js';
import { after, ledgerWithVoidFault, waitFor, withTransferWorker } from '../support/control.js';
import type { TestLedger } from '../support/ledger.js';
import { capturingLogger, useTimeSkipping } from '../support/temporal.js';
import { activityFailures, expectBalances, expectLedgerClean, openFunded, startTransfer, outcomeOf } from '../support/transfers.js';

let t: TestLedger;
let env: TestWorkflowEnvironment;
useTimeSkipping((ledger, environment) => {
  t = ledger;
  env = environment;
});

async function attentionCount(metrics: TransferMetrics): Promise<Record<string, number>> {
  const values = (await metrics.attentions.get()).values;
  return Object.fromEntries(values.map((v) => [`${v.labels.step}:${v.labels.code}`, v.value]));
}

describe('a refused compensation stops for an operator (NEEDS_ATTENTION), a transient one retries', () => {
  it('retries a blocked compensation on the operator\'s word and then completes the unwind', async () => {
    const from = await openFunded(t.ledger, 0, 'nr-from', '1000');
    const to = await openFunded(t.ledger, 1, 'nr-to', '0');
    await t.ledger.setStatus(to, 'frozen'); // the credit reservation is refused: the debit hold must be voided
    let refusing = true;
    const ledger = ledgerWithVoidFault(t.ledger, () => (refusing ? new RefusalError(Refusal.ACCOUNT_CLOSED, 'test: the ledger refuses this void') : undefined));
    const { logger, lines } = capturingLogger();
    const result = await withTransferWorker(env, ledger, { logger }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: 'nr-1', from, to, amount: '300', currency: 'USD' });
      await waitFor(async () => (await handle.query(statusQuery)).status === 'NEEDS_ATTENTION');
      await waitFor(() => lines.some((l) => l.level === 'error'));
      expect(lines.filter((l) => l.level === 'error')).toEqual([
        { level: 'error', fields: { transferId: 'nr-1', step: 'void-debit', code: 'ACCOUNT_CLOSED', err: 'test: the ledger refuses this void' }, msg: 'transfer needs attention: void-debit refused with ACCOUNT_CLOSED; run `transfer repair nr-1`' },
      ]);
      expect(await activityFailures(handle)).toContainEqual({ activity: 'compensateDebit', type: 'COMPENSATION_BLOCKED', nonRetryable: true, message: expect.stringContaining('ACCOUNT_CLOSED') });
      await expectBalances(t.ledger, { [from]: { posted: '1000', pendingDebits: '300' } });
      refusing = false; // the operator fixed the cause
      const state = await handle.executeUpdate(repairUpdate, { args: [{ action: 'retry', by: 'ops' }] });
      expect(state.result?.status).toBe('COMPENSATED');
      expect(lines).toContainEqual({ level: 'warn', fields: { transferId: 'nr-1', step: 'void-debit', action: 'retry', by: 'ops', note: '' }, msg: 'operator repair: retry void-debit' });
      return outcomeOf(handle);
    });
    expect(result).toMatchObject({ status: 'COMPENSATED', reason: 'ACCOUNT_FROZEN', compensations: [{ step: 'void-debit', outcome: 'voided' }], sides: { debit: 'voided', credit: 'none' } });
    await expectBalances(t.ledger, { [from]: { posted: '1000' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });

  it('keeps retrying a compensation through transient faults, without asking anyone', async () => {
    const from = await openFunded(t.ledger, 0, 'nt-from', '1000');
    const to = await openFunded(t.ledger, 1, 'nt-to', '0');
    await t.ledger.setStatus(to, 'frozen');
    let faults = 3;
    const ledger = ledgerWithVoidFault(t.ledger, () => (faults-- > 0 ? new Error('connection reset (test)') : undefined));
    const result = await withTransferWorker(env, ledger, {}, async (taskQueue) => outcomeOf(await startTransfer(env, taskQueue, { transferId: 'nt-1', from, to, amount: '300', currency: 'USD' })));
    expect(result).toMatchObject({ status: 'COMPENSATED', compensations: [{ step: 'void-debit', outcome: 'voided' }] });
    expect(result.steps.map((s) => s.outcome)).not.toContain('blocked');
    expect(result.steps.find((s) => s.step === 'void-debit')).toMatchObject({ attempt: 4 });
    await expectLedgerClean(t.ledger);
  });

  it('treats an already refunded debit as done (ALREADY_REFUNDED is not a block)', async () => {
    const from = await openFunded(t.ledger, 0, 'ar-from', '3000');
    const to = await openFunded(t.ledger, 1, 'ar-to', '0');
    // After the debit is posted: an operator refunds it by hand, and the credit hold expires.
    const wrap = after('postDebit', async () => {
      await t.ledger.refund({ key: 'ops:refund-by-hand', holdKey: 'ar-1:reserve-debit', accountId: from });
      t.clock.advance(16 * 60_000);
    });
    const result = await withTransferWorker(env, t.ledger, { wrap }, async (taskQueue) => outcomeOf(await startTransfer(env, taskQueue, { transferId: 'ar-1', from, to, amount: '3000', currency: 'USD' })));
    expect(result).toMatchObject({ status: 'COMPENSATED', reason: 'HOLD_EXPIRED', sides: { debit: 'refunded', credit: 'expired' } });
    expect(result.compensations).toEqual([{ step: 'void-credit', outcome: 'already_expired' }, { step: 'refund-debit', outcome: 'already_refunded' }]);
    await expectBalances(t.ledger, { [from]: { posted: '3000' }, [to]: { posted: '0' } }); // refunded once, not twice
    await expectLedgerClean(t.ledger);
  });

  it('refuses a repair when nothing needs attention', async () => {
    const from = await openFunded(t.ledger, 0, 'nn-from', '1000');
    const to = await openFunded(t.ledger, 1, 'nn-to', '0');
    await withTransferWorker(env, t.ledger, { approvalThreshold: '1' }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: 'nn-1', from, to, amount: '5', currency: 'USD' });
      await waitFor(async () => (await handle.query(statusQuery)).awaitingApproval);
      const rejected = await handle.executeUpdate(repairUpdate, { args: [{ action: 'retry' }] }).then(() => undefined, (e: unknown) => e);
      expect(rejected).toBeInstanceOf(WorkflowUpdateFailedError);
      expect(String((rejected as WorkflowUpdateFailedError).cause?.message)).toMatch(/repair applies only while it NEEDS_ATTENTION/);
      await handle.terminate('test done');
    });
  });

  it('surfaces a refused void as NEEDS_ATTENTION; retry re-runs it, resolve settles it and the transfer ends RESOLVED', async () => {
    const from = await openFunded(t.ledger, 0, 'na-from', '1000');
    const to = await openFunded(t.ledger, 1, 'na-to', '0');
    const metrics = new TransferMetrics();
    // Someone posts the credit hold out of band, then the debit hold expires: post-debit is refused
    // and void-credit meets a posted credit (HOLD_POSTED). Refunding the debit now would pay twice
    // over, so no automatic answer is right: a human must decide.
    const sabotage = after('reserveCredit', async () => {
      await t.ledger.post({ key: 'ops:post-by-hand', holdKey: 'na-1:reserve-credit', accountId: to });
      t.clock.advance(16 * 60_000);
    });
    const result = await withTransferWorker(env, t.ledger, { wrap: sabotage, metrics }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: 'na-1', from, to, amount: '400', currency: 'USD' });
      await waitFor(async () => (await handle.query(statusQuery)).status === 'NEEDS_ATTENTION');
      const state: TransferState = await handle.query(statusQuery);
      expect(state).toMatchObject({ status: 'NEEDS_ATTENTION', step: 'void-credit', attention: { step: 'void-credit', code: Refusal.HOLD_POSTED }, lastError: { step: 'void-credit', type: Refusal.HOLD_POSTED } });
      expect((await handle.describe()).typedSearchAttributes.get(TransferStatusKey)).toBe('NEEDS_ATTENTION');
      expect(await attentionCount(metrics)).toEqual({ 'void-credit:HOLD_POSTED': 1 });

      // A refusal is sticky under its key: retrying answers the same, and the transfer says so again.
      const retried = await handle.executeUpdate(repairUpdate, { args: [{ action: 'retry', by: 'ops' }] });
      expect(retried).toMatchObject({ status: 'NEEDS_ATTENTION', attention: { code: Refusal.HOLD_POSTED } });
      expect(await attentionCount(metrics)).toEqual({ 'void-credit:HOLD_POSTED': 2 });

      // resolve without a note is refused by the validator: nothing changes.
      const noNote = await handle.executeUpdate(repairUpdate, { args: [{ action: 'resolve' }] }).then(() => undefined, (e: unknown) => e);
      expect(noNote).toBeInstanceOf(WorkflowUpdateFailedError);
      expect((await handle.query(statusQuery)).status).toBe('NEEDS_ATTENTION');

      const resolved = await handle.executeUpdate(repairUpdate, { args: [{ action: 'resolve', note: 'credit reversed by hand, ticket 42', by: 'ops' }] });
      expect(resolved.result).toMatchObject({ status: 'RESOLVED' });
      return outcomeOf(handle);
    });
    expect(result).toMatchObject({
      status: 'RESOLVED',
      reason: 'HOLD_EXPIRED',
      resolution: { step: 'void-credit', note: 'credit reversed by hand, ticket 42', by: 'ops' },
      compensations: [{ step: 'void-credit', outcome: 'resolved_by_operator' }, { step: 'void-debit', outcome: 'already_expired' }],
      sides: { debit: 'expired', credit: 'settled by operator' },
    });
    expect(result.steps.filter((s) => s.step === 'void-credit').map((s) => s.outcome)).toEqual(['blocked', 'blocked', 'resolved']);
    // The ledger still says what happened (the credit was paid from clearing with no debit): verify
    // names this transfer, which is why it stays last in this file.
    expect((await t.ledger.verify()).violations).toEqual([expect.objectContaining({ check: 'clearing_nets_to_zero', transfer: 'na-1', amount: '-400' })]);
  });
});
