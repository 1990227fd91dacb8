import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Refusal } from '../../src/domain/codes.js';
import { RefusalError } from '../../src/domain/errors.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { balances, expectConsistent, fresh, fundedAccount, holdRow, refusalOf, reserveInput, rowCounts } from './semantics-support.js';

let t: TestLedger;
beforeAll(async () => {
  t = await createTestLedger();
});
afterAll(async () => t?.drop());

async function journalCount(accountId: string, transferId: string): Promise<number> {
  const { rows } = await t.ledger.shardFor(accountId).pool.query('SELECT id FROM journal WHERE transfer_id = $1', [transferId]);
  return rows.length;
}

/** A cross-shard transfer with both holds posted: debit on shard 0, credit on shard 1. */
async function postedTransfer(amount: string) {
  const { ledger } = t;
  const from = await fundedAccount(ledger, 0, 'from', 1000);
  const to = await fundedAccount(ledger, 1, 'to');
  const transferId = fresh('done');
  const debit = await ledger.reserve(reserveInput(from, amount, { transferId, side: 'debit' }));
  const credit = await ledger.reserve(reserveInput(to, amount, { transferId, side: 'credit' }));
  const postDebit = { key: `${transferId}:post-debit`, holdKey: debit.key, accountId: from };
  const postCredit = { key: `${transferId}:post-credit`, holdKey: credit.key, accountId: to };
  return { from, to, transferId, debit, credit, postDebit, postCredit, posted: [await ledger.post(postDebit), await ledger.post(postCredit)] };
}

