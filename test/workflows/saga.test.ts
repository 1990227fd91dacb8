import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { TestLedger } from '../support/ledger.js';
import { createTestWorker, uniqueTaskQueue, useTimeSkipping } from '../support/temporal.js';
import { activityFailures, expectBalances, expectLedgerClean, openFunded, scheduledActivities, startTransfer, outcomeOf } from '../support/transfers.js';
import type { TransferActivities } from '../../activities/index.js';

let t: TestLedger;
let env: TestWorkflowEnvironment;
const taskQueue = uniqueTaskQueue();
let worker: Worker;
let running: Promise<void>;
/** Set by a test to run code between two activities (e.g. move the ledger clock). */
let afterStep: Partial<Record<keyof TransferActivities, () => void>> = {};

useTimeSkipping((ledger, environment) => {
  t = ledger;
  env = environment;
});

beforeAll(async () => {
  worker = await createTestWorker(env, t.ledger, {
    taskQueue,
    wrap: (acts) => {
      const wrapped = { ...acts };
      for (const name of Object.keys(acts) as (keyof TransferActivities)[]) {
        const original = acts[name] as (...args: unknown[]) => Promise<unknown>;
        (wrapped as Record<string, unknown>)[name] = async (...args: unknown[]) => {
          const result = await original(...args);
          afterStep[name]?.();
          return result;
        };
      }
      return wrapped;
    },
  });
  running = worker.run();
});

afterAll(async () => {
  worker?.shutdown();
  await running;
});

