import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Refusal } from '../../src/domain/codes.js';
import { evenSlotMap } from '../../src/domain/slots.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { ShardIdentityError } from '../../src/ledger/identity.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { balances, expectConsistent, fresh, fundedAccount, refusalOf, reserveInput, rowCounts } from './semantics-support.js';

/** Holes 2, 4, 6, 9 and 11 of the reliability issue, each shown on real PostgreSQL with two shards. */
let t: TestLedger;
beforeAll(async () => {
  t = await createTestLedger();
});
afterAll(async () => t?.drop());

/** The ledger calls of one whole transfer, with the saga's keys. */
async function transfer(ledger: Ledger, id: string, from: string, to: string, amount: string) {
  const debit = await ledger.reserve(reserveInput(from, amount, { transferId: id, side: 'debit' }));
  const credit = await ledger.reserve(reserveInput(to, amount, { transferId: id, side: 'credit' }));
  await ledger.post({ key: `${id}:post-debit`, holdKey: debit.key, accountId: from, transferId: id });
  await ledger.post({ key: `${id}:post-credit`, holdKey: credit.key, accountId: to, transferId: id });
}

describe('hole 4: idempotency keys live in separate namespaces', () => {
  it("a deposit or withdrawal keyed like a transfer's steps cannot claim them: the transfer still pays exactly once", async () => {
    const { ledger } = t;
    const from = await fundedAccount(ledger, 0, 'ns-from', 1000);
    const to = await fundedAccount(ledger, 1, 'ns-to');
    const id = fresh('ns-tr');
    // The attack: claim every step key of a transfer before the saga runs.
    for (const step of ['reserve-debit', 'reserve-credit', 'post-debit', 'void-credit', 'void-debit', 'refund-debit']) {
      await ledger.deposit({ key: `${id}:${step}`, accountId: from, amount: '1', currency: 'USD' });
    }
    await ledger.withdraw({ key: `${id}:post-credit`, accountId: from, amount: '1', currency: 'USD' });
    await transfer(ledger, id, from, to, '300');
    expect((await ledger.getAccount(from)).posted).toBe(String(1000 + 6 - 1 - 300));
    expect((await ledger.getAccount(to)).posted).toBe('300');
    const records = await ledger.transferRecords(id);
    expect(records.holds.map((h) => h.state)).toEqual(['posted', 'posted']);
    expect(records.postings.filter((p) => !p.accountId.startsWith('sys:')).map((p) => p.amount)).toEqual(['-300', '300']);
    await expectConsistent(ledger);
  });

  it("no call may act on another transfer's hold or fence another transfer's key", async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'ns-owner', 500);
    const victim = fresh('victim');
    const hold = await ledger.reserve(reserveInput(a, '200', { transferId: victim }));
    const before = await rowCounts(ledger);
    const attacker = fresh('attacker');
    // Reserving under the victim's key from another transfer id.
    expect(await refusalOf(ledger.reserve({ ...reserveInput(a, '200', { transferId: attacker }), key: hold.key }))).toBe(Refusal.INVALID_INPUT);
    // Posting or voiding the victim's hold in the name of another transfer.
    expect(await refusalOf(ledger.post({ key: `${attacker}:post-debit`, holdKey: hold.key, accountId: a, transferId: attacker }))).toBe(Refusal.HOLD_NOT_FOUND);
    expect(await refusalOf(ledger.void({ key: `${attacker}:void-debit`, holdKey: hold.key, accountId: a, transferId: attacker }))).toBe(Refusal.HOLD_NOT_FOUND);
    // Tombstoning a key the victim has not reserved yet.
    expect(await refusalOf(ledger.void({ key: `${attacker}:void-credit`, holdKey: `${victim}:reserve-credit`, accountId: a, transferId: attacker }))).toBe(Refusal.HOLD_NOT_FOUND);
    // Nothing moved: the refusals are recorded under the attacker's own keys (sticky), nothing else.
    const after = await rowCounts(ledger);
    expect(after.map(({ keys: _k, ...rest }) => rest)).toEqual(before.map(({ keys: _k, ...rest }) => rest));
    expect((await ledger.transferRecords(victim)).holds.map((h) => h.state)).toEqual(['pending']);
    // Keys are printable and bounded: no control characters, spaces or slashes.
    for (const key of ['', ' x', 'a b', 'a/b', 'a\u0000b', 'x'.repeat(201), 'ünï']) {
      expect(await refusalOf(ledger.deposit({ key, accountId: a, amount: '1', currency: 'USD' }))).toBe(Refusal.INVALID_INPUT);
    }
    expect(await rowCounts(ledger)).toEqual(after);
  });
});

