import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Refusal } from '../../src/domain/codes.js';
import { RefusalError } from '../../src/domain/errors.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { balances, expectConsistent, fresh, fundedAccount, refusalOf, reserveInput, rowCounts } from './semantics-support.js';

let t: TestLedger;
beforeAll(async () => {
  t = await createTestLedger();
});
afterAll(async () => t?.drop());

async function keyState(accountId: string, key: string): Promise<string | undefined> {
  const { rows } = await t.ledger.shardFor(accountId).pool.query<{ state: string }>('SELECT state FROM idempotency_keys WHERE key = $1', [key]);
  return rows[0]?.state;
}

/** Every row count on both shards, except the sticky idempotency record a business refusal keeps. */
const withoutKeys = (counts: Record<string, number>[]) => counts.map(({ keys: _keys, ...rest }) => rest);

describe('rule 5: available balance never goes below zero, enforced by the database', () => {
  it('raw SQL that would take available below zero fails with SQLSTATE 23514', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'raw', 1000);
    const pool = ledger.shardFor(a).pool;
    await expect(pool.query('UPDATE accounts SET pending_debits = pending_debits + 1001 WHERE id = $1', [a])).rejects.toMatchObject({
      code: '23514',
      constraint: 'available_not_negative',
    });
    await expect(pool.query('UPDATE accounts SET posted = posted - 1001 WHERE id = $1', [a])).rejects.toMatchObject({ code: '23514' });
    await pool.query('UPDATE accounts SET pending_debits = pending_debits + 1000 WHERE id = $1', [a]); // exactly zero is allowed
    await pool.query('UPDATE accounts SET pending_debits = pending_debits - 1000 WHERE id = $1', [a]);
    expect(await balances(ledger, a)).toEqual({ posted: '1000', pendingDebits: '0', pendingCredits: '0', available: '1000' });
    await expectConsistent(ledger);
  });

  it('30 concurrent reservations of 100 against 1000: exactly 10 succeed, 20 are INSUFFICIENT_FUNDS', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 1, 'crowd', 1000);
    const outcomes = await Promise.all(
      Array.from({ length: 30 }, () => ledger.reserve(reserveInput(a, '100')).then(() => 'ok', (e: unknown) => (e instanceof RefusalError ? e.code : String(e)))),
    );
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(10);
    expect(outcomes.filter((o) => o === Refusal.INSUFFICIENT_FUNDS)).toHaveLength(20);
    expect(await balances(ledger, a)).toEqual({ posted: '1000', pendingDebits: '1000', pendingCredits: '0', available: '0' });
    const holds = await ledger.shardFor(a).pool.query('SELECT key FROM holds WHERE account_id = $1', [a]);
    expect(holds.rowCount).toBe(10);
    await expectConsistent(ledger);
  });

  it('an overdraft limit of 500 lets an account reserve or withdraw up to balance + 500, not one unit more', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'od', 1000, { overdraftLimit: 500 });
    expect((await ledger.getAccount(a)).available).toBe('1500');
    expect(await refusalOf(ledger.reserve(reserveInput(a, '1501')))).toBe(Refusal.INSUFFICIENT_FUNDS);
    const hold = await ledger.reserve(reserveInput(a, '1500'));
    expect(await balances(ledger, a)).toEqual({ posted: '1000', pendingDebits: '1500', pendingCredits: '0', available: '0' });
    expect(await refusalOf(ledger.reserve(reserveInput(a, '1')))).toBe(Refusal.INSUFFICIENT_FUNDS);
    await ledger.void({ key: fresh('void'), holdKey: hold.key, accountId: a });
    expect(await refusalOf(ledger.withdraw({ key: fresh('wd'), accountId: a, amount: '1501', currency: 'USD' }))).toBe(Refusal.INSUFFICIENT_FUNDS);
    await ledger.withdraw({ key: fresh('wd'), accountId: a, amount: '1500', currency: 'USD' });
    expect(await balances(ledger, a)).toEqual({ posted: '-500', pendingDebits: '0', pendingCredits: '0', available: '0' });
    expect(await refusalOf(ledger.withdraw({ key: fresh('wd'), accountId: a, amount: '1', currency: 'USD' }))).toBe(Refusal.INSUFFICIENT_FUNDS);
    await expectConsistent(ledger);
  });
});

