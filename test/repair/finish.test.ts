import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finishFromLedger, ledgerPicture } from '../../src/repair.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { refusalCodeOf } from '../support/refusals.js';
import { expectBalances, expectLedgerClean, openFunded } from '../support/transfers.js';

/**
 * finishFromLedger on a real ledger, at each point a run can be terminated (the steps the run did are
 * played by hand with the saga's own keys). The CLI path is in test/e2e/repair.test.ts.
 */
let t: TestLedger;
beforeAll(async () => {
  t = await createTestLedger();
});
afterAll(async () => {
  await t?.drop();
});

async function accounts(prefix: string) {
  return { from: await openFunded(t.ledger, 0, `${prefix}-from`, '1000'), to: await openFunded(t.ledger, 1, `${prefix}-to`, '0') };
}
const reserve = (id: string, side: 'debit' | 'credit', account: string, counterparty: string, amount = '100') =>
  t.ledger.reserve({ key: `${id}:reserve-${side}`, transferId: id, accountId: account, side, amount, currency: 'USD', ttlMs: 15 * 60_000, counterparty });

describe('finishing a terminated transfer from the ledger', () => {
  it('terminated before posting: voids both holds, nothing was paid', async () => {
    const { from, to } = await accounts('f1');
    await reserve('f1', 'debit', from, to);
    await reserve('f1', 'credit', to, from);
    expect(ledgerPicture(await t.ledger.transferRecords('f1'), 'f1', 'USD')).toMatchObject({ debit: 'pending', credit: 'pending', status: 'NEEDS_ATTENTION', inClearing: '0' });
    const report = await finishFromLedger(t.ledger, { transferId: 'f1', from, to, currency: 'USD' });
    expect(report.steps).toEqual([{ step: 'void-credit', outcome: 'voided' }, { step: 'void-debit', outcome: 'voided' }]);
    expect(report.after).toMatchObject({ debit: 'voided', credit: 'voided', status: 'COMPENSATED', summary: 'debit voided, credit voided' });
    await expectBalances(t.ledger, { [from]: { posted: '1000' }, [to]: { posted: '0' } });
  });

  it('terminated during the credit reservation: the credit void leaves a tombstone, a late reservation is fenced', async () => {
    const { from, to } = await accounts('f2');
    await reserve('f2', 'debit', from, to);
    const report = await finishFromLedger(t.ledger, { transferId: 'f2', from, to, currency: 'USD' });
    expect(report.steps).toEqual([{ step: 'void-credit', outcome: 'null_compensation' }, { step: 'void-debit', outcome: 'voided' }]);
    expect(await refusalCodeOf(reserve('f2', 'credit', to, from))).toBe('FENCED');
    expect(report.after.status).toBe('COMPENSATED');
  });

  it('terminated before anything: both tombstones, FAILED (nothing was ever held)', async () => {
    const { from, to } = await accounts('f3');
    const report = await finishFromLedger(t.ledger, { transferId: 'f3', from, to, currency: 'USD' });
    expect(report.steps.map((s) => s.outcome)).toEqual(['null_compensation', 'null_compensation']);
    expect(report.after).toMatchObject({ debit: 'none', credit: 'none', status: 'FAILED' });
    expect(await refusalCodeOf(reserve('f3', 'debit', from, to))).toBe('FENCED');
  });

  it('a debit posted and refunded already: nothing moves twice', async () => {
    const { from, to } = await accounts('f4');
    await reserve('f4', 'debit', from, to);
    await t.ledger.post({ key: 'f4:post-debit', holdKey: 'f4:reserve-debit', accountId: from });
    const first = await finishFromLedger(t.ledger, { transferId: 'f4', from, to, currency: 'USD' });
    expect(first.steps).toEqual([{ step: 'void-credit', outcome: 'null_compensation' }, { step: 'refund-debit', outcome: 'refunded' }]);
    const again = await finishFromLedger(t.ledger, { transferId: 'f4', from, to, currency: 'USD' });
    expect(again.steps.map((s) => s.step)).toEqual(['void-credit', 'refund-debit']);
    expect(again.steps[1]!.outcome).not.toBe('refunded');
    await expectBalances(t.ledger, { [from]: { posted: '1000' } });
    await expectLedgerClean(t.ledger);
  });

  it('stops and names the refusal when the ledger holds something no rule can finish (credit posted, debit not)', async () => {
    const { from, to } = await accounts('f5');
    await reserve('f5', 'debit', from, to);
    await reserve('f5', 'credit', to, from);
    await t.ledger.post({ key: 'ops:f5-by-hand', holdKey: 'f5:reserve-credit', accountId: to });
    const report = await finishFromLedger(t.ledger, { transferId: 'f5', from, to, currency: 'USD' });
    expect(report.blocked).toMatchObject({ step: 'void-credit', code: 'HOLD_POSTED' });
    expect(report.steps).toEqual([]);
    expect(report.after).toMatchObject({ debit: 'pending', credit: 'posted', inClearing: '-100', status: 'NEEDS_ATTENTION', summary: 'debit pending, credit posted: clearing short by 1.00 USD' });
  });
});
