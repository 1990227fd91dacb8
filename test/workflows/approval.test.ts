import { describe, expect, it } from 'vitest';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { APPROVAL_REFUSED, approveSignal, approveUpdate, statusQuery } from '../../workflows/definitions.js';
import { waitFor, withTransferWorker } from '../support/control.js';
import type { TestLedger } from '../support/ledger.js';
import { useTimeSkipping } from '../support/temporal.js';
import { expectBalances, openFunded, scheduledActivities, startTransfer, outcomeOf } from '../support/transfers.js';

let t: TestLedger;
let env: TestWorkflowEnvironment;
useTimeSkipping((ledger, environment) => {
  t = ledger;
  env = environment;
});

async function refusalOf(promise: Promise<unknown>): Promise<{ type?: string; message?: string } | undefined> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  if (error === undefined) return undefined;
  expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
  const cause = (error as WorkflowUpdateFailedError).cause as { type?: string; message?: string } | undefined;
  return { type: cause?.type, message: cause?.message };
}

describe('approval: who approved, and only an approver who is not the requester', () => {
  it('with an approvers list, refuses strangers and the requester (update and signal), then takes an approver', async () => {
    const from = await openFunded(t.ledger, 0, 'ap-from', '100000');
    const to = await openFunded(t.ledger, 1, 'ap-to', '0');
    const result = await withTransferWorker(env, t.ledger, { approvalThreshold: '5000', approvers: ['alice', 'bob'] }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: 'ap-1', from, to, amount: '6000', currency: 'USD', requestedBy: 'alice' });
      await waitFor(async () => (await handle.query(statusQuery)).awaitingApproval);

      expect(await refusalOf(handle.executeUpdate(approveUpdate, { args: [{ by: 'mallory' }] }))).toEqual({ type: APPROVAL_REFUSED, message: 'mallory is not an approver of this transfer' });
      expect(await refusalOf(handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] }))).toEqual({ type: APPROVAL_REFUSED, message: 'alice requested this transfer and cannot approve it' });
      expect(await refusalOf(handle.executeUpdate(approveUpdate, { args: [{}] }))).toMatchObject({ type: APPROVAL_REFUSED, message: expect.stringMatching(/must name the approver/) });

      // The signal cannot answer: its refusal is the status query's lastError, and nothing is approved.
      await handle.signal(approveSignal, { by: 'eve' });
      await waitFor(async () => (await handle.query(statusQuery)).lastError?.message === 'eve is not an approver of this transfer');
      expect(await handle.query(statusQuery)).toMatchObject({ status: 'AWAITING_APPROVAL', awaitingApproval: true, lastError: { step: 'approval', type: APPROVAL_REFUSED } });
      expect(await scheduledActivities(handle)).toEqual([]);
      await expectBalances(t.ledger, { [from]: { posted: '100000' } });

      expect(await handle.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] })).toEqual({ approved: true, by: 'bob' });
      return outcomeOf(handle);
    });
    expect(result.status).toBe('COMPLETED');
    const approvals = result.steps.filter((s) => s.step === 'approval').map((s) => `${s.outcome}: ${s.detail}`);
    expect(approvals).toEqual([
      'refused: approval by mallory refused: mallory is not an approver of this transfer',
      'refused: approval by alice refused: alice requested this transfer and cannot approve it',
      'refused: approval refused: approvals must name the approver (one of: alice, bob)',
      'refused: approval by eve refused: eve is not an approver of this transfer',
      'ok: approved by bob',
    ]);
    await expectBalances(t.ledger, { [from]: { posted: '94000' }, [to]: { posted: '6000' } });
  });

  it('the approve signal from an approver still approves (the Temporal CLI recipe)', async () => {
    const from = await openFunded(t.ledger, 0, 'aps-from', '100000');
    const to = await openFunded(t.ledger, 1, 'aps-to', '0');
    const result = await withTransferWorker(env, t.ledger, { approvalThreshold: '5000', approvers: ['alice', 'bob'] }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: 'aps-1', from, to, amount: '5000', currency: 'USD', requestedBy: 'alice' });
      await waitFor(async () => (await handle.query(statusQuery)).awaitingApproval);
      await handle.signal(approveSignal, { by: 'bob' });
      return outcomeOf(handle);
    });
    expect(result.status).toBe('COMPLETED');
    expect(result.steps[0]).toMatchObject({ step: 'approval', outcome: 'ok', detail: 'approved by bob' });
  });

  it('without a list, anyone but the requester approves', async () => {
    const from = await openFunded(t.ledger, 0, 'apn-from', '100000');
    const to = await openFunded(t.ledger, 1, 'apn-to', '0');
    const result = await withTransferWorker(env, t.ledger, { approvalThreshold: '5000' }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: 'apn-1', from, to, amount: '7000', currency: 'USD', requestedBy: 'carol' });
      await waitFor(async () => (await handle.query(statusQuery)).awaitingApproval);
      expect(await refusalOf(handle.executeUpdate(approveUpdate, { args: [{ by: 'carol' }] }))).toMatchObject({ type: APPROVAL_REFUSED });
      expect(await handle.executeUpdate(approveUpdate, { args: [{ by: 'dave' }] })).toEqual({ approved: true, by: 'dave' });
      return outcomeOf(handle);
    });
    expect(result.status).toBe('COMPLETED');
  });
});
