import { randomBytes } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Refusal } from '../../src/domain/codes.js';
import { RefusalError } from '../../src/domain/errors.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { approveUpdate, cancelUpdate, repairUpdate, statusQuery } from '../../workflows/definitions.js';
import { after, fenced, ledgerWithVoidFault, pauseBefore, waitFor, withTransferWorker } from '../support/control.js';
import type { TestLedger } from '../support/ledger.js';
import { Latch, useDevServer } from '../support/temporal.js';
import { activityFailures, expectBalances, expectLedgerClean, openFunded, outcomeOf, scheduledActivities, startTransfer } from '../support/transfers.js';

/**
 * The saga's every ending against the Temporal server itself (v1.29.1 on PostgreSQL, SQL visibility,
 * several history shards), with the real worker: what passes on the dev server must pass here. The
 * global setup (test/setup/server-profile.ts) provides the server as `devServerAddress`, so the
 * shared helpers connect to it unchanged.
 */
let t: TestLedger;
let env: TestWorkflowEnvironment;
useDevServer((ledger, environment) => {
  t = ledger;
  env = environment;
});

const run = randomBytes(3).toString('hex');
const id = (name: string) => `sp-${run}-${name}`;
/** A held step keeps its workflow task open; the cancel arrives at the task's next heartbeat. */
const HELD_STEP = { workflowTaskTimeout: '2s' };

describe('server profile: the Temporal server itself', () => {
  it('is the Temporal server on PostgreSQL with SQL visibility and its history shards, not the dev server', async () => {
    expect(inject('temporalProfile')).toBe('server');
    const info = await env.connection.workflowService.getClusterInfo({});
    expect(info.serverVersion).toBe('1.29.1');
    expect(info.persistenceStore).toBe('postgres12');
    expect(info.visibilityStore).toBe('postgres12');
    expect(info.historyShardCount).toBe(Number(process.env.TEMPORAL_HISTORY_SHARDS || 4));
    const attributes = await env.connection.operatorService.listSearchAttributes({ namespace: 'default' });
    expect(Object.keys(attributes.customAttributes ?? {}).sort()).toEqual(['Amount', 'Currency', 'FromAccount', 'ToAccount', 'TransferStatus']);
  });
});

