import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Refusal } from '../../src/domain/codes.js';
import { RefusalError } from '../../src/domain/errors.js';
import type { HoldResult } from '../../src/ledger/types.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { balances, expectConsistent, fresh, fundedAccount, refusalOf, reserveInput, rowCounts } from './semantics-support.js';

let t: TestLedger;
beforeAll(async () => {
  t = await createTestLedger();
});
afterAll(async () => t?.drop());

async function keyRecord(accountId: string, key: string) {
  const { rows } = await t.ledger.shardFor(accountId).pool.query<{ operation: string; state: string }>(
    'SELECT operation, state FROM idempotency_keys WHERE key = $1',
    [key],
  );
  return rows[0];
}

async function holdRows(accountId: string, key: string) {
  const { rows } = await t.ledger.shardFor(accountId).pool.query<{ state: string }>('SELECT state FROM holds WHERE key = $1', [key]);
  return rows;
}

describe('rule 3: a void before its reservation leaves a tombstone; the late reservation is FENCED', () => {
  it('void with no reservation succeeds as null_compensation and writes a cancelled tombstone under the hold key', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'tomb', 1000);
    const input = reserveInput(a, '400');
    const voided = await ledger.void({ key: `${input.transferId}:void-debit`, holdKey: input.key, accountId: a });
    expect(voided).toMatchObject({ outcome: 'null_compensation', replayed: false });
    expect(voided.hold).toBeUndefined();
    expect(await keyRecord(a, input.key)).toEqual({ operation: 'tombstone', state: 'cancelled' });
    expect(await holdRows(a, input.key)).toEqual([]);
    await expectConsistent(ledger);
  });

  it('the reservation arriving after the tombstone is refused FENCED and changes nothing, on retry too', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 1, 'late', 1000);
    const input = reserveInput(a, '400');
    const voidInput = { key: `${input.transferId}:void-debit`, holdKey: input.key, accountId: a };
    await ledger.void(voidInput);
    const before = await rowCounts(ledger);
    expect(await refusalOf(ledger.reserve(input))).toBe(Refusal.FENCED);
    expect(await refusalOf(ledger.reserve(input))).toBe(Refusal.FENCED);
    expect(await refusalOf(ledger.reserve({ ...input, side: 'credit' }))).toBe(Refusal.FENCED);
    expect(await rowCounts(ledger)).toEqual(before);
    expect(await holdRows(a, input.key)).toEqual([]);
    expect(await balances(ledger, a)).toEqual({ posted: '1000', pendingDebits: '0', pendingCredits: '0', available: '1000' });
    // The void itself replays, and a second compensation under another key also finds the tombstone.
    expect(await ledger.void(voidInput)).toMatchObject({ outcome: 'null_compensation', replayed: true });
    expect(await ledger.void({ ...voidInput, key: fresh('void-again') })).toMatchObject({ outcome: 'null_compensation', replayed: false });
    await expectConsistent(ledger);
  });

  it('a void after the reservation voids the hold and releases the funds', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'in-order', 1000);
    const input = reserveInput(a, '400');
    await ledger.reserve(input);
    const voided = await ledger.void({ key: fresh('void'), holdKey: input.key, accountId: a });
    expect(voided.outcome).toBe('voided');
    expect(voided.hold).toMatchObject({ state: 'voided', key: input.key });
    expect(await balances(ledger, a)).toEqual({ posted: '1000', pendingDebits: '0', pendingCredits: '0', available: '1000' });
    await expectConsistent(ledger);
  });

  it('reserve racing void for the same hold key (20 rounds, both shards): voided or fenced, never a pending hold', async () => {
    const { ledger } = t;
    const accounts = [await fundedAccount(ledger, 0, 'race', 100_000), await fundedAccount(ledger, 1, 'race', 100_000)];
    const seen = { voided: 0, fenced: 0 };
    for (let round = 0; round < 20; round++) {
      const a = accounts[round % 2]!;
      const input = reserveInput(a, '1000', { transferId: fresh('race-tr'), side: round % 4 < 2 ? 'debit' : 'credit' });
      const voidInput = { key: `${input.transferId}:void`, holdKey: input.key, accountId: a };
      // Stagger the reservation by 0-4 ms in odd rounds so that both interleavings get exercised.
      const lag = round % 2 === 1 ? (round >> 1) % 5 : 0;
      const reserveCall = async (): Promise<HoldResult | RefusalError> => {
        if (lag > 0) await new Promise((r) => setTimeout(r, lag));
        return ledger.reserve(input).catch((e: unknown) => (e instanceof RefusalError ? e : Promise.reject(e)));
      };
      const [reserved, voided] = await Promise.all([reserveCall(), ledger.void(voidInput)]);
      const rows = await holdRows(a, input.key);
      if (voided.outcome === 'voided') {
        seen.voided++;
        expect(reserved).not.toBeInstanceOf(RefusalError);
        expect(rows).toEqual([{ state: 'voided' }]);
      } else {
        seen.fenced++;
        expect(voided.outcome).toBe('null_compensation');
        expect(reserved).toBeInstanceOf(RefusalError);
        expect((reserved as RefusalError).code).toBe(Refusal.FENCED);
        expect(rows).toEqual([]);
        // A retry of the reservation stays fenced.
        expect(await refusalOf(ledger.reserve(input))).toBe(Refusal.FENCED);
      }
      const acc = await ledger.getAccount(a);
      expect([acc.pendingDebits, acc.pendingCredits, acc.posted]).toEqual(['0', '0', '100000']);
    }
    expect(seen.voided + seen.fenced).toBe(20);
    await expectConsistent(ledger);
  });
});
