import { randomBytes } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { TransferActivities } from '../../activities/index.js';
import { Refusal } from '../../src/domain/codes.js';
import { RefusalError } from '../../src/domain/errors.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { statusQuery } from '../../workflows/definitions.js';
import { parseJson, runCli } from '../support/cli.js';
import { waitFor } from '../support/control.js';
import type { TestLedger } from '../support/ledger.js';
import { createTestWorker, Latch, uniqueTaskQueue, useDevServer } from '../support/temporal.js';
import { expectBalances, expectLedgerClean, openFunded, startTransfer } from '../support/transfers.js';

/**
 * `transfer repair` as an operator runs it: our CLI as a subprocess against the dev server and the
 * test's ledger shards, with an in-process worker whose activities the test can stall or refuse.
 */
type Json = Record<string, any>;
let t: TestLedger;
let env: TestWorkflowEnvironment;
useDevServer((ledger, environment) => {
  t = ledger;
  env = environment;
});
const tag = randomBytes(3).toString('hex');
const cliEnv = (taskQueue: string) => ({ LEDGER_SHARD_URLS: t.urls.join(','), TEMPORAL_ADDRESS: inject('devServerAddress'), TEMPORAL_NAMESPACE: 'default', TEMPORAL_TASK_QUEUE: taskQueue, USER: 'test-operator' });
async function cli(taskQueue: string, ...args: string[]) {
  const r = await runCli(['--json', ...args], cliEnv(taskQueue), 60_000);
  return { code: r.code, body: parseJson<Json>(r), stderr: r.stderr };
}

/** The worker "dies" before posting the credit: the activity never reaches the ledger. */
function stallBeforePostCredit(latch: Latch) {
  return (acts: TransferActivities): TransferActivities => ({
    ...acts,
    postCredit: async () => {
      await latch.wait();
      throw new Error('abandoned: the run was terminated');
    },
  });
}

async function terminatedAfterPostDebit(id: string, amount: string) {
  const from = await openFunded(t.ledger, 0, `${id}-from`, '10000');
  const to = await openFunded(t.ledger, 1, `${id}-to`, '0');
  const taskQueue = uniqueTaskQueue();
  const latch = new Latch();
  const worker = await createTestWorker(env, t.ledger, { taskQueue, wrap: stallBeforePostCredit(latch) });
  await worker.runUntil(async () => {
    const handle = await startTransfer(env, taskQueue, { transferId: id, from, to, amount, currency: 'USD' });
    await latch.reached;
    // --finish is refused while the run is open, and changes nothing.
    const before = await t.ledger.transferRecords(id);
    const open = await cli(taskQueue, 'repair', id, '--finish');
    expect([open.code, open.body.error?.code]).toEqual([1, 'REPAIR_REJECTED']);
    expect(open.stderr).toMatch(/workflow run is open/);
    expect(await t.ledger.transferRecords(id)).toEqual(before);
    await handle.terminate('operator killed the run');
    latch.open();
  });
  return { from, to, taskQueue };
}

