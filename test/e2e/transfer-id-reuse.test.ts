import { randomBytes } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTransfer, transferResult, TransferIdReusedError } from '../../src/client.js';
import { TRANSFER_WORKFLOW } from '../../workflows/definitions.js';
import { parseJson, runCli } from '../support/cli.js';
import { accountOnShard, type TestLedger } from '../support/ledger.js';
import { createTestWorker, testPolicy, uniqueTaskQueue, useDevServer } from '../support/temporal.js';
import { outcomeOf } from '../support/transfers.js';

/**
 * A transfer id names one transfer. Starting it again with the same parameters answers with that
 * transfer; with any other from/to/amount/currency/memo it is an error naming the fields, and
 * nothing starts — through the CLI (a subprocess) and through startTransfer on the dev server.
 */
type Json = Record<string, any>;

let t: TestLedger;
let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let cliEnv: Record<string, string>;
const taskQueue = uniqueTaskQueue();
const tag = randomBytes(3).toString('hex');
const ids = { alice: '', bob: '', carol: '' };
const json = async (...args: string[]) => {
  const r = await runCli(['--json', ...args], cliEnv);
  return { r, body: parseJson<Json>(r) };
};

useDevServer((ledger, e) => {
  t = ledger;
  env = e;
});

beforeAll(async () => {
  ids.alice = accountOnShard(t.ledger, 0, `reuse-${tag}-alice`);
  ids.bob = accountOnShard(t.ledger, 1, `reuse-${tag}-bob`);
  ids.carol = accountOnShard(t.ledger, 1, `reuse-${tag}-carol`);
  for (const id of Object.values(ids)) await t.ledger.openAccount({ id, currency: 'USD' });
  await t.ledger.deposit({ key: `reuse-${tag}-seed`, accountId: ids.alice, amount: '100000', currency: 'USD' });
  // 500.00 USD and more wait for an approval: such a transfer stays running as long as a test needs.
  worker = await createTestWorker(env, t.ledger, { taskQueue, policy: testPolicy({ approvalThreshold: '50000' }) });
  running = worker.run();
  cliEnv = { LEDGER_SHARD_URLS: t.urls.join(','), TEMPORAL_ADDRESS: inject('devServerAddress'), TEMPORAL_NAMESPACE: 'default', TEMPORAL_TASK_QUEUE: taskQueue };
});

afterAll(async () => {
  worker?.shutdown();
  await running;
});

const posted = async (id: string) => (await t.ledger.getAccount(id)).posted;

describe('a reused transfer id through the CLI', () => {
  it('with another amount: exit 2 naming the field, nothing started, the first transfer untouched', async () => {
    const id = `reuse-${tag}-cli`;
    const send = (...args: string[]) => json('send', '--id', id, '--from', ids.alice, '--currency', 'USD', ...args);
    const first = await send('--to', ids.bob, '--amount', '7.00', '--memo', 'rent', '--wait');
    expect([first.r.code, first.body.status, first.body.started]).toEqual([0, 'COMPLETED', true]);

    const other = await send('--to', ids.bob, '--amount', '8.00', '--memo', 'rent', '--wait');
    expect(other.r.code, other.r.stderr).toBe(2);
    expect(other.body.error).toMatchObject({ code: 'TRANSFER_ID_REUSED', fields: ['amount'] });
    expect(other.r.stderr).toMatch(/^transfer: transfer id .* already exists with other parameters: amount/);

    const many = await send('--to', ids.carol, '--amount', '8.00', '--memo', 'gift', '--wait');
    expect(many.r.code).toBe(2);
    expect(many.body.error.fields).toEqual(['to', 'amount', 'memo']);
    const noMemo = await send('--to', ids.bob, '--amount', '7.00');
    expect([noMemo.r.code, noMemo.body.error?.fields]).toEqual([2, ['memo']]);
    const human = await runCli(['send', '--id', id, '--from', ids.bob, '--to', ids.alice, '--amount', '7', '--currency', 'EUR'], cliEnv);
    expect(human.code).toBe(2);
    expect(human.stderr).toMatch(/from, to, currency/);

    // The same parameters again: the existing transfer, with or without --wait.
    const same = await send('--to', ids.bob, '--amount', '7.00', '--memo', 'rent', '--wait');
    expect([same.r.code, same.body.status, same.body.amount, same.body.started]).toEqual([0, 'COMPLETED', '700', false]);
    const sameNoWait = await send('--to', ids.bob, '--amount', '7.00', '--memo', 'rent');
    expect(sameNoWait.r.code).toBe(0);
    expect(sameNoWait.body).toEqual({ id, status: 'COMPLETED', from: ids.alice, to: ids.bob, amount: '700', currency: 'USD', memo: 'rent', started: false });
    const humanSame = await runCli(['send', '--id', id, '--from', ids.alice, '--to', ids.bob, '--amount', '7.00', '--currency', 'USD', '--memo', 'rent'], cliEnv);
    expect([humanSame.code, humanSame.stdout.trim()]).toEqual([0, `already exists: ${id}  COMPLETED  ${ids.alice} → ${ids.bob}  7.00 USD`]);

    // Only the first transfer moved money; the history holds one run.
    expect([await posted(ids.alice), await posted(ids.bob), await posted(ids.carol)]).toEqual(['99300', '700', '0']);
    const runs = [];
    for await (const w of env.client.workflow.list({ query: `WorkflowId = '${id}'` })) runs.push(w.runId);
    expect(runs).toHaveLength(1);
  });

  it('the same parameters again: the existing outcome decides the exit code', async () => {
    const id = `reuse-${tag}-poor`;
    const args = ['send', '--id', id, '--from', ids.carol, '--to', ids.bob, '--amount', '1.00', '--currency', 'USD'];
    const first = await json(...args, '--wait');
    expect([first.r.code, first.body.status, first.body.reason]).toEqual([1, 'FAILED', 'INSUFFICIENT_FUNDS']);
    const again = await json(...args);
    expect([again.r.code, again.body.status, again.body.started]).toEqual([1, 'FAILED', false]);
  });
});

