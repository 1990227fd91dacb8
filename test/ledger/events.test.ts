import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Refusal } from '../../src/domain/codes.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { fresh, fundedAccount, refusalOf, reserveInput } from './semantics-support.js';

/**
 * The per-shard outbox: every ledger effect writes its event in the same transaction as the effect,
 * on the same shard, and nothing else does (refusals, replays and null compensations write none).
 */
let t: TestLedger;
beforeAll(async () => {
  t = await createTestLedger();
});
afterAll(async () => t?.drop());

interface EventRow { type: string; aggregatetype: string; aggregateid: string; payload: Record<string, unknown>; committed: boolean }

/** Events of one aggregate on one shard, in order; committed: the transaction id stored with it committed. */
async function events(ledger: Ledger, shard: number, aggregateId: string): Promise<EventRow[]> {
  const { rows } = await ledger.shards[shard]!.pool.query<EventRow>(
    `SELECT e.type, e.aggregatetype, e.aggregateid, e.payload,
            pg_xact_status(e.txid) = 'committed' AS committed
     FROM ledger_events e WHERE e.aggregateid = $1 ORDER BY e.seq`,
    [aggregateId],
  );
  return rows;
}

describe('ledger events (the outbox written with each effect)', () => {
  it('a cross-shard transfer: each side writes its events on its own shard, ordered by sequence, amounts as digit strings', async () => {
    const { ledger } = t;
    const from = await fundedAccount(ledger, 0, 'ev-from', 1000);
    const to = await fundedAccount(ledger, 1, 'ev-to');
    const id = fresh('ev-tr');
    const debit = await ledger.reserve(reserveInput(from, '250', { transferId: id, side: 'debit' }));
    const credit = await ledger.reserve(reserveInput(to, '250', { transferId: id, side: 'credit' }));
    await ledger.reserve(reserveInput(from, '250', { transferId: id, side: 'debit' })); // replay: no second event
    await ledger.post({ key: `${id}:post-debit`, holdKey: debit.key, accountId: from, transferId: id });
    await ledger.post({ key: `${id}:post-credit`, holdKey: credit.key, accountId: to, transferId: id });
    await ledger.post({ key: `${id}:post-credit`, holdKey: credit.key, accountId: to, transferId: id }); // replay

    const onDebitShard = await events(ledger, 0, id);
    const onCreditShard = await events(ledger, 1, id);
    expect(onDebitShard.map((e) => [e.type, e.payload.sequence, e.payload.amount, e.payload.account])).toEqual([
      ['transfer.debit_reserved', 1, '250', from], ['transfer.debit_posted', 3, '250', from],
    ]);
    expect(onCreditShard.map((e) => [e.type, e.payload.sequence, e.payload.amount, e.payload.account])).toEqual([
      ['transfer.credit_reserved', 2, '250', to], ['transfer.credit_posted', 4, '250', to],
    ]);
    for (const e of [...onDebitShard, ...onCreditShard]) {
      expect(e).toMatchObject({ aggregatetype: 'transfer', aggregateid: id, committed: true });
      expect(e.payload).toMatchObject({ transferId: id, currency: 'USD' });
    }
    const accountEvents = await events(ledger, 0, from);
    expect(accountEvents.map((e) => [e.type, e.payload.amount])).toEqual([['account.opened', undefined], ['account.deposited', '1000']]);
  });

  it('refusals, null compensations and replays write nothing; voids, expiries and refunds write theirs', async () => {
    const { ledger, clock } = t;
    const from = await fundedAccount(ledger, 0, 'ev2-from', 100);
    const to = await fundedAccount(ledger, 1, 'ev2-to');
    const refused = fresh('ev2-refused');
    expect(await refusalOf(ledger.reserve(reserveInput(from, '500', { transferId: refused })))).toBe(Refusal.INSUFFICIENT_FUNDS);
    const fenced = fresh('ev2-fenced');
    await ledger.void({ key: `${fenced}:void-debit`, holdKey: `${fenced}:reserve-debit`, accountId: from, transferId: fenced });
    expect(await events(ledger, 0, refused)).toEqual([]);
    expect(await events(ledger, 0, fenced)).toEqual([]);

    const voided = fresh('ev2-void');
    const hold = await ledger.reserve(reserveInput(from, '10', { transferId: voided }));
    await ledger.void({ key: `${voided}:void-debit`, holdKey: hold.key, accountId: from, transferId: voided });
    expect((await events(ledger, 0, voided)).map((e) => [e.type, e.payload.side, e.payload.sequence])).toEqual([
      ['transfer.debit_reserved', 'debit', 1], ['transfer.hold_voided', 'debit', 6],
    ]);

    const expiring = fresh('ev2-exp');
    await ledger.reserve(reserveInput(to, '7', { transferId: expiring, side: 'credit', ttlMs: 1_000 }));
    clock.advance(2_000);
    await ledger.sweepExpired();
    expect((await events(ledger, 1, expiring)).map((e) => [e.type, e.payload.sequence, e.payload.key])).toEqual([
      ['transfer.credit_reserved', 2, `${expiring}:reserve-credit`], ['transfer.hold_expired', 5, 'sweeper'],
    ]);

    const refunded = fresh('ev2-refund');
    const d = await ledger.reserve(reserveInput(from, '20', { transferId: refunded }));
    await ledger.post({ key: `${refunded}:post-debit`, holdKey: d.key, accountId: from, transferId: refunded });
    await ledger.refund({ key: `${refunded}:refund-debit`, holdKey: d.key, accountId: from, transferId: refunded });
    expect((await events(ledger, 0, refunded)).map((e) => e.type)).toEqual(['transfer.debit_reserved', 'transfer.debit_posted', 'transfer.debit_refunded']);

    await ledger.setStatus(to, 'frozen');
    await ledger.setStatus(to, 'frozen'); // no change, no event
    expect((await events(ledger, 1, to)).map((e) => [e.type, e.payload.status ?? null])).toEqual([['account.opened', null], ['account.status_changed', 'frozen']]);
  });
});
