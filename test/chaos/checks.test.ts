import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLedger, checkOutcomes } from '../../chaos/checks.js';
import { Findings } from '../../chaos/findings.js';
import type { Plan, TransferSpec } from '../../chaos/plan.js';
import type { TransferRecord } from '../../chaos/workload.js';
import { stepKey, type TransferResult } from '../../src/domain/transfer.js';
import { accountOnShard, createTestLedger, type TestLedger } from '../support/ledger.js';

// The bank test's end-of-run checks must be able to fail: each is shown catching the lie it exists for.
let t: TestLedger;
let a: string;
let b: string;
let plan: Plan;

beforeAll(async () => {
  t = await createTestLedger();
  a = accountOnShard(t.ledger, 0, 'chk-a');
  b = accountOnShard(t.ledger, 1, 'chk-b');
  for (const id of [a, b]) {
    await t.ledger.openAccount({ id, currency: 'USD' });
    await t.ledger.deposit({ key: `seed-${id}`, accountId: id, amount: '1000', currency: 'USD' });
  }
  plan = {
    seed: 0, transfers: [], faults: [], approvalThreshold: 10n ** 9n, totals: { USD: 2000n },
    accounts: [a, b].map((id, shard) => ({ id, currency: 'USD' as const, shard, initial: 1000n, frozen: false, whale: false })),
  };
  // One transfer of 300 from a to b, posted on both sides (what a COMPLETED saga leaves).
  const id = 'chk-1';
  const debit = await t.ledger.reserve({ key: stepKey(id, 'reserve-debit'), transferId: id, accountId: a, side: 'debit', amount: '300', currency: 'USD', ttlMs: 600_000, counterparty: b });
  const credit = await t.ledger.reserve({ key: stepKey(id, 'reserve-credit'), transferId: id, accountId: b, side: 'credit', amount: '300', currency: 'USD', ttlMs: 600_000, counterparty: a });
  await t.ledger.post({ key: stepKey(id, 'post-debit'), holdKey: debit.hold.key, accountId: a, transferId: id });
  await t.ledger.post({ key: stepKey(id, 'post-credit'), holdKey: credit.hold.key, accountId: b, transferId: id });
});
afterAll(() => t?.drop());

function record(id: string, status: TransferResult['status'], amount = '300', extra: Partial<TransferSpec> = {}): TransferRecord {
  const spec: TransferSpec = { index: 0, id, kind: 'normal', from: a, to: b, amount: BigInt(amount), currency: 'USD', delayMs: 0, copies: 1, ...extra };
  const result = { transferId: id, status, from: a, to: b, amount, currency: 'USD', holds: [], postings: [], compensations: [], steps: [] } as TransferResult;
  return { spec, started: true, result };
}

async function violations(records: TransferRecord[], p = plan): Promise<string[]> {
  const f = new Findings(() => undefined);
  checkOutcomes(records, f);
  await checkLedger(p, records, t.ledger, f);
  return f.violations.map((v) => v.check).sort();
}

describe('the bank test checks', () => {
  it('accept a ledger that agrees with the outcomes', async () => {
    expect(await violations([record('chk-1', 'COMPLETED')])).toEqual([]);
  });

  it('catch an outcome the ledger contradicts', async () => {
    // Temporal says nothing moved, the ledger says 300 did.
    expect(await violations([record('chk-1', 'FAILED')])).toEqual(['balance_matches_outcomes', 'balance_matches_outcomes', 'not_completed_nets_to_zero']);
    // Temporal says 301 moved.
    expect(await violations([record('chk-1', 'COMPLETED', '301', { amount: 301n })])).toContain('completed_matches_ledger');
  });

  it('catch money from nowhere, a transfer nobody started and a completed refusal', async () => {
    expect(await violations([record('chk-1', 'COMPLETED')], { ...plan, totals: { USD: 1999n } })).toEqual(['external_matches_deposits', 'total_conserved']);
    expect(await violations([])).toContain('unknown_transfer_in_journal');
    expect(await violations([record('chk-1', 'COMPLETED', '300', { kind: 'frozen-account' })])).toEqual(['refusal_completed']);
  });

  it('catch a hold left pending and a transfer that never ended', async () => {
    const id = 'chk-2';
    await t.ledger.reserve({ key: stepKey(id, 'reserve-debit'), transferId: id, accountId: a, side: 'debit', amount: '5', currency: 'USD', ttlMs: 600_000, counterparty: b });
    const stuck: TransferRecord = { spec: { ...record(id, 'FAILED').spec }, started: true };
    expect(await violations([record('chk-1', 'COMPLETED'), stuck])).toEqual(['hold_left_pending', 'nothing_pending', 'transfer_not_terminal']);
  });
});
