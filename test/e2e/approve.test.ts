import { randomBytes } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { statusQuery } from '../../workflows/definitions.js';
import { parseJson, runCli } from '../support/cli.js';
import { waitFor } from '../support/control.js';
import type { TestLedger } from '../support/ledger.js';
import { createTestWorker, testPolicy, uniqueTaskQueue, useDevServer } from '../support/temporal.js';
import { expectBalances, openFunded, startTransfer, outcomeOf } from '../support/transfers.js';

/** `transfer approve` is answered by the workflow: a refused approval exits 1 and approves nothing. */
type Json = Record<string, any>;
let t: TestLedger;
let env: TestWorkflowEnvironment;
useDevServer((ledger, environment) => {
  t = ledger;
  env = environment;
});
const tag = randomBytes(3).toString('hex');

describe('transfer approve (CLI subprocess, dev server)', () => {
  it('exits 1 for a stranger, for the requester and for $USER when not listed; exits 0 for an approver', async () => {
    const id = `ap-cli-${tag}`;
    const from = await openFunded(t.ledger, 0, `${id}-from`, '100000');
    const to = await openFunded(t.ledger, 1, `${id}-to`, '0');
    const taskQueue = uniqueTaskQueue();
    const cliEnv = { LEDGER_SHARD_URLS: t.urls.join(','), TEMPORAL_ADDRESS: inject('devServerAddress'), TEMPORAL_NAMESPACE: 'default', TEMPORAL_TASK_QUEUE: taskQueue, USER: 'carol' };
    const approve = async (...args: string[]) => {
      const r = await runCli(['--json', 'approve', id, ...args], cliEnv);
      return { code: r.code, body: parseJson<Json>(r), stderr: r.stderr };
    };
    const worker = await createTestWorker(env, t.ledger, { taskQueue, policy: testPolicy({ approvalThreshold: '5000', approvers: ['alice', 'bob'] }) });
    await worker.runUntil(async () => {
      const handle = await startTransfer(env, taskQueue, { transferId: id, from, to, amount: '6000', currency: 'USD', requestedBy: 'alice' });
      await waitFor(async () => (await handle.query(statusQuery)).awaitingApproval, 30_000);

      const stranger = await approve('--by', 'mallory');
      expect([stranger.code, stranger.body.error?.code]).toEqual([1, 'APPROVAL_REFUSED']);
      expect(stranger.stderr).toMatch(/mallory is not an approver/);
      const requester = await approve('--by', 'alice');
      expect([requester.code, requester.body.error?.message]).toEqual([1, expect.stringMatching(/alice requested this transfer/)]);
      const fromUser = await approve(); // --by defaults to $USER (carol), who is not listed
      expect([fromUser.code, fromUser.body.error?.message]).toEqual([1, expect.stringMatching(/carol is not an approver/)]);
      expect((await handle.query(statusQuery)).status).toBe('AWAITING_APPROVAL');

      const ok = await approve('--by', 'bob');
      expect([ok.code, ok.body]).toEqual([0, { id, approved: true, by: 'bob' }]);
      expect((await outcomeOf(handle)).status).toBe('COMPLETED');
    });
    await expectBalances(t.ledger, { [from]: { posted: '94000' }, [to]: { posted: '6000' } });
  });
});