describe('transfer saga (time-skipping test server, real ledger)', () => {
  it('completes across shards: debit held, credit reserved, both posted', async () => {
    const from = await openFunded(t.ledger, 0, 'happy-from', '10000');
    const to = await openFunded(t.ledger, 1, 'happy-to', '0');
    const handle = await startTransfer(env, taskQueue, { transferId: 'happy-1', from, to, amount: '2500', currency: 'USD', memo: 'rent' });
    const result = await outcomeOf(handle);
    expect(result).toMatchObject({ transferId: 'happy-1', status: 'COMPLETED', amount: '2500', currency: 'USD', memo: 'rent', compensations: [], sides: { debit: 'posted', credit: 'posted' } });
    expect(result.steps.map((s) => `${s.step}:${s.outcome}`)).toEqual(['reserve-debit:ok', 'reserve-credit:ok', 'post-debit:ok', 'post-credit:ok']);
    expect(result.holds.map((h) => [h.side, h.state, h.shard])).toEqual([['debit', 'posted', 0], ['credit', 'posted', 1]]);
    expect(await scheduledActivities(handle)).toEqual(['reserveDebit', 'reserveCredit', 'postDebit', 'postCredit']);
    expect(await activityFailures(handle)).toEqual([]);
    await expectBalances(t.ledger, { [from]: { posted: '7500' }, [to]: { posted: '2500' } });
    await expectLedgerClean(t.ledger);
  });

  it('completes within one shard through the same code path', async () => {
    const from = await openFunded(t.ledger, 1, 'same-from', '500');
    const to = await openFunded(t.ledger, 1, 'same-to', '0');
    const result = await outcomeOf(await startTransfer(env, taskQueue, { transferId: 'same-shard-1', from, to, amount: 500, currency: 'USD' }));
    expect(result.status).toBe('COMPLETED');
    expect(result.holds.every((h) => h.shard === 1)).toBe(true);
    await expectBalances(t.ledger, { [from]: { posted: '0' }, [to]: { posted: '500' } });
    await expectLedgerClean(t.ledger);
  });

  it('ends FAILED on insufficient funds with nothing held and nothing to compensate', async () => {
    const from = await openFunded(t.ledger, 0, 'poor-from', '100');
    const to = await openFunded(t.ledger, 1, 'poor-to', '0');
    const handle = await startTransfer(env, taskQueue, { transferId: 'poor-1', from, to, amount: '101', currency: 'USD' });
    const result = await outcomeOf(handle);
    expect(result).toMatchObject({ status: 'FAILED', reason: 'INSUFFICIENT_FUNDS', holds: [], compensations: [] });
    expect(await activityFailures(handle)).toEqual([
      { activity: 'reserveDebit', type: 'INSUFFICIENT_FUNDS', nonRetryable: true, message: expect.stringContaining('insufficient') },
    ]);
    expect(await scheduledActivities(handle)).toEqual(['reserveDebit']);
    await expectBalances(t.ledger, { [from]: { posted: '100' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });

  it('voids the debit hold when the credit side is refused (frozen account)', async () => {
    const from = await openFunded(t.ledger, 0, 'void-from', '5000');
    const to = await openFunded(t.ledger, 1, 'void-to', '0');
    await t.ledger.setStatus(to, 'frozen');
    const handle = await startTransfer(env, taskQueue, { transferId: 'void-1', from, to, amount: '4000', currency: 'USD' });
    const result = await outcomeOf(handle);
    expect(result).toMatchObject({ status: 'COMPENSATED', reason: 'ACCOUNT_FROZEN', compensations: [{ step: 'void-debit', outcome: 'voided' }], sides: { debit: 'voided', credit: 'none' } });
    expect(await activityFailures(handle)).toEqual([{ activity: 'reserveCredit', type: 'ACCOUNT_FROZEN', nonRetryable: true, message: expect.any(String) }]);
    expect(await scheduledActivities(handle)).toEqual(['reserveDebit', 'reserveCredit', 'compensateDebit']);
    expect(result.holds.map((h) => [h.side, h.state])).toEqual([['debit', 'voided']]); // the result says how holds ended
    const records = await t.ledger.transferRecords('void-1');
    expect(records.holds.map((h) => [h.side, h.state])).toEqual([['debit', 'voided']]);
    expect(records.postings).toEqual([]);
    await expectBalances(t.ledger, { [from]: { posted: '5000' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });

  it('refunds the posted debit when the credit post fails permanently (credit hold expired)', async () => {
    const from = await openFunded(t.ledger, 0, 'refund-from', '3000');
    const to = await openFunded(t.ledger, 1, 'refund-to', '0');
    // The worker "stalls" after posting the debit for longer than the hold lives.
    afterStep = { postDebit: () => t.clock.advance(16 * 60_000) };
    const handle = await startTransfer(env, taskQueue, { transferId: 'refund-1', from, to, amount: '3000', currency: 'USD' });
    const result = await outcomeOf(handle);
    afterStep = {};
    expect(result).toMatchObject({ status: 'COMPENSATED', reason: 'HOLD_EXPIRED', sides: { debit: 'refunded', credit: 'expired' } });
    expect(result.compensations).toEqual([{ step: 'void-credit', outcome: 'already_expired' }, { step: 'refund-debit', outcome: 'refunded' }]);
    expect(await activityFailures(handle)).toEqual([{ activity: 'postCredit', type: 'HOLD_EXPIRED', nonRetryable: true, message: expect.any(String) }]);
    const records = await t.ledger.transferRecords('refund-1');
    expect(records.postings.map((p) => [p.kind, p.accountId === from ? 'from' : p.accountId === to ? 'to' : p.accountId, p.amount])).toEqual([
      ['transfer_debit', 'from', '-3000'], ['transfer_debit', 'sys:clearing:USD', '3000'],
      ['refund', 'from', '3000'], ['refund', 'sys:clearing:USD', '-3000'],
    ]);
    await expectBalances(t.ledger, { [from]: { posted: '3000' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });

  it('compensates the credit side when the debit hold expired before posting', async () => {
    const from = await openFunded(t.ledger, 0, 'expire-from', '900');
    const to = await openFunded(t.ledger, 1, 'expire-to', '0');
    afterStep = { reserveCredit: () => t.clock.advance(60 * 60_000) };
    const handle = await startTransfer(env, taskQueue, { transferId: 'expire-1', from, to, amount: '900', currency: 'USD' });
    const result = await outcomeOf(handle);
    afterStep = {};
    expect(result).toMatchObject({ status: 'COMPENSATED', reason: 'HOLD_EXPIRED', sides: { debit: 'expired', credit: 'voided' } });
    expect(result.compensations).toEqual([{ step: 'void-credit', outcome: 'voided' }, { step: 'void-debit', outcome: 'already_expired' }]);
    expect(await activityFailures(handle)).toEqual([{ activity: 'postDebit', type: 'HOLD_EXPIRED', nonRetryable: true, message: expect.any(String) }]);
    await expectBalances(t.ledger, { [from]: { posted: '900' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });

  it('ends FAILED on invalid input before any step', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ from: 'a1', to: 'a1', amount: '5', currency: 'USD' }, 'SAME_ACCOUNT'],
      [{ from: 'a1', to: 'b1', amount: 12.5, currency: 'USD' }, 'INVALID_AMOUNT'],
      [{ from: 'a1', to: 'b1', amount: '0', currency: 'USD' }, 'INVALID_AMOUNT'],
      [{ from: 'a1', to: 'b1', amount: '5', currency: 'XYZ' }, 'UNKNOWN_CURRENCY'],
      [{ from: 'a 1', to: 'b1', amount: '5', currency: 'USD' }, 'INVALID_ACCOUNT_ID'],
    ];
    for (const [i, [input, reason]] of cases.entries()) {
      const handle = await startTransfer(env, taskQueue, { transferId: `invalid-${i}`, ...input } as never);
      const result = await outcomeOf(handle);
      expect(result, reason).toMatchObject({ status: 'FAILED', reason });
      expect(await scheduledActivities(handle)).toEqual([]);
    }
    // The transfer id inside the input must be the workflow id: one transfer, one workflow.
    const mismatched = await env.client.workflow.start('transferWorkflow', { taskQueue, workflowId: 'invalid-id', args: [{ transferId: 'other-id', from: 'a1', to: 'b1', amount: '5', currency: 'USD' }] });
    expect(await outcomeOf(mismatched)).toMatchObject({ status: 'FAILED', reason: 'INVALID_INPUT' });
    expect(await scheduledActivities(mismatched)).toEqual([]);
    await expectLedgerClean(t.ledger);
  });
});
