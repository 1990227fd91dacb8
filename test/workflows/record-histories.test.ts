import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { approveSignal, approveUpdate, cancelUpdate, repairUpdate, statusQuery } from '../../workflows/definitions.js';
import { after, pauseBefore, waitFor, withTransferWorker } from '../support/control.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { connectDevServer, Latch } from '../support/temporal.js';
import { completeOutsideTheSaga, openFunded, startTransfer, outcomeOf } from '../support/transfers.js';

/**
 * Records the histories the replay test replays: run with RECORD_HISTORIES=1 (and
 * RECORD_HISTORIES_PREFIX=<version>- to keep the older ones) after an intended,
 * compatible change to the saga, review the diff, commit. Never regenerate them to make a replay
 * failure go away: that failure means running transfers would break.
 */
const record = process.env.RECORD_HISTORIES === '1';
/** Histories of an older workflow version stay: record a new version under its own prefix. */
const prefix = process.env.RECORD_HISTORIES_PREFIX ?? '';
const dir = new URL('./histories/', import.meta.url);

let t: TestLedger;
let env: TestWorkflowEnvironment;

beforeAll(async () => {
  if (!record) return;
  t = await createTestLedger();
  env = await connectDevServer();
});

afterAll(async () => {
  await env?.teardown();
  await t?.drop();
});

async function save(name: string, workflowId: string): Promise<void> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  await writeFile(new URL(`${prefix}${name}.json`, dir), `${historyToJSON(history)}\n`);
}

