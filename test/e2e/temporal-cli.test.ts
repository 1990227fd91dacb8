import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { formatMoney } from '../../src/domain/money.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { after, waitFor, withTransferWorker } from '../support/control.js';
import { connectDevServer } from '../support/temporal.js';
import { expectBalances, expectLedgerClean, openFunded } from '../support/transfers.js';

/**
 * The operator's path: the real `temporal` CLI binary (the one that runs the dev server) against the
 * dev server, with one of our workers in-process. Every command here is also in docs/temporal-cli.md.
 */

const exec = promisify(execFile);
const APPROVAL_THRESHOLD = '100000';

let t: TestLedger;
let env: TestWorkflowEnvironment;
const run = randomBytes(3).toString('hex');

function cliPath(): string {
  const cli = inject('temporalCli');
  if (!cli) throw new Error('the dev server did not come from a `temporal` binary on disk (SDK download); set TEMPORAL_CLI_PATH to a temporal CLI to run this file');
  return cli;
}

/** Runs `temporal <args> --address <dev server> --namespace default`; stdout, or an error carrying stderr. */
async function temporal(...args: string[]): Promise<string> {
  const full = [...args, '--address', inject('devServerAddress'), '--namespace', 'default'];
  try {
    const { stdout } = await exec(cliPath(), full, { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`temporal ${full.join(' ')} failed: ${e.message}\nstdout: ${e.stdout ?? ''}\nstderr: ${e.stderr ?? ''}`);
  }
}

async function temporalJson<T = Record<string, unknown>>(...args: string[]): Promise<T> {
  const out = await temporal(...args, '--output', 'json');
  try {
    return JSON.parse(out) as T;
  } catch {
    throw new Error(`temporal ${args.join(' ')} --output json printed no JSON:\n${out}`);
  }
}

interface Payload {
  data?: string;
  metadata?: Record<string, string>;
}
/** `describe`/`list`/`show` print payloads as protobuf JSON: base64 data holding json/plain text. */
const decode = (p: Payload | undefined): unknown => (p?.data === undefined ? undefined : JSON.parse(Buffer.from(p.data, 'base64').toString('utf8')));
const searchAttributes = (info: { searchAttributes?: { indexedFields?: Record<string, Payload> } }): Record<string, unknown> =>
  Object.fromEntries(Object.entries(info.searchAttributes?.indexedFields ?? {}).map(([k, v]) => [k, decode(v)]));

interface Started {
  workflowId: string;
  runId: string;
  type: string;
  taskQueue: string;
}
interface Describe {
  executionConfig: { userMetadata?: { summary?: unknown } };
  workflowExecutionInfo: { execution: { workflowId: string; runId: string }; status: string; type: { name: string }; memo?: { fields?: Record<string, unknown> }; searchAttributes?: { indexedFields?: Record<string, Payload> } };
}
interface Execution {
  execution: { workflowId: string; runId: string };
  status: string;
  searchAttributes?: { indexedFields?: Record<string, Payload> };
}
interface HistoryEvent {
  eventType: string;
  userMetadata?: { summary?: Payload };
  markerRecordedEventAttributes?: { markerName?: string; details?: Record<string, { payloads?: Payload[] }> };
}

/** The operator's start: transfer id = workflow id, run once (RejectDuplicate), with a summary for the Web UI. */
function start(taskQueue: string, workflowId: string, input: { from: string; to: string; amount: string; currency: string; requestedBy?: string }): Promise<Started> {
  return temporalJson<Started>(
    'workflow', 'start',
    '--task-queue', taskQueue,
    '--type', 'transferWorkflow',
    '--workflow-id', workflowId,
    '--id-reuse-policy', 'RejectDuplicate',
    '--static-summary', summaryOf(input),
    '--input', JSON.stringify(input),
  );
}

const summaryOf = (input: { from: string; to: string; amount: string; currency: string }) =>
  `Transfer ${formatMoney(BigInt(input.amount), input.currency)} from ${input.from} to ${input.to}`;

async function status(workflowId: string): Promise<Record<string, unknown>> {
  const answer = await temporalJson<{ queryResult: Record<string, unknown>[] }>('workflow', 'query', '--workflow-id', workflowId, '--name', 'status');
  return answer.queryResult[0]!;
}

async function awaitingApproval(workflowId: string): Promise<void> {
  await waitFor(async () => (await status(workflowId).catch(() => undefined))?.status === 'AWAITING_APPROVAL', 15_000);
}

beforeAll(async () => {
  t = await createTestLedger();
  env = await connectDevServer();
});

afterAll(async () => {
  await env?.teardown();
  await t?.drop();
});

describe('temporal CLI against the dev server', () => {
  it('starts a transfer, waits for its result, describes it, queries its status and shows its history', async () => {
    const from = await openFunded(t.ledger, 0, `cli-${run}-from`, '10000');
    const to = await openFunded(t.ledger, 1, `cli-${run}-to`, '0');
    const id = `cli-${run}-pay`;
    let firstRun = '';
    await withTransferWorker(env, t.ledger, { approvalThreshold: APPROVAL_THRESHOLD }, async (taskQueue) => {
      const started = await start(taskQueue, id, { from, to, amount: '2500', currency: 'USD' });
      expect(started).toMatchObject({ workflowId: id, type: 'transferWorkflow', taskQueue });
      firstRun = started.runId;

      const result = await temporalJson<{ status: string; result: Record<string, unknown> }>('workflow', 'result', '--workflow-id', id);
      expect(result.status).toBe('COMPLETED');
      expect(result.result).toMatchObject({ transferId: id, status: 'COMPLETED', from, to, amount: '2500', currency: 'USD' });

      const described = await temporalJson<Describe>('workflow', 'describe', '--workflow-id', id);
      expect(described.workflowExecutionInfo.status).toBe('WORKFLOW_EXECUTION_STATUS_COMPLETED');
      expect(described.workflowExecutionInfo.type.name).toBe('transferWorkflow');
      expect(described.workflowExecutionInfo.execution).toEqual({ workflowId: id, runId: firstRun });
      expect(described.workflowExecutionInfo.memo?.fields?.['request']).toEqual({ from, to, amount: '2500', currency: 'USD' });
      expect(described.executionConfig.userMetadata?.summary).toBe(`Transfer 25.00 USD from ${from} to ${to}`);
      expect(searchAttributes(described.workflowExecutionInfo)).toMatchObject({ TransferStatus: 'COMPLETED', FromAccount: from, ToAccount: to, Currency: 'USD', Amount: 2500 });

      // A closed transfer still answers the status query (a worker on its task queue replays it).
      expect(await status(id)).toMatchObject({ transferId: id, status: 'COMPLETED', step: 'done', cancellable: false });
    });

    await expectBalances(t.ledger, { [from]: { posted: '7500' }, [to]: { posted: '2500' } });
    await expectLedgerClean(t.ledger);

    const history = await temporalJson<{ events: HistoryEvent[] }>('workflow', 'show', '--workflow-id', id);
    // The ledger steps run as local activities: each is a marker in history, with its summary.
    const steps = history.events.filter((e) => e.eventType === 'EVENT_TYPE_MARKER_RECORDED' && e.markerRecordedEventAttributes?.markerName === 'core_local_activity');
    expect(steps.map((e) => (decode(e.markerRecordedEventAttributes?.details?.['data']?.payloads?.[0]) as { activity_type?: string }).activity_type)).toEqual(['transferPolicy', 'reserveDebit', 'reserveCredit', 'postDebit', 'postCredit']);
    expect(steps.slice(1).map((e) => decode(e.userMetadata?.summary))).toEqual([
      `reserve 25.00 USD on ${from}`,
      `reserve 25.00 USD credit on ${to}`,
      `post 25.00 USD debit on ${from}`,
      `post 25.00 USD credit to ${to}`,
    ]);
    expect(history.events.at(-1)?.eventType).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED');

    // The same start again: with RejectDuplicate the finished transfer is not run a second time;
    // the CLI answers with the existing run, and no money moves.
    await withTransferWorker(env, t.ledger, { approvalThreshold: APPROVAL_THRESHOLD }, async (taskQueue) => {
      const again = await start(taskQueue, id, { from, to, amount: '2500', currency: 'USD' });
      expect(again.runId).toBe(firstRun);
      const described = await temporalJson<Describe>('workflow', 'describe', '--workflow-id', id);
      expect(described.workflowExecutionInfo.execution.runId).toBe(firstRun);
    });
    await expectBalances(t.ledger, { [from]: { posted: '7500' }, [to]: { posted: '2500' } });
  });

  it('queries a transfer waiting for approval and cancels it with the cancel update', async () => {
    const from = await openFunded(t.ledger, 0, `cli-${run}-big`, '500000');
    const to = await openFunded(t.ledger, 1, `cli-${run}-dest`, '0');
    const id = `cli-${run}-cancel`;
    await withTransferWorker(env, t.ledger, { approvalThreshold: APPROVAL_THRESHOLD }, async (taskQueue) => {
      await start(taskQueue, id, { from, to, amount: '150000', currency: 'USD' });
      await awaitingApproval(id);
      expect(await status(id)).toMatchObject({ transferId: id, status: 'AWAITING_APPROVAL', step: 'approval', awaitingApproval: true, cancellable: true });

      const update = await temporalJson<{ name: string; result: Record<string, unknown> }>('workflow', 'update', 'execute', '--workflow-id', id, '--name', 'cancel', '--input', '{"reason":"cli"}');
      expect(update.name).toBe('cancel');
      expect(update.result).toMatchObject({ transferId: id, status: 'CANCELLED', reason: 'CANCELLED', message: 'cli', holds: [], postings: [] });

      const result = await temporalJson<{ status: string; result: Record<string, unknown> }>('workflow', 'result', '--workflow-id', id);
      expect(result).toMatchObject({ status: 'COMPLETED', result: { status: 'CANCELLED' } });
    });
    const described = await temporalJson<Describe>('workflow', 'describe', '--workflow-id', id);
    expect(searchAttributes(described.workflowExecutionInfo)).toMatchObject({ TransferStatus: 'CANCELLED', Amount: 150000 });
    await expectBalances(t.ledger, { [from]: { posted: '500000' }, [to]: { posted: '0' } });
    await expectLedgerClean(t.ledger);
  });

  it('approves a waiting transfer with the approve signal, then finds it by search attributes', async () => {
    const from = await openFunded(t.ledger, 0, `cli-${run}-payer`, '500000');
    const to = await openFunded(t.ledger, 1, `cli-${run}-payee`, '0');
    const id = `cli-${run}-approve`;
    await withTransferWorker(env, t.ledger, { approvalThreshold: APPROVAL_THRESHOLD }, async (taskQueue) => {
      await start(taskQueue, id, { from, to, amount: '150000', currency: 'USD' });
      await awaitingApproval(id);

      await temporal('workflow', 'signal', '--workflow-id', id, '--name', 'approve', '--input', '{"by":"cli"}');
      const result = await temporalJson<{ status: string; result: { status: string; steps: { step: string; outcome: string }[] } }>('workflow', 'result', '--workflow-id', id);
      expect(result.result.status).toBe('COMPLETED');
      expect(result.result.steps.map((s) => `${s.step}:${s.outcome}`)).toEqual(['approval:ok', 'reserve-debit:ok', 'reserve-credit:ok', 'post-debit:ok', 'post-credit:ok']);
    });
    await expectBalances(t.ledger, { [from]: { posted: '350000' }, [to]: { posted: '150000' } });
    await expectLedgerClean(t.ledger);

    // Visibility is eventually consistent: the closed run shows up in the filtered list shortly after.
    const query = `TransferStatus='COMPLETED' AND FromAccount='${from}'`;
    let found: Execution[] = [];
    await waitFor(async () => {
      const out = await temporal('workflow', 'list', '--query', query, '--output', 'json');
      found = out.trim() ? (JSON.parse(out) as Execution[]) : [];
      return found.some((e) => e.execution.workflowId === id);
    }, 15_000);
    expect(found.map((e) => e.execution.workflowId)).toEqual([id]);
    expect(found[0]!.status).toBe('WORKFLOW_EXECUTION_STATUS_COMPLETED');
    expect(searchAttributes(found[0]!)).toMatchObject({ TransferStatus: 'COMPLETED', FromAccount: from, ToAccount: to, Amount: 150000, Currency: 'USD' });
  });

  it('approve as an update answers a refusal (not an approver, the requester) and then approves', async () => {
    const from = await openFunded(t.ledger, 0, `cli-${run}-upd-from`, '500000');
    const to = await openFunded(t.ledger, 1, `cli-${run}-upd-to`, '0');
    const id = `cli-${run}-approve-update`;
    await withTransferWorker(env, t.ledger, { approvalThreshold: APPROVAL_THRESHOLD, approvers: ['alice', 'bob'] }, async (taskQueue) => {
      await start(taskQueue, id, { from, to, amount: '150000', currency: 'USD', requestedBy: 'alice' });
      await awaitingApproval(id);
      const approve = (by: string) => temporalJson<{ name: string; result: Record<string, unknown> }>('workflow', 'update', 'execute', '--workflow-id', id, '--name', 'approve', '--input', JSON.stringify({ by }));
      await expect(approve('mallory')).rejects.toThrow(/mallory is not an approver/);
      await expect(approve('alice')).rejects.toThrow(/alice requested this transfer and cannot approve it/);
      expect(await status(id)).toMatchObject({ status: 'AWAITING_APPROVAL', lastError: { type: 'APPROVAL_REFUSED' } });
      expect((await approve('bob')).result).toEqual({ approved: true, by: 'bob' });
      const result = await temporalJson<{ result: { status: string } }>('workflow', 'result', '--workflow-id', id);
      expect(result.result.status).toBe('COMPLETED');
    });
  });

  it('a transfer that needs attention: the status query says why, the repair update resolves it', async () => {
    const from = await openFunded(t.ledger, 0, `cli-${run}-na-from`, '1000');
    const to = await openFunded(t.ledger, 1, `cli-${run}-na-to`, '0');
    const id = `cli-${run}-attention`;
    // The credit is posted out of band and the debit hold expires: void-credit meets HOLD_POSTED.
    const sabotage = after('reserveCredit', async () => {
      await t.ledger.post({ key: `ops:${id}`, holdKey: `${id}:reserve-credit`, accountId: to });
      t.clock.advance(16 * 60_000);
    });
    await withTransferWorker(env, t.ledger, { wrap: sabotage }, async (taskQueue) => {
      await start(taskQueue, id, { from, to, amount: '400', currency: 'USD' });
      await waitFor(async () => (await status(id).catch(() => undefined))?.status === 'NEEDS_ATTENTION', 15_000);
      expect(await status(id)).toMatchObject({ attention: { step: 'void-credit', code: 'HOLD_POSTED' } });
      const repair = await temporalJson<{ name: string; result: { result?: Record<string, unknown> } }>('workflow', 'update', 'execute', '--workflow-id', id, '--name', 'repair', '--input', '{"action":"resolve","note":"credit reversed by hand","by":"ops"}');
      expect(repair.result.result).toMatchObject({ status: 'RESOLVED', resolution: { note: 'credit reversed by hand', by: 'ops' } });
    });
    const described = await temporalJson<Describe>('workflow', 'describe', '--workflow-id', id);
    expect(searchAttributes(described.workflowExecutionInfo)).toMatchObject({ TransferStatus: 'RESOLVED' });
  });
});
