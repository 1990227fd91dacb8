import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Refusal } from '../../src/domain/codes.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { balances, expectConsistent, fresh, fundedAccount, refusalOf, reserveInput, rowCounts } from './semantics-support.js';

let t: TestLedger;
beforeAll(async () => {
  t = await createTestLedger();
});
afterAll(async () => t?.drop());

const TTL = 10 * 60_000;

async function holdCount(accountId: string): Promise<number> {
  const { rows } = await t.ledger.shardFor(accountId).pool.query('SELECT key FROM holds WHERE account_id = $1', [accountId]);
  return rows.length;
}

async function journalRows(accountId: string, entryId: string): Promise<number> {
  const { rows } = await t.ledger.shardFor(accountId).pool.query('SELECT id FROM journal WHERE entry_id = $1', [entryId]);
  return rows.length;
}

describe('rule 1: same key, same parameters → same outcome, no second effect', () => {
  it('a repeated reserve returns the first hold with replayed=true and reserves once', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'rep', 1000);
    const input = reserveInput(a, '300', { ttlMs: TTL });
    const first = await ledger.reserve(input);
    const second = await ledger.reserve({ ...input, amount: 300 }); // same amount, other wire form
    expect(first.replayed).toBe(false);
    expect(second.replayed).toBe(true);
    expect(second.hold).toEqual(first.hold);
    expect(await balances(ledger, a)).toEqual({ posted: '1000', pendingDebits: '300', pendingCredits: '0', available: '700' });
    expect(await holdCount(a)).toBe(1);
    await expectConsistent(ledger);
  });

  it('50 concurrent identical reserves make exactly one hold; one call is original, 49 are replays', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 1, 'storm', 10_000);
    const input = reserveInput(a, '250', { ttlMs: TTL });
    const results = await Promise.all(Array.from({ length: 50 }, () => ledger.reserve({ ...input })));
    expect(new Set(results.map((r) => r.hold.key))).toEqual(new Set([input.key]));
    const original = results.find((r) => !r.replayed)!;
    for (const r of results) expect(r.hold).toEqual(original.hold);
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
    expect(results.filter((r) => r.replayed)).toHaveLength(49);
    expect(await holdCount(a)).toBe(1);
    expect(await balances(ledger, a)).toEqual({ posted: '10000', pendingDebits: '250', pendingCredits: '0', available: '9750' });
    await expectConsistent(ledger);
  });

  it('a refusal is sticky: INSUFFICIENT_FUNDS stays refused under its key even after a deposit covers it', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'sticky', 100);
    const input = reserveInput(a, '500', { ttlMs: TTL });
    expect(await refusalOf(ledger.reserve(input))).toBe(Refusal.INSUFFICIENT_FUNDS);
    await ledger.deposit({ key: fresh('topup'), accountId: a, amount: '1000', currency: 'USD' });
    expect((await ledger.getAccount(a)).available).toBe('1100');
    expect(await refusalOf(ledger.reserve(input))).toBe(Refusal.INSUFFICIENT_FUNDS);
    expect(await holdCount(a)).toBe(0);
    expect(await balances(ledger, a)).toEqual({ posted: '1100', pendingDebits: '0', pendingCredits: '0', available: '1100' });
    // The funds were sufficient: only the key is burnt, a new key reserves.
    const again = await ledger.reserve({ ...input, key: `${input.transferId}:${fresh('new-key')}` });
    expect(again.hold.state).toBe('pending');
    expect((await ledger.getAccount(a)).pendingDebits).toBe('500');
    await expectConsistent(ledger);
  });

  it('a repeated deposit key deposits once and replays the same postings', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 1, 'depo');
    const input = { key: fresh('dep-once'), accountId: a, amount: '700', currency: 'USD' };
    const first = await ledger.deposit(input);
    const second = await ledger.deposit(input);
    expect([first.replayed, second.replayed]).toEqual([false, true]);
    expect(second.postings).toEqual(first.postings);
    expect(first.postings.map((p) => [p.accountId, p.amount])).toEqual([[a, '700'], ['sys:external:USD', '-700']]);
    expect((await ledger.getAccount(a)).posted).toBe('700');
    expect(await journalRows(a, input.key)).toBe(2);
    await expectConsistent(ledger);
  });

  it('20 concurrent deposits with one key deposit once', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'depo-storm');
    const input = { key: fresh('dep-storm'), accountId: a, amount: '40', currency: 'USD' };
    const results = await Promise.all(Array.from({ length: 20 }, () => ledger.deposit(input)));
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
    expect((await ledger.getAccount(a)).posted).toBe('40');
    expect(await journalRows(a, input.key)).toBe(2);
    await expectConsistent(ledger);
  });
});

