import { describe, expect, it } from 'vitest';
import { Context } from '@temporalio/activity';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker, WorkerOptions } from '@temporalio/worker';
import type { TransferActivities } from '../../activities/index.js';
import { startTransfer as startOnce, transferResult } from '../../src/client.js';
import type { TestLedger } from '../support/ledger.js';
import { createTestWorker, Latch, uniqueTaskQueue, useTimeSkipping } from '../support/temporal.js';
import { activityFailures, expectBalances, expectLedgerClean, openFunded, startTransfer, outcomeOf } from '../support/transfers.js';

let t: TestLedger;
let env: TestWorkflowEnvironment;
useTimeSkipping((ledger, environment) => {
  t = ledger;
  env = environment;
});

async function withWorker<T>(
  taskQueue: string,
  wrap: ((a: TransferActivities) => TransferActivities) | undefined,
  fn: (worker: Worker) => Promise<T>,
  options?: { overrides: Partial<WorkerOptions> },
): Promise<T> {
  const worker = await createTestWorker(env, t.ledger, { taskQueue, ...(wrap ? { wrap } : {}), ...(options ?? {}) });
  return worker.runUntil(() => fn(worker));
}

describe('faults: lost responses, dead workers, duplicate starts', () => {
  it('retries a step whose commit succeeded but whose response was lost, without a second effect', async () => {
    const from = await openFunded(t.ledger, 0, 'lost-from', '1000');
    const to = await openFunded(t.ledger, 1, 'lost-to', '0');
    const taskQueue = uniqueTaskQueue();
    const lost = new Set<string>();
    const loseFirstResponse = (acts: TransferActivities): TransferActivities => {
      const wrap = <K extends 'reserveDebit' | 'postDebit' | 'postCredit'>(name: K) => async (input: Parameters<TransferActivities[K]>[0]) => {
        const result = await (acts[name] as (i: typeof input) => Promise<unknown>)(input);
        if (!lost.has(name)) {
          lost.add(name);
          throw new Error(`response of ${name} lost after commit`); // retryable: the effect is already in the ledger
        }
        return result;
      };
      return { ...acts, reserveDebit: wrap('reserveDebit'), postDebit: wrap('postDebit'), postCredit: wrap('postCredit') } as TransferActivities;
    };
    const result = await withWorker(taskQueue, loseFirstResponse, async () =>
      outcomeOf(await startTransfer(env, taskQueue, { transferId: 'lost-1', from, to, amount: '400', currency: 'USD' })),
    );
    expect(result.status).toBe('COMPLETED');
    const byStep = Object.fromEntries(result.steps.map((s) => [s.step, s]));
    for (const step of ['reserve-debit', 'post-debit', 'post-credit']) expect(byStep[step], step).toMatchObject({ attempt: 2, replayed: true });
    expect(byStep['reserve-credit']).toMatchObject({ attempt: 1, replayed: false });
    const handle = env.client.workflow.getHandle('lost-1');
    expect(await activityFailures(handle)).toEqual([]); // nothing failed for good
    // Each lost response happened once, after the ledger had committed; the retry replayed it.
    expect([...lost]).toEqual(['reserveDebit', 'postDebit', 'postCredit']);
    const records = await t.ledger.transferRecords('lost-1');
    expect(records.holds).toHaveLength(2);
    expect(records.postings).toHaveLength(4); // one entry per post, not two
    await expectBalances(t.ledger, { [from]: { posted: '600' }, [to]: { posted: '400' } });
    await expectLedgerClean(t.ledger);
  });

  it('finishes a saga on a new worker after the first one dies mid-step', async () => {
    const from = await openFunded(t.ledger, 0, 'dead-from', '800');
    const to = await openFunded(t.ledger, 1, 'dead-to', '0');
    const taskQueue = uniqueTaskQueue();
    const stuck = new Latch();
    const hangInPostDebit = (acts: TransferActivities): TransferActivities => ({
      ...acts,
      postDebit: async () => {
        await Promise.race([stuck.wait(), Context.current().cancelled]);
        throw new Error('worker 1 died before posting');
      },
    });
    const handle = await startTransfer(env, taskQueue, { transferId: 'dead-1', from, to, amount: '800', currency: 'USD' });
    await withWorker(taskQueue, hangInPostDebit, async (worker) => {
      await stuck.reached;
      expect((await handle.query('status')) as { step: string }).toMatchObject({ step: 'post-debit' });
      worker.shutdown(); // the process "dies" with the debit reserved but not posted
    }, { overrides: { maxCachedWorkflows: 0 } }); // no sticky queue: the test server does not time a dead worker's sticky queue out quickly

    await expectBalances(t.ledger, { [from]: { posted: '800', pendingDebits: '800' }, [to]: { posted: '0', pendingCredits: '800' } });

    const result = await withWorker(taskQueue, undefined, () => outcomeOf(handle));
    expect(result.status).toBe('COMPLETED');
    await expectBalances(t.ledger, { [from]: { posted: '0' }, [to]: { posted: '800' } });
    await expectLedgerClean(t.ledger);
  });

  it('one transfer, once: a second start attaches, a start after completion pays nothing', async () => {
    const from = await openFunded(t.ledger, 0, 'once-from', '1000');
    const to = await openFunded(t.ledger, 1, 'once-to', '0');
    const taskQueue = uniqueTaskQueue();
    const gate = new Latch();
    const slowReserve = (acts: TransferActivities): TransferActivities => ({
      ...acts,
      reserveDebit: async (input) => {
        await gate.wait();
        return acts.reserveDebit(input);
      },
    });
    const request = { transferId: 'once-1', from, to, amount: '300', currency: 'USD' };
    await withWorker(taskQueue, slowReserve, async () => {
      const first = await startOnce(env.client, taskQueue, request);
      await gate.reached;
      const second = await startOnce(env.client, taskQueue, request); // while running: attaches
      expect(first.started).toBe(true);
      expect(second.started).toBe(false);
      expect((await second.handle.describe()).runId).toBe((await first.handle.describe()).runId);
      gate.open();
      expect((await transferResult(first.handle)).status).toBe('COMPLETED');
      const third = await startOnce(env.client, taskQueue, request); // after completion: the id reuse policy rejects, we answer with the first run
      expect(third.started).toBe(false);
      expect((await transferResult(third.handle)).status).toBe('COMPLETED');
    });
    await expectBalances(t.ledger, { [from]: { posted: '700' }, [to]: { posted: '300' } });

    // Even a fresh run forced past the id policy cannot pay twice: every ledger key replays.
    const again = await withWorker(taskQueue, undefined, async () => {
      const handle = await env.client.workflow.start('transferWorkflow', { taskQueue, workflowId: 'once-1', args: [request], workflowIdReusePolicy: 'ALLOW_DUPLICATE' });
      return outcomeOf(handle);
    });
    expect(again.status).toBe('COMPLETED');
    expect(again.steps.map((s: { replayed?: boolean }) => s.replayed)).toEqual([true, true, true, true]);
    await expectBalances(t.ledger, { [from]: { posted: '700' }, [to]: { posted: '300' } });

    // A fresh run of the same id with other parameters is a reused key: refused, nothing touched.
    const changed = await withWorker(taskQueue, undefined, async () => {
      const handle = await env.client.workflow.start('transferWorkflow', { taskQueue, workflowId: 'once-1', args: [{ ...request, amount: '999' }], workflowIdReusePolicy: 'ALLOW_DUPLICATE' });
      return outcomeOf(handle);
    });
    expect(changed).toMatchObject({ status: 'FAILED', reason: 'IDEMPOTENCY_KEY_REUSED', compensations: [] });
    const records = await t.ledger.transferRecords('once-1');
    expect(records.holds.map((h) => h.state)).toEqual(['posted', 'posted']);
    await expectBalances(t.ledger, { [from]: { posted: '700' }, [to]: { posted: '300' } });
    await expectLedgerClean(t.ledger);
  });
});