describe('hole 2: a refund always lands, never into a closed account', () => {
  it('closing needs an empty account with nothing pending', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 1, 'close-busy', 100);
    expect(await refusalOf(ledger.setStatus(a, 'closed'))).toBe(Refusal.ACCOUNT_NOT_EMPTY);
    await ledger.withdraw({ key: fresh('out'), accountId: a, amount: '100', currency: 'USD' });
    const b = await fundedAccount(ledger, 0, 'close-dest');
    await ledger.openAccount({ id: b, currency: 'USD' });
    await ledger.reserve(reserveInput(a, '1', { side: 'credit' })); // a pending credit also keeps it open
    expect(await refusalOf(ledger.setStatus(a, 'closed'))).toBe(Refusal.ACCOUNT_NOT_EMPTY);
  });

  it('a refund after the account closed goes to suspense; verify lists it; an operator pays it out', async () => {
    const { ledger } = t;
    const from = await fundedAccount(ledger, 0, 'susp-from', 400);
    const id = fresh('susp-tr');
    const debit = await ledger.reserve(reserveInput(from, '400', { transferId: id }));
    await ledger.post({ key: `${id}:post-debit`, holdKey: debit.key, accountId: from, transferId: id });
    await ledger.setStatus(from, 'closed'); // empty now: its money is in clearing
    // The credit side failed: the saga refunds the posted debit.
    const refund = await ledger.refund({ key: `${id}:refund-debit`, holdKey: debit.key, accountId: from, transferId: id });
    expect(refund.suspense).toBe(true);
    expect(refund.postings.map((p) => [p.accountId, p.amount])).toEqual([['sys:suspense:USD', '400'], ['sys:clearing:USD', '-400']]);
    expect(await ledger.refund({ key: `${id}:refund-debit`, holdKey: debit.key, accountId: from, transferId: id })).toMatchObject({ replayed: true, suspense: true });
    expect(await refusalOf(ledger.refund({ key: fresh('refund-again'), holdKey: debit.key, accountId: from }))).toBe(Refusal.ALREADY_REFUNDED);
    expect(await balances(ledger, from)).toEqual({ posted: '0', pendingDebits: '0', pendingCredits: '0', available: '0' });

    const report = await ledger.verify();
    expect(report.violations).toEqual([]);
    expect(report.attention.suspense).toEqual([{ shard: 0, currency: 'USD', amount: '400' }]);
    expect(report.totals.find((x) => x.currency === 'USD')).toMatchObject({ clearing: '0', suspense: '400' });
    expect(await ledger.suspenseBalances()).toEqual([{ shard: 0, currency: 'USD', amount: '400', entries: 1 }]);

    const payee = await fundedAccount(ledger, 0, 'susp-payee');
    const other = await fundedAccount(ledger, 1, 'susp-other');
    expect(await refusalOf(ledger.releaseSuspense({ key: fresh('rel'), currency: 'USD', amount: '401', accountId: payee }))).toBe(Refusal.INSUFFICIENT_FUNDS);
    expect(await refusalOf(ledger.releaseSuspense({ key: fresh('rel'), shard: 0, currency: 'USD', amount: '1', accountId: other }))).toBe(Refusal.INVALID_INPUT);
    const releaseKey = fresh('rel');
    await ledger.releaseSuspense({ key: releaseKey, currency: 'USD', amount: '300', accountId: payee });
    expect((await ledger.releaseSuspense({ key: releaseKey, currency: 'USD', amount: '300', accountId: payee })).replayed).toBe(true);
    await ledger.releaseSuspense({ key: fresh('rel-out'), shard: 0, currency: 'USD', amount: '100' }); // paid by other means
    expect((await ledger.getAccount(payee)).posted).toBe('300');
    const after = await ledger.verify();
    expect(after.violations).toEqual([]);
    expect(after.attention.suspense).toEqual([]);
    expect(after.totals.find((x) => x.currency === 'USD')).toMatchObject({ suspense: '0' });
  });
});