describe('rule 7: refusals are typed, carry a stable code, and write nothing', () => {
  it('INSUFFICIENT_FUNDS (reserve, withdraw): no hold, no posting, only the sticky key record', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 1, 'poor', 100);
    const before = await rowCounts(ledger);
    const reserve = reserveInput(a, '101');
    const withdraw = { key: fresh('wd'), accountId: a, amount: '101', currency: 'USD' };
    const error = await ledger.reserve(reserve).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RefusalError);
    expect(error).toMatchObject({ name: 'RefusalError', code: 'INSUFFICIENT_FUNDS', details: { account: a, requested: '101' } });
    expect(await refusalOf(ledger.withdraw(withdraw))).toBe(Refusal.INSUFFICIENT_FUNDS);
    expect(withoutKeys(await rowCounts(ledger))).toEqual(withoutKeys(before));
    expect([await keyState(a, reserve.key), await keyState(a, withdraw.key)]).toEqual(['refused', 'refused']);
    expect(await balances(ledger, a)).toEqual({ posted: '100', pendingDebits: '0', pendingCredits: '0', available: '100' });
    await expectConsistent(ledger);
  });

  it('ACCOUNT_NOT_FOUND for reserve, deposit and getAccount of an account that does not exist', async () => {
    const { ledger } = t;
    const ghost = fresh('ghost');
    const before = await rowCounts(ledger);
    expect(await refusalOf(ledger.getAccount(ghost))).toBe(Refusal.ACCOUNT_NOT_FOUND);
    expect(await refusalOf(ledger.reserve(reserveInput(ghost, '10')))).toBe(Refusal.ACCOUNT_NOT_FOUND);
    expect(await refusalOf(ledger.deposit({ key: fresh('dep'), accountId: ghost, amount: '10', currency: 'USD' }))).toBe(Refusal.ACCOUNT_NOT_FOUND);
    expect(await refusalOf(ledger.setStatus(ghost, 'frozen'))).toBe(Refusal.ACCOUNT_NOT_FOUND);
    expect(withoutKeys(await rowCounts(ledger))).toEqual(withoutKeys(before));
  });

  it('ACCOUNT_FROZEN for reserve, deposit and withdraw until the account is unfrozen', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'ice', 500);
    expect((await ledger.setStatus(a, 'frozen')).status).toBe('frozen');
    const before = await rowCounts(ledger);
    expect(await refusalOf(ledger.reserve(reserveInput(a, '10')))).toBe(Refusal.ACCOUNT_FROZEN);
    expect(await refusalOf(ledger.reserve(reserveInput(a, '10', { side: 'credit' })))).toBe(Refusal.ACCOUNT_FROZEN);
    expect(await refusalOf(ledger.deposit({ key: fresh('dep'), accountId: a, amount: '10', currency: 'USD' }))).toBe(Refusal.ACCOUNT_FROZEN);
    expect(await refusalOf(ledger.withdraw({ key: fresh('wd'), accountId: a, amount: '10', currency: 'USD' }))).toBe(Refusal.ACCOUNT_FROZEN);
    expect(withoutKeys(await rowCounts(ledger))).toEqual(withoutKeys(before));
    expect(await balances(ledger, a)).toEqual({ posted: '500', pendingDebits: '0', pendingCredits: '0', available: '500' });
    await ledger.setStatus(a, 'active');
    await ledger.reserve(reserveInput(a, '10'));
    await expectConsistent(ledger);
  });

  it('ACCOUNT_NOT_EMPTY when closing an account with a balance or a pending hold; ACCOUNT_CLOSED once closed, for good', async () => {
    const { ledger } = t;
    const rich = await fundedAccount(ledger, 1, 'rich', 10);
    expect(await refusalOf(ledger.setStatus(rich, 'closed'))).toBe(Refusal.ACCOUNT_NOT_EMPTY);
    const waiting = await fundedAccount(ledger, 1, 'waiting');
    const hold = await ledger.reserve(reserveInput(waiting, '10', { side: 'credit' }));
    expect(await refusalOf(ledger.setStatus(waiting, 'closed'))).toBe(Refusal.ACCOUNT_NOT_EMPTY);
    await ledger.void({ key: fresh('void'), holdKey: hold.key, accountId: waiting });
    expect((await ledger.getAccount(rich)).status).toBe('active');

    const empty = await fundedAccount(ledger, 0, 'empty');
    expect((await ledger.setStatus(empty, 'closed')).status).toBe('closed');
    const before = await rowCounts(ledger);
    expect(await refusalOf(ledger.deposit({ key: fresh('dep'), accountId: empty, amount: '10', currency: 'USD' }))).toBe(Refusal.ACCOUNT_CLOSED);
    expect(await refusalOf(ledger.reserve(reserveInput(empty, '10', { side: 'credit' })))).toBe(Refusal.ACCOUNT_CLOSED);
    expect(await refusalOf(ledger.setStatus(empty, 'active'))).toBe(Refusal.ACCOUNT_CLOSED);
    expect(withoutKeys(await rowCounts(ledger))).toEqual(withoutKeys(before));
    expect((await ledger.getAccount(empty)).status).toBe('closed');
    await expectConsistent(ledger);
  });

  it('CURRENCY_MISMATCH for a EUR reserve or deposit on a USD account; ACCOUNT_EXISTS for reopening it in EUR', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'usd', 100);
    const before = await rowCounts(ledger);
    expect(await refusalOf(ledger.reserve(reserveInput(a, '10', { currency: 'EUR' })))).toBe(Refusal.CURRENCY_MISMATCH);
    expect(await refusalOf(ledger.deposit({ key: fresh('dep'), accountId: a, amount: '10', currency: 'EUR' }))).toBe(Refusal.CURRENCY_MISMATCH);
    expect(await refusalOf(ledger.openAccount({ id: a, currency: 'EUR' }))).toBe(Refusal.ACCOUNT_EXISTS);
    expect(withoutKeys(await rowCounts(ledger)).map((c) => ({ ...c, accounts: 0 }))).toEqual(withoutKeys(before).map((c) => ({ ...c, accounts: 0 })));
    expect(await balances(ledger, a)).toEqual({ posted: '100', pendingDebits: '0', pendingCredits: '0', available: '100' });
    await expectConsistent(ledger);
  });

  it('invalid input (amount, account id, currency, key, ttl) is refused before anything is written, not even a key', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 1, 'valid', 1000);
    const before = await rowCounts(ledger);
    const badAmounts: unknown[] = [0, '0', -5, '-5', '12.5', 12.5, '9223372036854775808', '99999999999999999999999', 'abc', '', null, undefined, NaN, Infinity, 2 ** 53];
    for (const amount of badAmounts) {
      const where = `amount ${String(amount)}`;
      expect(await refusalOf(ledger.reserve(reserveInput(a, amount))), where).toBe(Refusal.INVALID_AMOUNT);
      expect(await refusalOf(ledger.deposit({ key: fresh('dep'), accountId: a, amount, currency: 'USD' })), where).toBe(Refusal.INVALID_AMOUNT);
      expect(await refusalOf(ledger.withdraw({ key: fresh('wd'), accountId: a, amount, currency: 'USD' })), where).toBe(Refusal.INVALID_AMOUNT);
    }
    for (const id of ['', 'has space', 'sys:external:USD', 'sys:clearing:USD', '-leading-dash', 'x'.repeat(65), 'ünïcode']) {
      expect(await refusalOf(ledger.reserve(reserveInput(id, '10'))), id).toBe(Refusal.INVALID_ACCOUNT_ID);
      expect(await refusalOf(ledger.deposit({ key: fresh('dep'), accountId: id, amount: '10', currency: 'USD' })), id).toBe(Refusal.INVALID_ACCOUNT_ID);
      expect(await refusalOf(ledger.openAccount({ id, currency: 'USD' })), id).toBe(Refusal.INVALID_ACCOUNT_ID);
    }
    for (const currency of ['XXX', 'usd', 'US', '']) {
      expect(await refusalOf(ledger.reserve(reserveInput(a, '10', { currency }))), currency).toBe(Refusal.UNKNOWN_CURRENCY);
      expect(await refusalOf(ledger.deposit({ key: fresh('dep'), accountId: a, amount: '10', currency })), currency).toBe(Refusal.UNKNOWN_CURRENCY);
      expect(await refusalOf(ledger.openAccount({ id: fresh('new'), currency }))).toBe(Refusal.UNKNOWN_CURRENCY);
    }
    expect(await refusalOf(ledger.reserve(reserveInput(a, '10', { key: '' })))).toBe(Refusal.INVALID_INPUT);
    expect(await refusalOf(ledger.reserve(reserveInput(a, '10', { ttlMs: 0 })))).toBe(Refusal.INVALID_INPUT);
    expect(await refusalOf(ledger.deposit({ key: 'k'.repeat(201), accountId: a, amount: '10', currency: 'USD' }))).toBe(Refusal.INVALID_INPUT);
    expect(await refusalOf(ledger.openAccount({ id: fresh('od'), currency: 'USD', overdraftLimit: -1 }))).toBe(Refusal.INVALID_AMOUNT);
    expect(await rowCounts(ledger)).toEqual(before);
    expect(await balances(ledger, a)).toEqual({ posted: '1000', pendingDebits: '0', pendingCredits: '0', available: '1000' });
    await expectConsistent(ledger);
  });
});
