import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountOnShard, createTestLedger, type TestLedger } from '../support/ledger.js';

let t: TestLedger;
beforeAll(async () => {
  t = await createTestLedger();
});
afterAll(async () => t?.drop());

describe('ledger basics on two real PostgreSQL shards', () => {
  it('routes accounts to their shard and moves money across shards through clearing', async () => {
    const { ledger } = t;
    const a = accountOnShard(ledger, 0, 'wallet');
    const b = accountOnShard(ledger, 1, 'fund');
    expect((await ledger.openAccount({ id: a, currency: 'USD' })).account.shard).toBe(0);
    expect((await ledger.openAccount({ id: b, currency: 'USD' })).account.shard).toBe(1);
    await ledger.deposit({ key: 'dep-1', accountId: a, amount: '10000', currency: 'USD' });
    const debit = await ledger.reserve({ key: 'x:reserve-debit', transferId: 'x', accountId: a, side: 'debit', amount: '2500', currency: 'USD', ttlMs: 60_000 });
    expect((await ledger.getAccount(a)).available).toBe('7500');
    const credit = await ledger.reserve({ key: 'x:reserve-credit', transferId: 'x', accountId: b, side: 'credit', amount: '2500', currency: 'USD', ttlMs: 60_000 });
    expect((await ledger.getAccount(b)).pendingCredits).toBe('2500');
    expect((await ledger.getAccount(b)).available).toBe('0');
    await ledger.post({ key: 'x:post-debit', holdKey: debit.hold.key, accountId: a });
    const mid = await ledger.verify();
    expect(mid.totals[0]).toMatchObject({ currency: 'USD', customers: '7500', clearing: '2500', external: '-10000' });
    await ledger.post({ key: 'x:post-credit', holdKey: credit.hold.key, accountId: b });
    expect((await ledger.getAccount(a)).posted).toBe('7500');
    expect((await ledger.getAccount(b)).posted).toBe('2500');
    const report = await ledger.verify();
    expect(report.violations).toEqual([]);
    expect(report.totals[0]).toMatchObject({ customers: '10000', clearing: '0', entered: '10000', left: '0' });
    const records = await ledger.transferRecords('x');
    expect(records.holds.map((h) => [h.side, h.state, h.shard])).toEqual([['debit', 'posted', 0], ['credit', 'posted', 1]]);
    expect(records.postings.map((p) => [p.accountId, p.amount, p.shard])).toEqual([
      [a, '-2500', 0], ['sys:clearing:USD', '2500', 0], [b, '2500', 1], ['sys:clearing:USD', '-2500', 1],
    ]);
  });
});
