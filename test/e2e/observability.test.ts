import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ephemeralPort } from '../../src/embedded/ports.js';
import { runWorker, type RunningWorker } from '../../src/runtime.js';
import { TRANSFER_WORKFLOW } from '../../workflows/definitions.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { connectDevServer, uniqueTaskQueue } from '../support/temporal.js';
import { openFunded, startTransfer, outcomeOf } from '../support/transfers.js';
import { waitFor } from '../support/control.js';

/** What an operator sees of the worker: JSON log lines carrying transfer ids, and Prometheus metrics. */
let t: TestLedger;
let env: TestWorkflowEnvironment;
let running: RunningWorker;
let port: number;
const lines: Record<string, unknown>[] = [];
const taskQueue = uniqueTaskQueue();

beforeAll(async () => {
  t = await createTestLedger();
  env = await connectDevServer();
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  port = await ephemeralPort();
  // 1,000,000.00 USD and more waits for approval (read by runWorker's policy): the gauge test's transfer.
  const threshold = process.env.TRANSFER_APPROVAL_THRESHOLD;
  process.env.TRANSFER_APPROVAL_THRESHOLD = '100000000';
  try {
    running = await runWorker({ connection: env.nativeConnection, namespace: 'default', taskQueue, ledger: t.ledger, logger, metricsPort: port, openTransfersEveryMs: 200 });
  } finally {
    if (threshold === undefined) delete process.env.TRANSFER_APPROVAL_THRESHOLD;
    else process.env.TRANSFER_APPROVAL_THRESHOLD = threshold;
  }
});

afterAll(async () => {
  await running?.stop();
  await env?.teardown();
  await t?.drop();
});

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (ok) return Number(line.split(' ').pop());
  }
  return undefined;
}