describe('rule 4: a hold resolves at most once', () => {
  it('post of a voided hold is refused HOLD_VOIDED and posts nothing', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'voided', 1000);
    const input = reserveInput(a, '300');
    await ledger.reserve(input);
    await ledger.void({ key: fresh('void'), holdKey: input.key, accountId: a });
    expect(await refusalOf(ledger.post({ key: fresh('post'), holdKey: input.key, accountId: a }))).toBe(Refusal.HOLD_VOIDED);
    expect(await ledger.void({ key: fresh('void-2'), holdKey: input.key, accountId: a })).toMatchObject({ outcome: 'already_voided' });
    expect(await holdRow(ledger, a, input.key)).toMatchObject({ state: 'voided' });
    expect(await journalCount(a, input.transferId)).toBe(0);
    expect(await balances(ledger, a)).toEqual({ posted: '1000', pendingDebits: '0', pendingCredits: '0', available: '1000' });
    await expectConsistent(ledger);
  });

  it('post of a hold the sweeper expired is refused HOLD_EXPIRED; a void then reports already_expired', async () => {
    const { ledger, clock } = t;
    const a = await fundedAccount(ledger, 1, 'swept', 1000);
    const input = reserveInput(a, '300', { ttlMs: 1_000 });
    await ledger.reserve(input);
    clock.advance(1_500);
    const swept = (await ledger.sweepExpired()).flatMap((s) => s.expired.map((h) => h.key));
    expect(swept).toEqual([input.key]);
    expect(await refusalOf(ledger.post({ key: fresh('post'), holdKey: input.key, accountId: a }))).toBe(Refusal.HOLD_EXPIRED);
    expect(await ledger.void({ key: fresh('void'), holdKey: input.key, accountId: a })).toMatchObject({ outcome: 'already_expired' });
    expect(await holdRow(ledger, a, input.key)).toEqual({ state: 'expired', resolved_by: 'sweeper' });
    expect(await journalCount(a, input.transferId)).toBe(0);
    expect(await balances(ledger, a)).toEqual({ posted: '1000', pendingDebits: '0', pendingCredits: '0', available: '1000' });
    await expectConsistent(ledger);
  });

  it('post finding its hold past expiry expires it itself (keeping that) and refuses HOLD_EXPIRED, also on retry', async () => {
    const { ledger, clock } = t;
    const a = await fundedAccount(ledger, 0, 'late-post', 1000);
    const input = reserveInput(a, '300', { ttlMs: 1_000 });
    await ledger.reserve(input);
    clock.advance(1_001);
    const post = { key: fresh('post'), holdKey: input.key, accountId: a };
    expect(await refusalOf(ledger.post(post))).toBe(Refusal.HOLD_EXPIRED);
    expect(await holdRow(ledger, a, input.key)).toEqual({ state: 'expired', resolved_by: post.key });
    expect(await balances(ledger, a)).toEqual({ posted: '1000', pendingDebits: '0', pendingCredits: '0', available: '1000' });
    expect(await refusalOf(ledger.post(post))).toBe(Refusal.HOLD_EXPIRED);
    expect((await ledger.sweepExpired()).flatMap((s) => s.expired)).toEqual([]);
    expect(await journalCount(a, input.transferId)).toBe(0);
    await expectConsistent(ledger);
  });

  it('void of a posted hold is refused HOLD_POSTED; a refund undoes it exactly once (another key → ALREADY_REFUNDED)', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 1, 'refund', 1000);
    const input = reserveInput(a, '400');
    await ledger.reserve(input);
    await ledger.post({ key: `${input.transferId}:post-debit`, holdKey: input.key, accountId: a });
    expect(await balances(ledger, a)).toEqual({ posted: '600', pendingDebits: '0', pendingCredits: '0', available: '600' });
    expect(await refusalOf(ledger.void({ key: fresh('void'), holdKey: input.key, accountId: a }))).toBe(Refusal.HOLD_POSTED);
    expect(await holdRow(ledger, a, input.key)).toMatchObject({ state: 'posted' });
    const refundInput = { key: `${input.transferId}:refund-debit`, holdKey: input.key, accountId: a };
    const refund = await ledger.refund(refundInput);
    expect(refund.postings.map((p) => [p.accountId, p.amount, p.kind])).toEqual([[a, '400', 'refund'], ['sys:clearing:USD', '-400', 'refund']]);
    expect(await ledger.refund(refundInput)).toMatchObject({ replayed: true, postings: refund.postings });
    const before = await rowCounts(ledger);
    expect(await refusalOf(ledger.refund({ ...refundInput, key: fresh('refund-again') }))).toBe(Refusal.ALREADY_REFUNDED);
    expect((await rowCounts(ledger)).map((c) => c.journal)).toEqual(before.map((c) => c.journal));
    expect(await balances(ledger, a)).toEqual({ posted: '1000', pendingDebits: '0', pendingCredits: '0', available: '1000' });
    expect(await journalCount(a, input.transferId)).toBe(4);
    await expectConsistent(ledger);
  });

  it('post and void repeated with the same key return the first outcome (replayed=true) and change nothing', async () => {
    const { ledger } = t;
    const tr = await postedTransfer('250');
    const counts = await rowCounts(ledger);
    const [again, againCredit] = [await ledger.post(tr.postDebit), await ledger.post(tr.postCredit)];
    expect(again).toMatchObject({ replayed: true, postings: tr.posted[0]!.postings, hold: tr.posted[0]!.hold });
    expect(againCredit).toMatchObject({ replayed: true, postings: tr.posted[1]!.postings });
    expect(await rowCounts(ledger)).toEqual(counts);
    expect(await refusalOf(ledger.post({ ...tr.postDebit, key: fresh('other-post') }))).toBe(Refusal.HOLD_POSTED);
    expect((await ledger.getAccount(tr.from)).posted).toBe('750');
    expect((await ledger.getAccount(tr.to)).posted).toBe('250');

    const a = await fundedAccount(ledger, 0, 'void-twice', 1000);
    const input = reserveInput(a, '100');
    await ledger.reserve(input);
    const voidInput = { key: fresh('void'), holdKey: input.key, accountId: a };
    const first = await ledger.void(voidInput);
    const second = await ledger.void(voidInput);
    expect(first).toMatchObject({ outcome: 'voided', replayed: false });
    expect(second).toMatchObject({ outcome: 'voided', replayed: true, hold: first.hold });
    expect(await balances(ledger, a)).toEqual({ posted: '1000', pendingDebits: '0', pendingCredits: '0', available: '1000' });
    await expectConsistent(ledger);
  });

  it('post racing void on one pending hold (10 rounds): exactly one resolves it, the other is refused', async () => {
    const { ledger } = t;
    const from = await fundedAccount(ledger, 0, 'pv-from', 10_000);
    const to = await fundedAccount(ledger, 1, 'pv-to');
    const settle = <T>(p: Promise<T>) => p.catch((e: unknown) => (e instanceof RefusalError ? e.code : Promise.reject(e)));
    let postedCount = 0;
    for (let round = 0; round < 10; round++) {
      const transferId = fresh('pv');
      const debit = await ledger.reserve(reserveInput(from, '100', { transferId, side: 'debit' }));
      const credit = await ledger.reserve(reserveInput(to, '100', { transferId, side: 'credit' }));
      const [posted, voided] = await Promise.all([
        settle(ledger.post({ key: `${transferId}:post-credit`, holdKey: credit.key, accountId: to })),
        settle(ledger.void({ key: `${transferId}:void-credit`, holdKey: credit.key, accountId: to })),
      ]);
      const state = (await holdRow(ledger, to, credit.key))!.state;
      if (state === 'posted') {
        postedCount++;
        expect([typeof posted, voided]).toEqual(['object', Refusal.HOLD_POSTED]);
        await ledger.post({ key: `${transferId}:post-debit`, holdKey: debit.key, accountId: from });
      } else {
        expect([state, posted, (voided as { outcome: string }).outcome]).toEqual(['voided', Refusal.HOLD_VOIDED, 'voided']);
        await ledger.void({ key: `${transferId}:void-debit`, holdKey: debit.key, accountId: from });
      }
      expect((await ledger.getAccount(to)).pendingCredits).toBe('0');
    }
    expect((await ledger.getAccount(to)).posted).toBe(String(100 * postedCount));
    expect((await ledger.getAccount(from)).posted).toBe(String(10_000 - 100 * postedCount));
    await expectConsistent(ledger);
  });

  it('the database itself blocks a second state change of a hold and any edit or delete of the journal', async () => {
    const { ledger } = t;
    const tr = await postedTransfer('100');
    const pool = ledger.shardFor(tr.from).pool;
    await expect(pool.query(`UPDATE holds SET state = 'voided' WHERE key = $1`, [tr.debit.key])).rejects.toMatchObject({
      code: '23514',
      message: expect.stringContaining('already posted'),
    });
    await expect(pool.query(`UPDATE holds SET state = 'pending', resolved_at = NULL, resolved_by = NULL WHERE key = $1`, [tr.debit.key])).rejects.toMatchObject({ code: '23514' });
    await expect(pool.query(`UPDATE journal SET amount = amount * 2 WHERE transfer_id = $1`, [tr.transferId])).rejects.toMatchObject({
      code: '23514',
      message: expect.stringContaining('append-only'),
    });
    await expect(pool.query(`DELETE FROM journal WHERE transfer_id = $1`, [tr.transferId])).rejects.toMatchObject({ code: '23514' });
    // A pending hold may change state, but nothing else about it.
    const a = await fundedAccount(ledger, 1, 'frozen-hold', 1000);
    const input = reserveInput(a, '100');
    await ledger.reserve(input);
    await expect(ledger.shardFor(a).pool.query(`UPDATE holds SET amount = 1 WHERE key = $1`, [input.key])).rejects.toMatchObject({
      message: expect.stringContaining('may only change state'),
    });
    await ledger.void({ key: fresh('void'), holdKey: input.key, accountId: a });
    expect(await holdRow(ledger, tr.from, tr.debit.key)).toMatchObject({ state: 'posted' });
    expect(await journalCount(tr.from, tr.transferId)).toBe(2);
    await expectConsistent(ledger);
  });
});
