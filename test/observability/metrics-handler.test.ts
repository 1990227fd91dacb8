import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TransferMetrics } from '../../src/observability/metrics.js';

/**
 * The Prometheus endpoint lives in the worker's process: a scrape that fails (a collector throwing,
 * a rejected promise) must answer 500 and be logged, never become an uncaught exception or an
 * unhandled rejection that takes the worker down.
 */
const metrics = new TransferMetrics();
const logged: unknown[] = [];
const escaped: unknown[] = [];
const onEscape = (reason: unknown) => escaped.push(reason);
let base = '';
let close: () => Promise<void>;
const realMetrics = metrics.registry.metrics.bind(metrics.registry);

beforeAll(async () => {
  process.on('unhandledRejection', onEscape);
  process.on('uncaughtException', onEscape);
  const server = await metrics.serve(0, '127.0.0.1', (error) => logged.push(error));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => new Promise((resolve) => server.close(() => resolve()));
});
afterAll(async () => {
  await close?.();
  process.off('unhandledRejection', onEscape);
  process.off('uncaughtException', onEscape);
});
afterEach(() => {
  metrics.registry.metrics = realMetrics;
});

const scrape = () => fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5_000) });

describe('the metrics endpoint', () => {
  it('answers 200 with the transfer metrics', async () => {
    metrics.outcome('COMPLETED');
    const response = await scrape();
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('transfer_outcomes_total{status="COMPLETED",reason=""} 1');
  });

  it.each([
    ['a rejected promise', () => Promise.reject(new Error('collector failed'))],
    ['a synchronous throw', () => {
      throw new Error('collector threw');
    }],
  ])('answers 500 and logs on %s, and keeps serving', async (_name, failing) => {
    logged.length = 0;
    metrics.registry.metrics = failing as typeof metrics.registry.metrics;
    const response = await scrape();
    expect(response.status).toBe(500);
    expect(await response.text()).toMatch(/metrics unavailable/);
    expect(logged).toHaveLength(1);
    expect(String(logged[0])).toMatch(/collector (failed|threw)/);
    await new Promise((r) => setTimeout(r, 50)); // an unhandled rejection is reported a tick later
    expect(escaped).toEqual([]);

    metrics.registry.metrics = realMetrics;
    expect((await scrape()).status).toBe(200);
  });

  it('still answers 500 when the error logger itself throws', async () => {
    const other = new TransferMetrics();
    other.registry.metrics = () => Promise.reject(new Error('collector failed'));
    const server = await other.serve(0, '127.0.0.1', () => {
      throw new Error('logger failed');
    });
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`, { signal: AbortSignal.timeout(5_000) });
      expect(response.status).toBe(500);
      await new Promise((r) => setTimeout(r, 50));
      expect(escaped).toEqual([]);
    } finally {
      await new Promise((resolve) => server.close(() => resolve(undefined)));
    }
  });
});

describe('the ledger batching metrics', () => {
  it('count calls alone and batched, steps per batch, fallbacks and waiting steps per shard, from the batchers at each scrape', async () => {
    const m = new TransferMetrics();
    const stats = [
      { singles: 5, batches: 2, batchedSteps: 9, fallbacks: 0 },
      { singles: 1, batches: 0, batchedSteps: 0, fallbacks: 0 },
    ];
    const waiting = [3, 0];
    m.watchLedger(stats.map((s, shard) => ({ shard, steps: { stats: s, get waiting() { return waiting[shard]!; } } })));
    const text = () => m.registry.metrics();
    let t = await text();
    expect(t).toContain('transfer_ledger_step_calls_total{shard="0",kind="alone"} 5');
    expect(t).toContain('transfer_ledger_step_calls_total{shard="0",kind="batch"} 2');
    expect(t).toContain('transfer_ledger_batched_steps_total{shard="0"} 9');
    expect(t).toContain('transfer_ledger_steps_waiting{shard="0"} 3');
    expect(t).toContain('transfer_ledger_step_calls_total{shard="1",kind="alone"} 1');
    // A second scrape adds only what happened since: the counters follow the batchers, never double.
    Object.assign(stats[0]!, { singles: 7, batches: 3, batchedSteps: 13, fallbacks: 1 });
    waiting[0] = 0;
    t = await text();
    expect(t).toContain('transfer_ledger_step_calls_total{shard="0",kind="alone"} 7');
    expect(t).toContain('transfer_ledger_step_calls_total{shard="0",kind="batch"} 3');
    expect(t).toContain('transfer_ledger_batched_steps_total{shard="0"} 13');
    expect(t).toContain('transfer_ledger_batch_fallbacks_total{shard="0"} 1');
    expect(t).toContain('transfer_ledger_steps_waiting{shard="0"} 0');
    t = await text();
    expect(t).toContain('transfer_ledger_step_calls_total{shard="0",kind="alone"} 7');
  });
});
