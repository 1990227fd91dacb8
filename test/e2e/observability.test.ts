import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ephemeralPort } from '../../src/embedded/ports.js';
import { runWorker, type RunningWorker } from '../../src/runtime.js';
import { TRANSFER_WORKFLOW } from '../../workflows/definitions.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { connectDevServer, uniqueTaskQueue } from '../support/temporal.js';
import { openFunded, startTransfer } from '../support/transfers.js';

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
  running = await runWorker({ connection: env.nativeConnection, namespace: 'default', taskQueue, ledger: t.ledger, logger, metricsPort: port });
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
    expect((await (await startTransfer(env, taskQueue, { transferId: 'obs-ok', from, to, amount: '100', currency: 'USD' })).result()).status).toBe('COMPLETED');
    expect((await (await startTransfer(env, taskQueue, { transferId: 'obs-poor', from, to, amount: '999999', currency: 'USD' })).result()).status).toBe('FAILED');
    expect((await (await startTransfer(env, taskQueue, { transferId: 'obs-comp', from, to: frozen, amount: '50', currency: 'USD' })).result()).status).toBe('COMPENSATED');
    // A second run of a finished transfer, forced past the id policy: four replays, no money moves.
    const again = await env.client.workflow.start(TRANSFER_WORKFLOW, { taskQueue, workflowId: 'obs-ok', args: [{ from, to, amount: '100', currency: 'USD' }], workflowIdReusePolicy: 'ALLOW_DUPLICATE' });
    expect((await again.result()).status).toBe('COMPLETED');

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

    // At info, a step that went through logs nothing (LOG_LEVEL=debug shows each); a refusal logs one line.
    const activityLines = lines.filter((l) => typeof l['step'] === 'string');
    expect(activityLines.filter((l) => String(l['msg']).endsWith(' done') || String(l['msg']).endsWith(' replayed'))).toEqual([]);
    expect(activityLines.map((l) => `${String(l['transferId'])} ${String(l['step'])} ${String(l['code'])}`).sort()).toEqual(['obs-comp reserve-credit ACCOUNT_FROZEN', 'obs-poor reserve-debit INSUFFICIENT_FUNDS']);
    expect(activityLines.every((l) => typeof l['transferId'] === 'string' && String(l['transferId']).startsWith('obs-'))).toBe(true);
    expect(lines).toContainEqual(expect.objectContaining({ transferId: 'obs-poor', step: 'reserve-debit', code: 'INSUFFICIENT_FUNDS', level: 40 }));
    expect(lines).toContainEqual(expect.objectContaining({ transferId: 'obs-comp', status: 'COMPENSATED', reason: 'ACCOUNT_FROZEN' }));
  });
});
