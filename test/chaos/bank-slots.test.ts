import { describe, expect, it } from 'vitest';
import { DEFAULTS, formatSummary, runChaos } from '../../chaos/harness.js';

// The bank test's slot-move variant: four shards (two at start, two registered with `transfer shards
// add` while transfers run), slot ranges moved back and forth by separate `transfer slots move`
// processes, two of them killed with -9 in the middle of a hand-over and run again to resume; plus
// worker kills and lost answers. Same checks as the bank test (conservation, paid at most once,
// every transfer ended, verify clean over all four shards).
const SEED = Number(process.env.CHAOS_SEED ?? 20261130);
const TRANSFERS = 100;

describe('bank test while slot ranges move between four shards (short)', () => {
  it('conserves money, pays at most once and ends every transfer while slots move and movers are killed', async () => {
    const summary = await runChaos({
      ...DEFAULTS, seed: SEED, transfers: TRANSFERS, accounts: 24, concurrency: 16, faults: 2, faultKinds: ['worker-kill', 'lost-responses'],
      durationLimitMs: 170_000, holdTtlMs: 8_000, faultWindowMs: 8_000, approvalTimeoutMs: 10_000,
      slotMoves: { extraShards: 2, moves: 6, kills: 2 },
      log: (line) => process.stderr.write(`[chaos] ${line}\n`),
    });
    process.stderr.write(`${formatSummary(summary)}\n`);
    expect(summary.violations).toEqual([]);
    expect(summary.counters['not sent: the time limit came first'] ?? 0).toBe(0);
    expect(Object.values(summary.outcomes).reduce((a, b) => a + b, 0)).toBe(TRANSFERS);
    expect(summary.counters['slot moves done']).toBe(6);
    expect(summary.counters['slot mover killed mid-move (kill -9)']).toBe(2);
  }, 230_000);
});