describe('a reused transfer id through startTransfer', () => {
  const request = (id: string, amount: string, extra: Json = {}) => ({ transferId: id, from: ids.alice, to: ids.bob, amount, currency: 'USD', ...extra });

  it('a running transfer (a second start attaches) with other parameters: TransferIdReusedError with the fields', async () => {
    const id = `reuse-${tag}-running`;
    const first = await startTransfer(env.client, taskQueue, request(id, '60000'));
    expect(first.started).toBe(true);
    const error = await startTransfer(env.client, taskQueue, request(id, '60001', { memo: 'x' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransferIdReusedError);
    expect(error).toMatchObject({ transferId: id, fields: ['amount', 'memo'] });
    const same = await startTransfer(env.client, taskQueue, request(id, '60000'));
    expect([same.started, same.request.amount]).toEqual([false, '60000']);
    await first.handle.cancel();
    expect((await transferResult(first.handle)).status).toBe('CANCELLED');
  });

  it('a closed transfer (REJECT_DUPLICATE) with other parameters: TransferIdReusedError; an amount given as a number is the same amount', async () => {
    const id = `reuse-${tag}-closed`;
    // Started the way `temporal workflow start --input` would: a raw JSON object, amount as a number.
    const raw = await env.client.workflow.start(TRANSFER_WORKFLOW, { taskQueue, workflowId: id, args: [{ from: ids.alice, to: ids.bob, amount: 300, currency: 'USD' }] });
    expect((await outcomeOf(raw)).status).toBe('COMPLETED');
    const same = await startTransfer(env.client, taskQueue, request(id, '300'));
    expect([same.started, same.request]).toEqual([false, { from: ids.alice, to: ids.bob, amount: '300', currency: 'USD' }]);
    const error = await startTransfer(env.client, taskQueue, { ...request(id, '300'), currency: 'EUR' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransferIdReusedError);
    expect((error as TransferIdReusedError).fields).toEqual(['currency']);
  });

  it('two different requests racing for one id: exactly one wins, the other gets the error', async () => {
    // No worker polls this queue: the runs never reach their first workflow task (no memo yet),
    // so the comparison must rest on what the start itself stored.
    const idle = uniqueTaskQueue();
    const races = Array.from({ length: 6 }, (_, i) => `reuse-${tag}-race-${i}`);
    for (const id of races) {
      const outcomes = await Promise.allSettled([startTransfer(env.client, idle, request(id, '100')), startTransfer(env.client, idle, request(id, '200'))]);
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(won, id).toHaveLength(1);
      expect(lost[0]?.reason).toBeInstanceOf(TransferIdReusedError);
      expect((lost[0]?.reason as TransferIdReusedError).fields).toEqual(['amount']);
      await env.client.workflow.getHandle(id).terminate('test cleanup');
    }
  });

  it('the same request racing for one id: both answer with the one run, exactly one says it started it', async () => {
    const idle = uniqueTaskQueue();
    for (let i = 0; i < 6; i++) {
      const id = `reuse-${tag}-same-race-${i}`;
      const both = await Promise.all([startTransfer(env.client, idle, request(id, '100')), startTransfer(env.client, idle, request(id, '100'))]);
      expect(both.map((s) => s.started).sort(), id).toEqual([false, true]);
      expect(both.map((s) => s.request.amount)).toEqual(['100', '100']);
      const runs = await Promise.all(both.map((s) => s.handle.describe().then((d) => d.runId)));
      expect(runs[0]).toBe(runs[1]);
      await env.client.workflow.getHandle(id).terminate('test cleanup');
    }
  });
});
