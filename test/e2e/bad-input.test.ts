import { randomBytes } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { RefusalError } from '../../src/domain/errors.js';
import type { TransferResult } from '../../src/domain/transfer.js';
import { cancelUpdate, statusQuery, TRANSFER_WORKFLOW } from '../../workflows/definitions.js';
import { parseJson, runAll, runCli, type CliResult } from '../support/cli.js';
import { accountOnShard, type TestLedger } from '../support/ledger.js';
import { ledgerChanges, snapshotLedger, unexpectedChanges } from '../support/ledger-snapshot.js';
import { createTestWorker, testPolicy, uniqueTaskQueue, useDevServer } from '../support/temporal.js';
import { cliCases, ledgerCases, updateCases, workflowCases, type Fixture } from './bad-input.catalogue.js';
import { outcomeOf } from '../support/transfers.js';

/**
 * The catalogue of bad input (bad-input.catalogue.ts) fed through every door: each case must be
 * refused with an error naming the field (or account) at fault, and the ledger must be unchanged
 * row for row on both shards, except for the refusal records the ledger keeps by design.
 * Every case is judged; the failures are listed together, so one run shows every gap.
 */
type Json = Record<string, any>;

let t: TestLedger;
let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let cliEnv: Record<string, string>;
const taskQueue = uniqueTaskQueue();
const f: Fixture = { tag: `bad-${randomBytes(3).toString('hex')}`, usd: '', usd2: '', eur: '', frozen: '', closed: '', unknown: '' };
const tried: Record<string, number> = {};

useDevServer((ledger, e) => {
  t = ledger;
  env = e;
});

beforeAll(async () => {
  f.usd = accountOnShard(t.ledger, 0, `${f.tag}-usd`);
  f.usd2 = accountOnShard(t.ledger, 1, `${f.tag}-usd`);
  f.eur = `${f.tag}-eur`;
  f.frozen = `${f.tag}-frozen`;
  f.closed = `${f.tag}-closed`;
  f.unknown = `${f.tag}-nobody`;
  for (const id of [f.usd, f.usd2, f.frozen, f.closed]) await t.ledger.openAccount({ id, currency: 'USD' });
  await t.ledger.openAccount({ id: f.eur, currency: 'EUR' });
  for (const id of [f.usd, f.frozen, f.eur]) await t.ledger.deposit({ key: `${f.tag}-seed-${id}`, accountId: id, amount: '100000', currency: id === f.eur ? 'EUR' : 'USD' });
  await t.ledger.setStatus(f.frozen, 'frozen');
  await t.ledger.setStatus(f.closed, 'closed');
  // 1000.00 and more waits for approval: the cancel-update cases need a transfer that stays open.
  worker = await createTestWorker(env, t.ledger, { taskQueue, policy: testPolicy({ approvalThreshold: '100000' }) });
  running = worker.run();
  cliEnv = { LEDGER_SHARD_URLS: t.urls.join(','), TEMPORAL_ADDRESS: inject('devServerAddress'), TEMPORAL_NAMESPACE: 'default', TEMPORAL_TASK_QUEUE: taskQueue };
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  const total = Object.values(tried).reduce((a, b) => a + b, 0);
  console.log(`bad inputs tried: ${Object.entries(tried).map(([k, n]) => `${k} ${n}`).join(', ')}; total ${total}`);
});

/**
 * Runs `fn` and returns what it changed in the ledger beyond the named refusal records, plus any
 * announced refusal that was not recorded (so the allowance cannot hide a missing refusal).
 */
async function ledgerChangesBy(refusedKeys: string[], fn: () => Promise<void>): Promise<unknown[]> {
  const before = await snapshotLedger(t.urls);
  await fn();
  const changes = ledgerChanges(before, await snapshotLedger(t.urls));
  const recorded = new Set(changes.flatMap((c) => (c.table === 'idempotency_keys' ? c.added.map((r) => (JSON.parse(r) as { key: string }).key) : [])));
  return [...unexpectedChanges(changes, new Set(refusedKeys)), ...refusedKeys.filter((k) => !recorded.has(k)).map((k) => `refusal not recorded under ${k}`)];
}

function judge(failures: string[], label: string, got: { code?: string; message?: string }, want: { code?: string; names: RegExp }, more: string[] = []): void {
  const problems = [...more];
  if (want.code && got.code !== want.code) problems.push(`code ${got.code}, want ${want.code}`);
  if (!want.names.test(got.message ?? '')) problems.push(`message ${JSON.stringify(got.message)} does not name ${want.names}`);
  if (problems.length) failures.push(`${label}: ${problems.join('; ')}`);
}