describe('worker observability', () => {
  it('counts outcomes, compensations, step latencies and idempotent replays; logs carry transfer ids', async () => {
    const from = await openFunded(t.ledger, 0, 'obs-from', '10000');
    const to = await openFunded(t.ledger, 1, 'obs-to', '0');
    const frozen = await openFunded(t.ledger, 1, 'obs-frozen', '0');
    await t.ledger.setStatus(frozen, 'frozen');
    expect((await outcomeOf(await startTransfer(env, taskQueue, { transferId: 'obs-ok', from, to, amount: '100', currency: 'USD' }))).status).toBe('COMPLETED');
    expect((await outcomeOf(await startTransfer(env, taskQueue, { transferId: 'obs-poor', from, to, amount: '999999', currency: 'USD' }))).status).toBe('FAILED');
    expect((await outcomeOf(await startTransfer(env, taskQueue, { transferId: 'obs-comp', from, to: frozen, amount: '50', currency: 'USD' }))).status).toBe('COMPENSATED');
    // A second run of a finished transfer, forced past the id policy: four replays, no money moves.
    const again = await env.client.workflow.start(TRANSFER_WORKFLOW, { taskQueue, workflowId: 'obs-ok', args: [{ from, to, amount: '100', currency: 'USD' }], workflowIdReusePolicy: 'ALLOW_DUPLICATE' });
    expect((await outcomeOf(again)).status).toBe('COMPLETED');

    const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
    expect(sample(text, 'transfer_outcomes_total', { status: 'COMPLETED' })).toBe(2);
    expect(sample(text, 'transfer_outcomes_total', { status: 'FAILED', reason: 'INSUFFICIENT_FUNDS' })).toBe(1);
    expect(sample(text, 'transfer_outcomes_total', { status: 'COMPENSATED', reason: 'ACCOUNT_FROZEN' })).toBe(1);
    expect(sample(text, 'transfer_compensations_total', { step: 'void-debit', outcome: 'voided' })).toBe(1);
    for (const step of ['reserve-debit', 'reserve-credit', 'post-debit', 'post-credit']) {
      expect(sample(text, 'transfer_idempotent_replays_total', { step }), step).toBe(1);
    }
    expect(sample(text, 'transfer_step_duration_seconds_count', { step: 'reserve-debit', outcome: 'ok' })).toBe(3); // ok, compensated, replayed
    expect(sample(text, 'transfer_step_duration_seconds_count', { step: 'reserve-debit', outcome: 'refused' })).toBe(1);
    expect(sample(text, 'transfer_step_duration_seconds_count', { step: 'reserve-credit', outcome: 'refused' })).toBe(1);
    // The ledger's steps, each sent alone or inside a batch, are counted per shard: at least the 12
    // steps of these four runs (4 + 4 replayed, 1 refused, 3 of the compensated one).
    const stepsSent = [0, 1].map((shard) =>
      (sample(text, 'transfer_ledger_step_calls_total', { shard: String(shard), kind: 'alone' }) ?? 0) + (sample(text, 'transfer_ledger_batched_steps_total', { shard: String(shard) }) ?? 0));
    expect(stepsSent.every((n) => n > 0)).toBe(true);
    expect(stepsSent[0]! + stepsSent[1]!).toBeGreaterThanOrEqual(12);
    expect(sample(text, 'transfer_ledger_steps_waiting', { shard: '0' })).toBe(0);

    // Whole-transfer latency by outcome (the duplicate run too), and money moved: the forced second
    // run of obs-ok replayed its postings, so 100 minor units moved, not 200.
    expect(sample(text, 'transfer_duration_seconds_count', { status: 'COMPLETED' })).toBe(2);
    expect(sample(text, 'transfer_duration_seconds_count', { status: 'FAILED' })).toBe(1);
    expect(sample(text, 'transfer_duration_seconds_count', { status: 'COMPENSATED' })).toBe(1);
    expect(sample(text, 'transfer_duration_seconds_sum', { status: 'COMPLETED' })).toBeGreaterThan(0);
    expect(sample(text, 'transfer_money_moved_minor_units_total', { currency: 'USD' })).toBe(100);

    // At info, a step that went through logs nothing (LOG_LEVEL=debug shows each), and a refused step
    // neither: each transfer ends in exactly one line, a refusal's at warn with its reason and message.
    expect(lines.filter((l) => typeof l['step'] === 'string')).toEqual([]);
    const endings = (id: string) => lines.filter((l) => l['transferId'] === id);
    expect(endings('obs-poor')).toEqual([expect.objectContaining({ level: 40, status: 'FAILED', reason: 'INSUFFICIENT_FUNDS', from, to, amount: '999999', currency: 'USD' })]);
    expect(String(endings('obs-poor')[0]!['msg'])).toMatch(/^transfer FAILED \(INSUFFICIENT_FUNDS\): .*insufficient/);
    expect(endings('obs-comp')).toEqual([expect.objectContaining({ level: 40, status: 'COMPENSATED', reason: 'ACCOUNT_FROZEN' })]);
    expect(String(endings('obs-comp')[0]!['msg'])).toContain('frozen');
    expect(endings('obs-ok')).toEqual([
      expect.objectContaining({ level: 30, status: 'COMPLETED', amount: '100', currency: 'USD', msg: 'transfer COMPLETED' }),
      expect.objectContaining({ level: 30, status: 'COMPLETED', replayed: true }),
    ]);
  });

  it('gauges transfers in flight and awaiting approval from visibility', async () => {
    const from = await openFunded(t.ledger, 0, 'obs-big-from', '0');
    const to = await openFunded(t.ledger, 1, 'obs-big-to', '0');
    const gauge = async (name: string) => {
      const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
      return Number(/^(\S+) (\S+)$/m.exec(text.split('\n').filter((l) => l.startsWith(`${name} `)).join('\n'))?.[2]);
    };
    const big = await startTransfer(env, taskQueue, { transferId: 'obs-big', from, to, amount: '100000000', currency: 'USD' });
    await waitFor(async () => (await gauge('transfer_awaiting_approval')) === 1 && (await gauge('transfer_in_flight')) === 1, 20_000);
    await big.terminate('observability test: done waiting');
    await waitFor(async () => (await gauge('transfer_awaiting_approval')) === 0 && (await gauge('transfer_in_flight')) === 0, 20_000);
  });
});
