import { describe, expect, it } from 'vitest';
import { DEFAULTS, formatSummary, runChaos } from '../../chaos/harness.js';
import { FAULT_KINDS, makePlan } from '../../chaos/plan.js';

// The short bank test: the same harness as `npm run chaos`, small enough for the suite. It starts
// its own PostgreSQL, dev server and workers (the shared ones from global setup must not be killed).
const SEED = Number(process.env.CHAOS_SEED ?? 20261129);
const TRANSFERS = 100;

describe('bank test under crashes of real processes (short)', () => {
  it('the seed alone decides the workload and the fault schedule', () => {
    const options = { seed: SEED, transfers: TRANSFERS, accounts: 16, faults: 7, kinds: FAULT_KINDS, workers: 3, holdTtlMs: 6_000, faultWindowMs: 8_000 };
    const a = makePlan(options);
    expect(makePlan(options)).toEqual(a);
    expect(makePlan({ ...options, seed: SEED + 1 }).transfers).not.toEqual(a.transfers);
    expect(new Set(a.faults.map((f) => f.kind))).toEqual(new Set(FAULT_KINDS)); // every kind at least once
    expect(new Set(a.accounts.map((x) => x.shard))).toEqual(new Set([0, 1]));
  });

  it('conserves money, pays at most once and ends every transfer while processes are killed', async () => {
    const summary = await runChaos({
      ...DEFAULTS, seed: SEED, transfers: TRANSFERS, accounts: 16, concurrency: 24, faults: 7, durationLimitMs: 200_000,
      holdTtlMs: 6_000, faultWindowMs: 8_000, approvalTimeoutMs: 10_000,
      log: (line) => process.stderr.write(`[chaos] ${line}\n`),
    });
    process.stderr.write(`${formatSummary(summary)}\n`);
    expect(summary.violations).toEqual([]);
    expect(summary.counters['not sent: the time limit came first'] ?? 0).toBe(0);
    expect(Object.values(summary.outcomes).reduce((a, b) => a + b, 0)).toBe(TRANSFERS);
    expect(Object.keys(summary.faults).sort()).toEqual([...FAULT_KINDS].sort());
    // The workload reached every kind of ending, not only the easy one.
    for (const status of ['COMPLETED', 'FAILED', 'COMPENSATED', 'CANCELLED']) expect(summary.outcomes[status] ?? 0, status).toBeGreaterThan(0);
  }, 260_000);
});
