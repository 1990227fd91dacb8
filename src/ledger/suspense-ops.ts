import { externalAccountId, suspenseAccountId } from '../domain/accounts.js';
import { Refusal } from '../domain/codes.js';
import { RefusalError } from '../domain/errors.js';
import { withTransaction } from '../db/transaction.js';
import { idempotent } from './barrier.js';
import { entryPostings } from './account-ops.js';
import { appendEntry, appendEvent, assertActive, assertCurrencyMatches, lockAccount, movePosted, readNow, type ShardContext } from './shard-context.js';
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
 * Pays money out of suspense: into an open account on the same shard, or out of the ledger
 * (external) when it was settled another way. Idempotent on its key like every other movement, and
 * never more than suspense holds (checked under the same lock the refunds into it take).
 */
export async function releaseSuspense(ctx: ShardContext, input: SuspenseRelease): Promise<EntryResult> {
  const suspense = suspenseAccountId(input.currency);
  const params = { account: input.accountId ?? null, amount: input.amount.toString(), currency: input.currency };
  const result = await withTransaction(ctx.pool, (client) =>
    idempotent(client, 'suspense', input.key, 'suspense_release', params, async () => {
      const locked = await client.query(`SELECT 1 FROM accounts WHERE id = $1::text FOR UPDATE`, [suspense]);
      const { rows } = await client.query<{ held: string }>(`SELECT coalesce(sum(amount), 0)::text AS held FROM journal WHERE account_id = $1::text`, [suspense]);
      const held = BigInt(rows[0]!.held);
      if (!locked.rowCount || held < input.amount) {
        throw new RefusalError(Refusal.INSUFFICIENT_FUNDS, `suspense ${input.currency} on shard ${ctx.shard} holds ${held} minor units, less than ${input.amount}`, { shard: String(ctx.shard), held: held.toString() });
      }
      let at: Date;
      let payee = externalAccountId(input.currency);
      if (input.accountId) {
        const account = await lockAccount(client, input.accountId, ctx);
        assertActive(account);
        assertCurrencyMatches(account, input.currency);
        at = account.at;
        payee = account.id;
        await movePosted(client, account.id, input.amount, at);
      } else {
        at = await readNow(client, ctx);
      }
      // "/" never appears in a key, so this entry id cannot equal a deposit's or a transfer step's.
      const entryId = `suspense/${input.key}`;
      await appendEntry(client, { entryId, transferId: null, holdKey: null, currency: input.currency, kind: 'suspense_release', at }, [
        { accountId: payee, amount: input.amount },
        { accountId: suspense, amount: -input.amount },
      ]);
      await appendEvent(client, { aggregate: 'account', id: payee, type: 'suspense.released', payload: { account: payee, amount: input.amount.toString(), currency: input.currency, key: input.key, shard: ctx.shard, at: at.toISOString() } });
      return { postings: await entryPostings(client, ctx.shard, entryId, null) };
    }),
  );
  if (result.refusal) throw result.refusal;
  return { key: input.key, operation: 'suspense_release', replayed: result.replayed, postings: result.outcome.postings as PostingView[] };
}
