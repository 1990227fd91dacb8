import { expect } from 'vitest';
import { RefusalError } from '../../src/domain/errors.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import type { HoldSide } from '../../src/ledger/types.js';
import { accountOnShard } from '../support/ledger.js';

/** Shared helpers of the semantics-*.test.ts files (not a test file itself). */

/** The refusal code a call was refused with; fails the test if it succeeded or threw anything else. */
export async function refusalOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (error) {
    if (error instanceof RefusalError) return error.code;
    throw error;
  }
  throw new Error('expected a RefusalError, but the call succeeded');
}

/** Synchronous variant for pure functions. */
export function refusalOfSync(call: () => unknown): string {
  try {
    call();
  } catch (error) {
    if (error instanceof RefusalError) return error.code;
    throw error;
  }
  throw new Error('expected a RefusalError, but the call succeeded');
}

/** Row counts of every table on every shard: "wrote nothing" means these do not change. */
export async function rowCounts(ledger: Ledger): Promise<Record<string, number>[]> {
  return Promise.all(
    ledger.shards.map(async (s) => {
      const { rows } = await s.pool.query<Record<string, string>>(`SELECT
        (SELECT count(*) FROM accounts)::text AS accounts,
        (SELECT count(*) FROM holds)::text AS holds,
        (SELECT count(*) FROM journal)::text AS journal,
        (SELECT count(*) FROM idempotency_keys)::text AS keys`);
      return Object.fromEntries(Object.entries(rows[0]!).map(([k, v]) => [k, Number(v)]));
    }),
  );
}

/** The balance columns of one account, as digit strings. */
export async function balances(ledger: Ledger, id: string) {
  const a = await ledger.getAccount(id);
  return { posted: a.posted, pendingDebits: a.pendingDebits, pendingCredits: a.pendingCredits, available: a.available };
}

let counter = 0;
/** A fresh key or id suffix, unique within the test file. */
export function fresh(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** Opens a USD account on `shard` and optionally deposits into it. */
export async function fundedAccount(
  ledger: Ledger,
  shard: number,
  prefix: string,
  deposit = 0,
  options: { overdraftLimit?: number } = {},
): Promise<string> {
  const id = accountOnShard(ledger, shard, fresh(prefix));
  await ledger.openAccount({ id, currency: 'USD', ...options });
  if (deposit > 0) await ledger.deposit({ key: fresh(`dep-${id}`), accountId: id, amount: deposit, currency: 'USD' });
  return id;
}

export function reserveInput(
  accountId: string,
  amount: unknown,
  options: { key?: string; transferId?: string; side?: HoldSide; ttlMs?: number; currency?: string } = {},
) {
  const transferId = options.transferId ?? fresh('tr');
  const side = options.side ?? 'debit';
  return {
    key: options.key ?? `${transferId}:reserve-${side}`,
    transferId,
    accountId,
    side,
    amount,
    currency: options.currency ?? 'USD',
    ttlMs: options.ttlMs ?? 60_000,
  };
}

/** The ledger proves itself consistent. */
export async function expectConsistent(ledger: Ledger): Promise<void> {
  const report = await ledger.verify();
  expect(report.violations).toEqual([]);
  expect(report.ok).toBe(true);
}

/** Raw row of a hold, straight from its shard. */
export async function holdRow(ledger: Ledger, accountId: string, key: string) {
  const { rows } = await ledger.shardFor(accountId).pool.query<{ state: string; resolved_by: string | null }>(
    'SELECT state, resolved_by FROM holds WHERE key = $1',
    [key],
  );
  return rows[0];
}
