import { fingerprint, runStep } from './barrier.js';
import { stepArgs, type ShardContext } from './shard-context.js';
import type { EntryResult, PostingView } from './types.js';

export interface SuspenseBalance {
  shard: number;
  currency: string;
  /** Minor units held for customers whose accounts were closed (digit string). */
  amount: string;
  entries: number;
}

/** Every non-zero suspense balance on a shard: money the ledger owes someone and an operator must pay out. */
export async function suspenseBalances(ctx: ShardContext): Promise<SuspenseBalance[]> {
  const { rows } = await ctx.pool.query<{ currency: string; amount: string; entries: string }>(
    `SELECT a.currency, sum(j.amount)::text AS amount, count(*) FILTER (WHERE j.kind = 'refund')::text AS entries
     FROM journal j JOIN accounts a ON a.id = j.account_id
     WHERE a.kind = 'suspense' GROUP BY a.currency HAVING sum(j.amount) <> 0 ORDER BY a.currency`,
  );
  return rows.map((r) => ({ shard: ctx.shard, currency: r.currency, amount: r.amount, entries: Number(r.entries) }));
}

export interface SuspenseRelease {
  key: string;
  currency: string;
  amount: bigint;
  /** A customer account on this shard, or undefined to pay out of the ledger (external). */
  accountId?: string;
}

/**
 * Pays money out of suspense (`ledger_release_suspense`): into an open account on the same shard, or
 * out of the ledger (external) when it was settled another way. Idempotent on its key like every
 * other movement, and never more than suspense holds (checked under the same lock the refunds into
 * it take).
 */
export async function releaseSuspense(ctx: ShardContext, input: SuspenseRelease): Promise<EntryResult> {
  const print = fingerprint('suspense_release', { account: input.accountId ?? null, amount: input.amount.toString(), currency: input.currency });
  const result = await runStep<{ postings: PostingView[] }>(ctx, 'ledger_release_suspense', [
    ...stepArgs(ctx, input.key, print),
    { value: input.currency, type: 'text' },
    { value: input.amount.toString(), type: 'bigint' },
    { value: input.accountId ?? null, type: 'text' },
  ]);
  return { key: input.key, operation: 'suspense_release', replayed: result.replayed, postings: result.outcome.postings };
}
