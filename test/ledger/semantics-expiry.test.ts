import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/ledger/ledger.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { balances, expectConsistent, fresh, fundedAccount, holdRow, reserveInput } from './semantics-support.js';

let t: TestLedger;
beforeAll(async () => {
  t = await createTestLedger();
});
afterAll(async () => t?.drop());

const pendingCount = async (ledger: Ledger, accounts: string[]) =>
  (await Promise.all(ledger.shards.map((s) => s.pool.query(`SELECT key FROM holds WHERE state = 'pending' AND account_id = ANY($1)`, [accounts]))))
    .reduce((n, r) => n + r.rows.length, 0);

describe('rule 6: holds expire', () => {
  it('verify flags a pending hold past expiry; the sweeper expires it, releases the funds, and verify is clean', async () => {
    const { ledger, clock } = t;
    const from = await fundedAccount(ledger, 0, 'exp-from', 1000);
    const to = await fundedAccount(ledger, 1, 'exp-to');
    const transferId = fresh('exp');
    const debit = await ledger.reserve(reserveInput(from, '600', { transferId, side: 'debit', ttlMs: 5_000 }));
    const credit = await ledger.reserve(reserveInput(to, '600', { transferId, side: 'credit', ttlMs: 5_000 }));
    await expectConsistent(ledger); // not yet due
    clock.advance(6_000);

    const stale = await ledger.verify({ expiryGraceMs: 0 });
    expect(stale.ok).toBe(false);
    expect(stale.violations).toEqual([
      expect.objectContaining({ check: 'hold_pending_past_expiry', shard: 0, hold: debit.key, account: from, transfer: transferId, amount: '600' }),
      expect.objectContaining({ check: 'hold_pending_past_expiry', shard: 1, hold: credit.key, account: to, transfer: transferId, amount: '600' }),
    ]);

    const swept = await ledger.sweepExpired();
    expect(swept.map((s) => [s.shard, s.expired.map((h) => [h.key, h.state, h.resolvedBy])])).toEqual([
      [0, [[debit.key, 'expired', 'sweeper']]],
      [1, [[credit.key, 'expired', 'sweeper']]],
    ]);
    expect(Date.parse(swept[0]!.expired[0]!.resolvedAt!)).toBeGreaterThanOrEqual(Date.parse(debit.hold.expiresAt));
    expect(await holdRow(ledger, from, debit.key)).toEqual({ state: 'expired', resolved_by: 'sweeper' });
    expect(await balances(ledger, from)).toEqual({ posted: '1000', pendingDebits: '0', pendingCredits: '0', available: '1000' });
    expect(await balances(ledger, to)).toEqual({ posted: '0', pendingDebits: '0', pendingCredits: '0', available: '0' });
    await expectConsistent(ledger);

    const again = await ledger.sweepExpired();
    expect(again.map((s) => s.expired.length)).toEqual([0, 0]);
    expect(await balances(ledger, from)).toEqual({ posted: '1000', pendingDebits: '0', pendingCredits: '0', available: '1000' });
    await expectConsistent(ledger);
  });

  it('the sweeper leaves holds that are not yet due alone', async () => {
    const { ledger, clock } = t;
    const a = await fundedAccount(ledger, 1, 'exp-mixed', 1000);
    const short = await ledger.reserve(reserveInput(a, '100', { ttlMs: 1_000 }));
    const long = await ledger.reserve(reserveInput(a, '200', { ttlMs: 60_000 }));
    clock.advance(2_000);
    const swept = (await ledger.sweepExpired()).flatMap((s) => s.expired.map((h) => h.key));
    expect(swept).toEqual([short.key]);
    expect(await holdRow(ledger, a, long.key)).toMatchObject({ state: 'pending' });
    expect(await balances(ledger, a)).toEqual({ posted: '1000', pendingDebits: '200', pendingCredits: '0', available: '800' });
    await expectConsistent(ledger);
    await ledger.void({ key: fresh('void'), holdKey: long.key, accountId: a });
    await expectConsistent(ledger);
  });

  it('4 concurrent sweepers expire each of 48 due holds exactly once', async () => {
    const { ledger, clock } = t;
    const accounts = await Promise.all([0, 1, 0, 1].map((shard) => fundedAccount(ledger, shard, 'exp-many', 10_000)));
    const keys: string[] = [];
    for (let i = 0; i < 48; i++) {
      const side = i % 3 === 0 ? 'credit' : 'debit';
      keys.push((await ledger.reserve(reserveInput(accounts[i % 4]!, String(10 + i), { side, ttlMs: 1_000 }))).key);
    }
    expect(await pendingCount(ledger, accounts)).toBe(48);
    clock.advance(1_500);

    // Each sweeper drains in small batches until a pass finds nothing, so their batches interleave.
    const drain = async () => {
      const mine: string[] = [];
      for (;;) {
        const batch = (await ledger.sweepExpired(5)).flatMap((s) => s.expired.map((h) => h.key));
        if (batch.length === 0) return mine;
        mine.push(...batch);
      }
    };
    const results = await Promise.all([drain(), drain(), drain(), drain()]);
    const all = results.flat();
    expect(all).toHaveLength(48);
    expect(new Set(all)).toEqual(new Set(keys));
    expect(await pendingCount(ledger, accounts)).toBe(0);
    for (const a of accounts) {
      const acc = await ledger.getAccount(a);
      expect([acc.posted, acc.pendingDebits, acc.pendingCredits]).toEqual(['10000', '0', '0']);
    }
    await expectConsistent(ledger);
  });
});