describe('hole 11: frozen accounts', () => {
  it('freezing stops new reservations and movements; holds already granted still post, void and refund', async () => {
    const { ledger } = t;
    const from = await fundedAccount(ledger, 0, 'frz-from', 1000);
    const to = await fundedAccount(ledger, 1, 'frz-to');
    const id = fresh('frz');
    const debit = await ledger.reserve(reserveInput(from, '250', { transferId: id, side: 'debit' }));
    const credit = await ledger.reserve(reserveInput(to, '250', { transferId: id, side: 'credit' }));
    await ledger.setStatus(from, 'frozen');
    await ledger.setStatus(to, 'frozen');
    expect(await refusalOf(ledger.reserve(reserveInput(from, '1')))).toBe(Refusal.ACCOUNT_FROZEN);
    expect(await refusalOf(ledger.deposit({ key: fresh('d'), accountId: to, amount: '1', currency: 'USD' }))).toBe(Refusal.ACCOUNT_FROZEN);
    expect(await refusalOf(ledger.withdraw({ key: fresh('w'), accountId: from, amount: '1', currency: 'USD' }))).toBe(Refusal.ACCOUNT_FROZEN);
    await ledger.post({ key: `${id}:post-debit`, holdKey: debit.key, accountId: from, transferId: id });
    await ledger.post({ key: `${id}:post-credit`, holdKey: credit.key, accountId: to, transferId: id });
    expect((await ledger.getAccount(to)).posted).toBe('250');

    const id2 = fresh('frz-refund');
    await ledger.setStatus(from, 'active');
    const d2 = await ledger.reserve(reserveInput(from, '100', { transferId: id2 }));
    await ledger.post({ key: `${id2}:post-debit`, holdKey: d2.key, accountId: from, transferId: id2 });
    await ledger.setStatus(from, 'frozen');
    const refund = await ledger.refund({ key: `${id2}:refund-debit`, holdKey: d2.key, accountId: from, transferId: id2 });
    expect(refund.suspense).toBeUndefined(); // a frozen account still receives its refund
    expect((await ledger.getAccount(from)).posted).toBe('750');
    await expectConsistent(ledger);
  });
});

describe("hole 6: hold expiry follows the database's clock, not the worker's", () => {
  it('a worker clock an hour ahead or behind neither expires a hold early nor keeps it late', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'skew', 1000);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 3_600_000); // this process's clock runs an hour fast
      const id = fresh('skew-tr');
      const hold = await ledger.reserve(reserveInput(a, '100', { transferId: id, ttlMs: 60_000 }));
      const { rows } = await ledger.shardFor(a).pool.query<{ left: number }>(
        `SELECT extract(epoch FROM expires_at - now()) AS left FROM holds WHERE key = $1`, [hold.key]);
      expect(Number(rows[0]!.left)).toBeGreaterThan(50);
      expect(Number(rows[0]!.left)).toBeLessThanOrEqual(60);
      vi.setSystemTime(Date.now() - 2 * 3_600_000); // now an hour slow
      expect((await ledger.sweepExpired()).flatMap((s) => s.expired)).toEqual([]);
      await ledger.post({ key: `${id}:post-debit`, holdKey: hold.key, accountId: a, transferId: id });
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('hole 9: each shard database knows which shard it is', () => {
  it('shards given in another order, or with another slot map, refuse with a clear error and write nothing', async () => {
    await t.ledger.checkIdentity(); // claimed by this file's ledger
    const swapped = Ledger.connect({ shardUrls: [t.urls[1]!, t.urls[0]!], slotMap: evenSlotMap(2), poolSize: 2 });
    const otherMap = Ledger.connect({ shardUrls: t.urls, slotMap: [{ from: 0, to: 99, shard: 0 }, { from: 100, to: 16383, shard: 1 }], poolSize: 2 });
    try {
      const before = await rowCounts(t.ledger);
      await expect(swapped.checkIdentity()).rejects.toThrow(ShardIdentityError);
      await expect(swapped.checkIdentity()).rejects.toThrow(/is shard [01], but was given as shard [01]: list LEDGER_SHARD_URLS in shard order/);
      await expect(swapped.openAccount({ id: 'misrouted', currency: 'USD' })).rejects.toThrow(ShardIdentityError);
      await expect(otherMap.verify()).rejects.toThrow(/another slot map/);
      expect(await rowCounts(t.ledger)).toEqual(before);
    } finally {
      await swapped.close();
      await otherMap.close();
    }
  });
});