describe('server profile: every saga ending, with the real worker', () => {
  it('completes across shards, and SQL visibility finds it by its search attributes', async () => {
    const from = await openFunded(t.ledger, 0, `${run}-ok-from`, '10000');
    const to = await openFunded(t.ledger, 1, `${run}-ok-to`, '0');
    const transferId = id('completed');
    const { result, handle } = await withTransferWorker(env, t.ledger, {}, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId, from, to, amount: '2500', currency: 'USD', memo: 'rent' });
      return { result: await outcomeOf(handle), handle };
    });
    expect(result).toMatchObject({ transferId, status: 'COMPLETED', amount: '2500', currency: 'USD', memo: 'rent', compensations: [], sides: { debit: 'posted', credit: 'posted' } });
    expect(result.steps.map((s) => `${s.step}:${s.outcome}`)).toEqual(['reserve-debit:ok', 'reserve-credit:ok', 'post-debit:ok', 'post-credit:ok']);
    expect(await scheduledActivities(handle)).toEqual(['reserveDebit', 'reserveCredit', 'postDebit', 'postCredit']);
    expect(await activityFailures(handle)).toEqual([]);
    await expectBalances(t.ledger, { [from]: { posted: '7500' }, [to]: { posted: '2500' } });
    // Visibility on PostgreSQL is written asynchronously: wait for the closed record.
    const query = `WorkflowId = '${transferId}' AND TransferStatus = 'COMPLETED' AND FromAccount = '${from}' AND Amount = 2500 AND Currency = 'USD'`;
    await waitFor(async () => {
      for await (const w of env.client.workflow.list({ query })) return w.workflowId === transferId;
      return false;
    }, 30_000);
    await expectLedgerClean(t.ledger);
  });

  it('ends FAILED on insufficient funds with nothing held', async () => {
    const from = await openFunded(t.ledger, 0, `${run}-poor-from`, '100');
    const to = await openFunded(t.ledger, 1, `${run}-poor-to`, '0');
    const { result, failures } = await withTransferWorker(env, t.ledger, {}, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: id('failed'), from, to, amount: '101', currency: 'USD' });
      return { result: await outcomeOf(handle), failures: await activityFailures(handle) };
    });
    expect(result).toMatchObject({ status: 'FAILED', reason: 'INSUFFICIENT_FUNDS', holds: [], compensations: [] });
    expect(failures).toEqual([{ activity: 'reserveDebit', type: 'INSUFFICIENT_FUNDS', nonRetryable: true, message: expect.stringContaining('insufficient') }]);
    await expectBalances(t.ledger, { [from]: { posted: '100' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });

  it('voids the debit hold when the credit side is refused (COMPENSATED)', async () => {
    const from = await openFunded(t.ledger, 0, `${run}-void-from`, '5000');
    const to = await openFunded(t.ledger, 1, `${run}-void-to`, '0');
    await t.ledger.setStatus(to, 'frozen');
    const { result, activities } = await withTransferWorker(env, t.ledger, {}, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: id('void'), from, to, amount: '4000', currency: 'USD' });
      return { result: await outcomeOf(handle), activities: await scheduledActivities(handle) };
    });
    expect(result).toMatchObject({ status: 'COMPENSATED', reason: 'ACCOUNT_FROZEN', compensations: [{ step: 'void-debit', outcome: 'voided' }], sides: { debit: 'voided', credit: 'none' } });
    expect(activities).toEqual(['reserveDebit', 'reserveCredit', 'compensateDebit']);
    await expectBalances(t.ledger, { [from]: { posted: '5000' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });

  it('refunds the posted debit when the credit post fails permanently (credit hold expired)', async () => {
    const from = await openFunded(t.ledger, 0, `${run}-refund-from`, '3000');
    const to = await openFunded(t.ledger, 1, `${run}-refund-to`, '0');
    // The worker "stalls" after posting the debit for longer than the hold lives (the ledger's clock moves).
    const result = await withTransferWorker(env, t.ledger, { wrap: after('postDebit', () => t.clock.advance(16 * 60_000)) }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: id('refund'), from, to, amount: '3000', currency: 'USD' });
      return outcomeOf(handle);
    });
    expect(result).toMatchObject({ status: 'COMPENSATED', reason: 'HOLD_EXPIRED', sides: { debit: 'refunded', credit: 'expired' } });
    expect(result.compensations).toEqual([{ step: 'void-credit', outcome: 'already_expired' }, { step: 'refund-debit', outcome: 'refunded' }]);
    await expectBalances(t.ledger, { [from]: { posted: '3000' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });

  it('cancels while awaiting approval (the cancel update): nothing was ever held', async () => {
    const from = await openFunded(t.ledger, 0, `${run}-ca-from`, '10000');
    const to = await openFunded(t.ledger, 1, `${run}-ca-to`, '0');
    const result = await withTransferWorker(env, t.ledger, { approvalThreshold: '5000' }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: id('cancel-approval'), from, to, amount: '6000', currency: 'USD' });
      await waitFor(async () => (await handle.query(statusQuery)).status === 'AWAITING_APPROVAL');
      return handle.executeUpdate(cancelUpdate, { args: [{ reason: 'customer changed their mind' }] });
    });
    expect(result).toMatchObject({ status: 'CANCELLED', reason: 'CANCELLED', message: 'customer changed their mind', holds: [] });
    expect(result.compensations).toEqual([{ step: 'void-credit', outcome: 'null_compensation' }, { step: 'void-debit', outcome: 'null_compensation' }]);
    await expectBalances(t.ledger, { [from]: { posted: '10000' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });

  it('waits for approval and completes once an approver approves (the approve update)', async () => {
    const from = await openFunded(t.ledger, 0, `${run}-ap-from`, '100000');
    const to = await openFunded(t.ledger, 1, `${run}-ap-to`, '0');
    const result = await withTransferWorker(env, t.ledger, { approvalThreshold: '5000', approvers: ['bob'] }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: id('approve'), from, to, amount: '6000', currency: 'USD', requestedBy: 'alice' });
      await waitFor(async () => (await handle.query(statusQuery)).awaitingApproval);
      await expectBalances(t.ledger, { [from]: { posted: '100000' } });
      expect(await handle.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] })).toEqual({ approved: true, by: 'bob' });
      return outcomeOf(handle);
    });
    expect(result.status).toBe('COMPLETED');
    expect(result.steps.map((s) => s.step)).toEqual(['approval', 'reserve-debit', 'reserve-credit', 'post-debit', 'post-credit']);
    expect(result.steps[0]).toMatchObject({ outcome: 'ok', detail: 'approved by bob' });
    await expectBalances(t.ledger, { [from]: { posted: '94000' }, [to]: { posted: '6000' } });
  });

  it('cancels during the credit reservation (a held local activity): both sides released, the late reservation fenced', async () => {
    const from = await openFunded(t.ledger, 0, `${run}-crc-from`, '1000');
    const to = await openFunded(t.ledger, 1, `${run}-crc-to`, '0');
    const transferId = id('cancel-rc');
    const latch = new Latch();
    const result = await withTransferWorker(env, t.ledger, { wrap: pauseBefore('reserveCredit', latch) }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId, from, to, amount: '250', currency: 'USD' }, HELD_STEP);
      await latch.reached;
      expect(await handle.query(statusQuery)).toMatchObject({ step: 'reserve-credit', holds: [{ side: 'debit', state: 'pending', amount: '250' }] });
      const answer = await handle.executeUpdate(cancelUpdate, { args: [{ reason: 'operator' }] });
      latch.open();
      return answer;
    });
    expect(result.status).toBe('CANCELLED');
    expect(result.compensations).toEqual([{ step: 'void-credit', outcome: 'null_compensation' }, { step: 'void-debit', outcome: 'voided' }]);
    await waitFor(() => fenced(t.ledger, to, transferId, 'credit'));
    await expectBalances(t.ledger, { [from]: { posted: '1000' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });

  it('stops for an operator when a compensation is refused (NEEDS_ATTENTION), and the repair update finishes the unwind', async () => {
    const from = await openFunded(t.ledger, 0, `${run}-na-from`, '1000');
    const to = await openFunded(t.ledger, 1, `${run}-na-to`, '0');
    await t.ledger.setStatus(to, 'frozen'); // the credit reservation is refused: the debit hold must be voided
    let refusing = true;
    const ledger = ledgerWithVoidFault(t.ledger, () => (refusing ? new RefusalError(Refusal.ACCOUNT_CLOSED, 'test: the ledger refuses this void') : undefined));
    const result = await withTransferWorker(env, ledger, {}, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: id('attention'), from, to, amount: '300', currency: 'USD' });
      await waitFor(async () => (await handle.query(statusQuery)).status === 'NEEDS_ATTENTION', 20_000);
      expect(await activityFailures(handle)).toContainEqual({ activity: 'compensateDebit', type: 'COMPENSATION_BLOCKED', nonRetryable: true, message: expect.stringContaining('ACCOUNT_CLOSED') });
      await expectBalances(t.ledger, { [from]: { posted: '1000', pendingDebits: '300' } });
      refusing = false; // the operator fixed the cause
      const state = await handle.executeUpdate(repairUpdate, { args: [{ action: 'retry', by: 'ops' }] });
      expect(state.result?.status).toBe('COMPENSATED');
      return outcomeOf(handle);
    });
    expect(result).toMatchObject({ status: 'COMPENSATED', reason: 'ACCOUNT_FROZEN', compensations: [{ step: 'void-debit', outcome: 'voided' }] });
    await expectBalances(t.ledger, { [from]: { posted: '1000' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });
});
