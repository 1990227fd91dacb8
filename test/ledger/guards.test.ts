import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_AMOUNT } from '../../src/domain/money.js';
import { accountOnShard, createTestLedger, type TestLedger } from '../support/ledger.js';
import { refusalCodeOf } from '../support/refusals.js';

let t: TestLedger;
beforeAll(async () => {
  t = await createTestLedger();
});
afterAll(async () => t?.drop());

describe('ledger guards', () => {
  it('refuses to post, void or refund a hold through an account it is not on', async () => {
    const { ledger } = t;
    const owner = accountOnShard(ledger, 0, 'guard-owner');
    const other = accountOnShard(ledger, 0, 'guard-other');
    for (const id of [owner, other]) await ledger.openAccount({ id, currency: 'USD' });
    await ledger.deposit({ key: 'guard-seed', accountId: owner, amount: '100', currency: 'USD' });
    const hold = await ledger.reserve({ key: 'g:reserve-debit', transferId: 'g', accountId: owner, side: 'debit', amount: '60', currency: 'USD', ttlMs: 60_000 });
    expect(await refusalCodeOf(ledger.void({ key: 'g:void-wrong', holdKey: hold.hold.key, accountId: other }))).toBe('HOLD_NOT_FOUND');
    expect(await refusalCodeOf(ledger.post({ key: 'g:post-wrong', holdKey: hold.hold.key, accountId: other }))).toBe('HOLD_NOT_FOUND');
    const records = await ledger.transferRecords('g');
    expect(records.holds.map((h) => h.state)).toEqual(['pending']);
    expect((await ledger.getAccount(owner)).pendingDebits).toBe('60');
    // The right account still works.
    expect((await ledger.void({ key: 'g:void-debit', holdKey: hold.hold.key, accountId: owner })).outcome).toBe('voided');
    expect((await ledger.verify()).violations).toEqual([]);
  });

  it('refuses a deposit whose balance would overflow 64 bits, stickily, with nothing written', async () => {
    const { ledger } = t;
    const id = accountOnShard(ledger, 1, 'guard-big');
    await ledger.openAccount({ id, currency: 'USD' });
    await ledger.deposit({ key: 'big-1', accountId: id, amount: MAX_AMOUNT.toString(), currency: 'USD' });
    expect(await refusalCodeOf(ledger.deposit({ key: 'big-2', accountId: id, amount: '1', currency: 'USD' }))).toBe('INVALID_AMOUNT');
    expect(await refusalCodeOf(ledger.deposit({ key: 'big-2', accountId: id, amount: '1', currency: 'USD' }))).toBe('INVALID_AMOUNT');
    expect((await ledger.getAccount(id)).posted).toBe(MAX_AMOUNT.toString());
    const { rows } = await ledger.shardFor(id).pool.query(`SELECT count(*)::int AS n FROM journal WHERE entry_id = 'big-2'`);
    expect(rows[0].n).toBe(0);
  });
});
