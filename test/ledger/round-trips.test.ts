import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Refusal } from '../../src/domain/codes.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { fresh, fundedAccount, refusalOf, reserveInput } from './semantics-support.js';

/**
 * Each ledger step is one statement, so one round trip: the PL/pgSQL function of
 * migrations/004_step_functions.sql is the whole transaction (no BEGIN, savepoints or COMMIT from
 * here), on the happy path, on a replay and on a refusal alike. Counted at the pool's clients: every
 * query any of them sends.
 */
let t: TestLedger;
const sent: string[] = [];
beforeAll(async () => {
  t = await createTestLedger();
  for (const shard of t.ledger.shards) {
    shard.pool.on('connect', (client: pg.PoolClient) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as { query: unknown }).query = (...args: unknown[]) => {
        const text = args[0];
        sent.push(typeof text === 'string' ? text : String((text as { text?: string }).text));
        return query(...args);
      };
    });
  }
  await t.ledger.checkIdentity(); // once per shard, before its first operation: not part of a step
});
afterAll(async () => t?.drop());

/** The statements a call sent, and what it returned. */
async function counted<T>(call: () => Promise<T>): Promise<{ statements: string[]; result: T }> {
  const from = sent.length;
  const result = await call();
  return { statements: sent.slice(from), result };
}

async function expectOneRoundTrip<T extends { replayed: boolean }>(call: () => Promise<T>, fn: string): Promise<T> {
  const first = await counted(call);
  expect(first.statements).toHaveLength(1);
  expect(first.statements[0]).toContain(`${fn}(`);
  expect(first.result.replayed).toBe(false);
  const replay = await counted(call);
  expect(replay.statements).toHaveLength(1);
  expect(replay.result.replayed).toBe(true);
  expect(replay.result).toEqual({ ...first.result, replayed: true });
  return first.result;
}

describe('each ledger step is one round trip', () => {
  it('deposit and withdraw: one statement each, replays too', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'rt-move');
    await expectOneRoundTrip(() => ledger.deposit({ key: 'rt-dep', accountId: a, amount: '1000', currency: 'USD' }), 'ledger_move');
    await expectOneRoundTrip(() => ledger.withdraw({ key: 'rt-wd', accountId: a, amount: '100', currency: 'USD' }), 'ledger_move');
    expect((await ledger.getAccount(a)).posted).toBe('900');
  });

  it('reserve, post (both sides, both shards) and refund: one statement each, replays too', async () => {
    const { ledger } = t;
    const from = await fundedAccount(ledger, 0, 'rt-from', 1000);
    const to = await fundedAccount(ledger, 1, 'rt-to');
    const id = fresh('rt-tr');
    const debit = await expectOneRoundTrip(() => ledger.reserve(reserveInput(from, '250', { transferId: id, side: 'debit' })), 'ledger_reserve');
    const credit = await expectOneRoundTrip(() => ledger.reserve(reserveInput(to, '250', { transferId: id, side: 'credit' })), 'ledger_reserve');
    await expectOneRoundTrip(() => ledger.post({ key: `${id}:post-debit`, holdKey: debit.key, accountId: from, transferId: id }), 'ledger_post');
    await expectOneRoundTrip(() => ledger.post({ key: `${id}:post-credit`, holdKey: credit.key, accountId: to, transferId: id }), 'ledger_post');
    await expectOneRoundTrip(() => ledger.refund({ key: `${id}:refund-debit`, holdKey: debit.key, accountId: from, transferId: id }), 'ledger_refund');
    expect((await ledger.getAccount(to)).posted).toBe('250');
  });

  it('void (of a hold, and before its reservation) and a refused step: one statement each', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 1, 'rt-void', 100);
    const id = fresh('rt-void-tr');
    const hold = await ledger.reserve(reserveInput(a, '40', { transferId: id }));
    const voided = await expectOneRoundTrip(() => ledger.void({ key: `${id}:void-debit`, holdKey: hold.key, accountId: a, transferId: id }), 'ledger_void');
    expect(voided.outcome).toBe('voided');
    const early = fresh('rt-early');
    const tombstone = await expectOneRoundTrip(
      () => ledger.void({ key: `${early}:void-debit`, holdKey: `${early}:reserve-debit`, accountId: a, transferId: early }),
      'ledger_void',
    );
    expect(tombstone.outcome).toBe('null_compensation');
    const fenced = await counted(() => refusalOf(ledger.reserve(reserveInput(a, '10', { transferId: early }))));
    expect([fenced.result, fenced.statements.length]).toEqual([Refusal.FENCED, 1]);
    const poor = await counted(() => refusalOf(ledger.reserve(reserveInput(a, '1000'))));
    expect([poor.result, poor.statements.length]).toEqual([Refusal.INSUFFICIENT_FUNDS, 1]);
  });
});