describe('bad input is refused everywhere it enters, and the ledger is unchanged', () => {
  it('the CLI: exit 2 with one line naming the field (exit 1 for a transfer the ledger refused)', { timeout: 600_000 }, async () => {
    const cases = cliCases(f);
    tried['CLI'] = cases.length;
    const failures: string[] = [];
    const changed = await ledgerChangesBy(cases.flatMap((c) => c.refusedKeys ?? []), async () => {
      const results = await runAll(cases, 3, (c) => runCli(['--json', ...c.args], cliEnv, 120_000));
      results.forEach((r: CliResult, i) => {
        const c = cases[i]!;
        const want = c.exit ?? 2;
        const more = r.code === want ? [] : [`exit ${r.code}, want ${want} (${r.stderr.trim().slice(0, 300)})`];
        let body: Json = {};
        try {
          body = parseJson<Json>(r);
        } catch (error) {
          more.push((error as Error).message.slice(0, 300));
        }
        if (want === 2 && c.code !== 'USAGE') {
          const lines = r.stderr.trim().split('\n');
          if (lines.length !== 1 || lines[0] !== `transfer: ${body.error?.message}`) more.push(`stderr is not the one error line: ${JSON.stringify(r.stderr.slice(0, 300))}`);
        }
        if (want === 1 && body.status !== 'FAILED') more.push(`status ${body.status}, want FAILED`);
        const got = want === 2 ? { code: body.error?.code, message: body.error?.message } : { code: body.reason, message: body.message };
        judge(failures, `CLI ${c.label}`, got, c, more);
      });
    });
    expect({ failures, changed }).toEqual({ failures: [], changed: [] });
  });

  it('the workflow input (a raw start, like `temporal workflow start --input`): FAILED naming the field', { timeout: 300_000 }, async () => {
    const cases = workflowCases(f);
    tried['workflow input'] = cases.length;
    const failures: string[] = [];
    const changed = await ledgerChangesBy(cases.flatMap((c) => c.refusedKeys ?? []), async () => {
      await runAll(cases, 8, async (c) => {
        const handle = await env.client.workflow.start(TRANSFER_WORKFLOW, { taskQueue, workflowId: c.workflowId, args: c.args });
        const result = (await outcomeOf(handle)) as TransferResult;
        judge(failures, `workflow ${c.label}`, { code: result.reason, message: result.message }, c, result.status === 'FAILED' ? [] : [`status ${result.status}, want FAILED`]);
      });
    });
    expect({ failures, changed }).toEqual({ failures: [], changed: [] });
  });

  it('the cancel update: a bad request is rejected naming the field, and the transfer goes on', { timeout: 120_000 }, async () => {
    const cases = updateCases();
    tried['cancel update'] = cases.length;
    const failures: string[] = [];
    const changed = await ledgerChangesBy([], async () => {
      const handle = await env.client.workflow.start(TRANSFER_WORKFLOW, { taskQueue, workflowId: `${f.tag}-awaiting`, args: [{ from: f.usd, to: f.usd2, amount: '100000', currency: 'USD' }] });
      for (let i = 0; i < 100 && (await handle.query(statusQuery)).status !== 'AWAITING_APPROVAL'; i++) await new Promise((r) => setTimeout(r, 100));
      for (const c of cases) {
        const error = await handle.executeUpdate(cancelUpdate, { args: [c.request as never] }).then(() => undefined, (e: Error) => e);
        const message = error ? `${error.message} ${error.cause instanceof Error ? error.cause.message : ''}` : undefined;
        judge(failures, `cancel ${c.label}`, { message }, c, error ? [] : ['accepted']);
      }
      const state = await handle.query(statusQuery);
      if (state.status !== 'AWAITING_APPROVAL') failures.push(`the transfer is ${state.status} after the bad cancels, want AWAITING_APPROVAL`);
      await handle.terminate('bad-input test done').catch(() => undefined); // cleanup: it may have ended already
    });
    expect({ failures, changed }).toEqual({ failures: [], changed: [] });
  });

  it('the Ledger API: a RefusalError naming the field', { timeout: 120_000 }, async () => {
    const cases = ledgerCases(f);
    tried['Ledger API'] = cases.length;
    const failures: string[] = [];
    const changed = await ledgerChangesBy(cases.flatMap((c) => c.refusedKeys ?? []), async () => {
      for (const c of cases) {
        const error = await c.call(t.ledger).then(() => undefined, (e: unknown) => e);
        if (!(error instanceof RefusalError)) {
          failures.push(`ledger ${c.label}: ${error ? `not a refusal: ${(error as Error).name}: ${(error as Error).message}` : 'accepted'}`.slice(0, 400));
          continue;
        }
        judge(failures, `ledger ${c.label}`, error, c);
      }
    });
    expect({ failures, changed }).toEqual({ failures: [], changed: [] });
  });
});