describe.skipIf(!record)('record saga histories for the replay test', () => {
  it('records completed, refused, compensated, refunded, cancelled and approved runs', async () => {
    const suffix = Date.now().toString(36);
    const id = (name: string) => `${name}-${suffix}`;
    const rich = await openFunded(t.ledger, 0, 'rec-from', '1000000');
    const to = await openFunded(t.ledger, 1, 'rec-to', '0');
    const frozen = await openFunded(t.ledger, 1, 'rec-frozen', '0');
    await t.ledger.setStatus(frozen, 'frozen');

    await withTransferWorker(env, t.ledger, {}, async (taskQueue) => {
      expect((await outcomeOf(await startTransfer(env, taskQueue, { transferId: id('completed'), from: rich, to, amount: '1000', currency: 'USD', memo: 'recorded' }))).status).toBe('COMPLETED');
      expect((await outcomeOf(await startTransfer(env, taskQueue, { transferId: id('refused'), from: rich, to, amount: '99999999', currency: 'USD' }))).status).toBe('FAILED');
      expect((await outcomeOf(await startTransfer(env, taskQueue, { transferId: id('compensated'), from: rich, to: frozen, amount: '500', currency: 'USD' }))).status).toBe('COMPENSATED');
      expect((await outcomeOf(await startTransfer(env, taskQueue, { transferId: id('invalid'), from: rich, to: rich, amount: '5', currency: 'USD' }))).status).toBe('FAILED');
    });
    const latch = new Latch();
    await withTransferWorker(env, t.ledger, { wrap: pauseBefore('reserveCredit', latch) }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: id('cancelled'), from: rich, to, amount: '700', currency: 'USD' });
      await latch.reached;
      expect((await handle.executeUpdate(cancelUpdate, { args: [{ reason: 'recorded cancel' }] })).status).toBe('CANCELLED');
      latch.open();
    });
    await withTransferWorker(env, t.ledger, { approvalThreshold: '5000' }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: id('approved'), from: rich, to, amount: '6000', currency: 'USD' });
      await waitFor(async () => (await handle.query(statusQuery)).awaitingApproval);
      await handle.signal(approveSignal, { by: 'recorder' });
      expect((await outcomeOf(handle)).status).toBe('COMPLETED');
    });
    for (const name of ['completed', 'refused', 'compensated', 'invalid', 'cancelled', 'approved']) await save(name, id(name));
  });

  // The paths added with the operator repair, approvers and tombstones. Run alone (-t "repair paths")
  // so the histories recorded before them are not re-recorded.
  it('records the repair paths: needs attention then resolved, approval refused then approved, cancelled during approval, expired', async () => {
    const suffix = Date.now().toString(36);
    const id = (name: string) => `${name}-${suffix}`;
    const rich = await openFunded(t.ledger, 0, 'rec2-from', '1000000');
    const to = await openFunded(t.ledger, 1, 'rec2-to', '0');

    const sabotage = after('reserveCredit', async () => {
      await t.ledger.post({ key: `ops:post-${suffix}`, holdKey: `${id('attention')}:reserve-credit`, accountId: to });
      t.clock.advance(16 * 60_000);
    });
    await withTransferWorker(env, t.ledger, { wrap: sabotage }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: id('attention'), from: rich, to, amount: '400', currency: 'USD' });
      await waitFor(async () => (await handle.query(statusQuery)).status === 'NEEDS_ATTENTION');
      expect((await handle.executeUpdate(repairUpdate, { args: [{ action: 'retry', by: 'recorder' }] })).status).toBe('NEEDS_ATTENTION');
      await handle.executeUpdate(repairUpdate, { args: [{ action: 'resolve', note: 'recorded resolution', by: 'recorder' }] });
      expect((await outcomeOf(handle)).status).toBe('RESOLVED');
    });
    const expire = after('reserveCredit', async () => {
      t.clock.advance(60 * 60_000);
      await t.ledger.sweepExpired();
    });
    await withTransferWorker(env, t.ledger, { wrap: expire }, async (taskQueue) => {
      expect((await outcomeOf(await startTransfer(env, taskQueue, { transferId: id('expired'), from: rich, to, amount: '300', currency: 'USD' }))).status).toBe('COMPENSATED');
    });
    await withTransferWorker(env, t.ledger, { approvalThreshold: '5000', approvers: ['alice', 'bob'] }, async (taskQueue) => {
      const refused = await startTransfer(env, taskQueue, { transferId: id('approval-refused'), from: rich, to, amount: '6000', currency: 'USD', requestedBy: 'alice' });
      await waitFor(async () => (await refused.query(statusQuery)).awaitingApproval);
      await refused.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] }).catch(() => undefined);
      await refused.signal(approveSignal, { by: 'mallory' });
      await waitFor(async () => (await refused.query(statusQuery)).lastError?.type === 'APPROVAL_REFUSED');
      await refused.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] });
      expect((await outcomeOf(refused)).status).toBe('COMPLETED');
      const cancelled = await startTransfer(env, taskQueue, { transferId: id('approval-cancelled'), from: rich, to, amount: '6000', currency: 'USD' });
      await waitFor(async () => (await cancelled.query(statusQuery)).awaitingApproval);
      expect((await cancelled.executeUpdate(cancelUpdate, { args: [{ reason: 'recorded cancel' }] })).status).toBe('CANCELLED');
    });
    for (const name of ['attention', 'expired', 'approval-refused', 'approval-cancelled']) await save(name, id(name));
  });

  // A cancel accepted after a lost task had finished the transfer: the unwind completes it instead.
  it('records the roll forward: a cancel during approval after the steps reached the ledger', async () => {
    const suffix = Date.now().toString(36);
    const id = `rolled-forward-${suffix}`;
    const from = await openFunded(t.ledger, 0, 'rec3-from', '1000000');
    const to = await openFunded(t.ledger, 1, 'rec3-to', '0');
    await withTransferWorker(env, t.ledger, { approvalThreshold: '5000' }, async (taskQueue) => {
      const handle = await startTransfer(env, taskQueue, { transferId: id, from, to, amount: '6000', currency: 'USD' });
      await waitFor(async () => (await handle.query(statusQuery)).awaitingApproval);
      await completeOutsideTheSaga(t.ledger, { id, from, to, amount: '6000' });
      expect((await handle.executeUpdate(cancelUpdate, { args: [{ reason: 'recorded late cancel' }] })).status).toBe('COMPLETED');
    });
    await save('rolled-forward', id);
  });
});