describe('rule 2: same key, different parameters → IDEMPOTENCY_KEY_REUSED, no effect', () => {
  it('reserve with key K for 100, then K for 200: refused, the first hold is untouched and still replays', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'reuse', 1000);
    const input = reserveInput(a, '100', { ttlMs: TTL });
    const first = await ledger.reserve(input);
    const before = await rowCounts(ledger);
    expect(await refusalOf(ledger.reserve({ ...input, amount: '200' }))).toBe(Refusal.IDEMPOTENCY_KEY_REUSED);
    // Another transfer cannot even name this key: a hold key belongs to its own transfer.
    expect(await refusalOf(ledger.reserve({ ...input, transferId: fresh('other-transfer') }))).toBe(Refusal.INVALID_INPUT);
    expect(await refusalOf(ledger.reserve({ ...input, counterparty: 'someone-else' }))).toBe(Refusal.IDEMPOTENCY_KEY_REUSED);
    expect(await rowCounts(ledger)).toEqual(before);
    expect(await balances(ledger, a)).toEqual({ posted: '1000', pendingDebits: '100', pendingCredits: '0', available: '900' });
    const replay = await ledger.reserve(input);
    expect(replay).toMatchObject({ replayed: true, hold: first.hold });
    expect(replay.hold.amount).toBe('100');
    await expectConsistent(ledger);
  });

  it('a key refused once is reused, not replayed, when its parameters change', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 1, 'reuse-refused', 50);
    const input = reserveInput(a, '80', { ttlMs: TTL });
    expect(await refusalOf(ledger.reserve(input))).toBe(Refusal.INSUFFICIENT_FUNDS);
    expect(await refusalOf(ledger.reserve({ ...input, amount: '20' }))).toBe(Refusal.IDEMPOTENCY_KEY_REUSED);
    expect(await holdCount(a)).toBe(0);
    expect((await ledger.getAccount(a)).pendingDebits).toBe('0');
  });

  it('a deposit key reused with another amount or another account deposits nothing', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'dep-reuse');
    const b = await fundedAccount(ledger, 0, 'dep-reuse-b');
    const input = { key: fresh('dep-k'), accountId: a, amount: '500', currency: 'USD' };
    await ledger.deposit(input);
    const before = await rowCounts(ledger);
    expect(await refusalOf(ledger.deposit({ ...input, amount: '501' }))).toBe(Refusal.IDEMPOTENCY_KEY_REUSED);
    expect(await refusalOf(ledger.deposit({ ...input, accountId: b }))).toBe(Refusal.IDEMPOTENCY_KEY_REUSED);
    expect(await rowCounts(ledger)).toEqual(before);
    expect((await ledger.getAccount(a)).posted).toBe('500');
    expect((await ledger.getAccount(b)).posted).toBe('0');
    await expectConsistent(ledger);
  });

  it('a key used for one operation is refused for another (deposit→withdraw, debit→credit, reserve→post, reserve→void)', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 1, 'op-reuse', 1000);
    const depKey = fresh('dep-op');
    await ledger.deposit({ key: depKey, accountId: a, amount: '100', currency: 'USD' });
    const hold = await ledger.reserve(reserveInput(a, '100', { ttlMs: TTL }));
    const before = await rowCounts(ledger);
    expect(await refusalOf(ledger.withdraw({ key: depKey, accountId: a, amount: '100', currency: 'USD' }))).toBe(Refusal.IDEMPOTENCY_KEY_REUSED);
    expect(await refusalOf(ledger.reserve(reserveInput(a, '100', { key: depKey })))).toBe(Refusal.INVALID_INPUT); // not a transfer's key
    expect(await refusalOf(ledger.reserve({ ...reserveInput(a, '100', { key: hold.key, transferId: hold.hold.transferId, ttlMs: TTL }), side: 'credit' }))).toBe(
      Refusal.IDEMPOTENCY_KEY_REUSED,
    );
    expect(await refusalOf(ledger.post({ key: hold.key, holdKey: hold.key, accountId: a }))).toBe(Refusal.IDEMPOTENCY_KEY_REUSED);
    expect(await refusalOf(ledger.void({ key: hold.key, holdKey: hold.key, accountId: a }))).toBe(Refusal.IDEMPOTENCY_KEY_REUSED);
    expect(await rowCounts(ledger)).toEqual(before);
    expect(await balances(ledger, a)).toEqual({ posted: '1100', pendingDebits: '100', pendingCredits: '0', available: '1000' });
    expect((await ledger.transferRecords(hold.hold.transferId)).holds.map((h) => h.state)).toEqual(['pending']);
    await expectConsistent(ledger);
  });
});