describe('transfer repair (CLI subprocess, dev server)', () => {
  it('a terminated run: status says what the ledger holds, --finish posts the credit', async () => {
    const id = `rp-post-${tag}`;
    const { from, to, taskQueue } = await terminatedAfterPostDebit(id, '1234');
    const status = await cli(taskQueue, 'status', id);
    expect(status.code).toBe(0);
    expect(status.body).toMatchObject({ status: 'NEEDS_ATTENTION', runStatus: 'TERMINATED', reason: 'WORKFLOW_TERMINATED', ledger: { debit: 'posted', credit: 'pending', inClearing: '1234' } });
    expect(status.body.message).toContain('debit posted, credit pending: 12.34 USD in clearing');
    const diagnosis = await cli(taskQueue, 'repair', id);
    expect([diagnosis.code, diagnosis.body.plan]).toEqual([0, 'post the credit (if its hold has expired: void it and refund the debit)']);
    await expectBalances(t.ledger, { [from]: { posted: '8766' }, [to]: { posted: '0', pendingCredits: '1234' } });

    const finished = await cli(taskQueue, 'repair', id, '--finish');
    expect(finished.code).toBe(0);
    expect(finished.body).toMatchObject({ status: 'COMPLETED', steps: [{ step: 'post-credit', outcome: 'posted' }], ledger: { debit: 'posted', credit: 'posted', inClearing: '0' } });
    expect((await cli(taskQueue, 'status', id)).body).toMatchObject({ status: 'COMPLETED', runStatus: 'TERMINATED', reason: 'WORKFLOW_TERMINATED' });
    // Again: every step replays under its key, nothing moves twice.
    expect((await cli(taskQueue, 'repair', id, '--finish')).body).toMatchObject({ status: 'COMPLETED', steps: [] });
    await expectBalances(t.ledger, { [from]: { posted: '8766' }, [to]: { posted: '1234' } });
    await expectLedgerClean(t.ledger);
  });

  it('a terminated run whose credit hold expired: --finish refunds the debit', async () => {
    const id = `rp-refund-${tag}`;
    const { from, to, taskQueue } = await terminatedAfterPostDebit(id, '500');
    t.clock.advance(16 * 60_000);
    await t.ledger.sweepExpired(); // the credit hold lives no longer
    expect((await cli(taskQueue, 'status', id)).body).toMatchObject({ status: 'NEEDS_ATTENTION', ledger: { debit: 'posted', credit: 'expired', inClearing: '500' } });
    const finished = await cli(taskQueue, 'repair', id, '--finish', '--by', 'ops');
    expect(finished.code).toBe(0);
    expect(finished.body).toMatchObject({ status: 'COMPENSATED', ledger: { debit: 'refunded', credit: 'expired', inClearing: '0' } });
    expect(finished.body.steps).toEqual([{ step: 'void-credit', outcome: 'already_expired' }, { step: 'refund-debit', outcome: 'refunded' }]);
    await expectBalances(t.ledger, { [from]: { posted: '10000' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });

  it('NEEDS_ATTENTION: status shows it, --retry answers "still blocked" until the cause is fixed, then the transfer ends', async () => {
    const id = `rp-attn-${tag}`;
    const from = await openFunded(t.ledger, 0, `${id}-from`, '1000');
    const to = await openFunded(t.ledger, 1, `${id}-to`, '0');
    await t.ledger.setStatus(to, 'frozen'); // the credit is refused: the debit hold must be voided
    let refusing = true;
    const ledger = new Proxy(t.ledger, {
      get(target, prop) {
        if (prop === 'void') {
          return async (input: Parameters<Ledger['void']>[0]) => {
            if (refusing) throw new RefusalError(Refusal.HOLD_NOT_FOUND, 'test: the ledger refuses this void');
            return target.void(input);
          };
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const taskQueue = uniqueTaskQueue();
    const worker = await createTestWorker(env, ledger, { taskQueue });
    await worker.runUntil(async () => {
      const handle = await startTransfer(env, taskQueue, { transferId: id, from, to, amount: '300', currency: 'USD' });
      await waitFor(async () => (await handle.query(statusQuery)).status === 'NEEDS_ATTENTION', 30_000);
      const status = await cli(taskQueue, 'status', id);
      expect(status.body).toMatchObject({ status: 'NEEDS_ATTENTION', reason: 'HOLD_NOT_FOUND', attention: { step: 'void-debit', code: 'HOLD_NOT_FOUND' } });
      expect(status.body.message).toContain('void-debit: test: the ledger refuses this void');

      const still = await cli(taskQueue, 'repair', id, '--retry');
      expect([still.code, still.body.status, still.body.attention?.code]).toEqual([1, 'NEEDS_ATTENTION', 'HOLD_NOT_FOUND']);
      const closedOnly = await cli(taskQueue, 'repair', id, '--finish');
      expect(closedOnly.code).toBe(1);

      refusing = false;
      const done = await cli(taskQueue, 'repair', id, '--retry');
      expect([done.code, done.body.status]).toEqual([0, 'COMPENSATED']);
      expect(done.body.result.steps.filter((s: Json) => s.step === 'void-debit').map((s: Json) => s.outcome)).toEqual(['blocked', 'blocked', 'ok']);

      const after = await cli(taskQueue, 'repair', id, '--retry');
      expect([after.code, after.body.error?.code]).toEqual([1, 'REPAIR_REJECTED']);
    });
    await expectBalances(t.ledger, { [from]: { posted: '1000' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });
});
