import type { AccountStatus } from '../domain/accounts.js';
import { Refusal } from '../domain/codes.js';
import { RefusalError } from '../domain/errors.js';
import { currencyExponent } from '../domain/money.js';
import { fingerprint, runStep } from './barrier.js';
import { appendEvent, dbNow, ensureSystemAccounts, lockAccount, routeHere, stepArgs, type ShardContext } from './shard-context.js';
import type { AccountView, EntryResult, PostingView } from './types.js';
import { withTransaction } from '../db/transaction.js';
import { ACCOUNT_COLUMNS, accountView, type AccountRow } from './views.js';

export interface OpenAccount {
  id: string;
  currency: string;
  overdraftLimit?: bigint;
}

/** Idempotent by account id: opening the same account twice returns it; a different currency is refused. */
export async function openAccount(ctx: ShardContext, input: OpenAccount): Promise<{ account: AccountView; created: boolean }> {
  const overdraft = input.overdraftLimit ?? 0n;
  return withTransaction(ctx.pool, async (client) => {
    await routeHere(client, ctx, input.id);
    await ensureSystemAccounts(client, input.currency);
    const { rows } = await client.query<AccountRow>(
      `INSERT INTO accounts (id, kind, currency, currency_exponent, overdraft_limit, created_at, updated_at)
       VALUES ($1::text, 'customer', $2::char(3), $3::smallint, $4::bigint, ${dbNow('$5')}, ${dbNow('$5')})
       ON CONFLICT (id) DO NOTHING RETURNING ${ACCOUNT_COLUMNS}`,
      [input.id, input.currency, currencyExponent(input.currency), overdraft.toString(), ctx.offsetMs()],
    );
    if (rows[0]) {
      await appendEvent(client, { aggregate: 'account', id: input.id, type: 'account.opened', payload: { account: input.id, currency: input.currency, overdraftLimit: overdraft.toString() } });
      return { account: accountView(rows[0], ctx.shard), created: true };
    }
    const existing = await lockAccount(client, input.id);
    if (existing.currency !== input.currency || BigInt(existing.overdraft_limit) !== overdraft) {
      throw new RefusalError(
        Refusal.ACCOUNT_EXISTS,
        `account ${input.id} already exists with currency ${existing.currency} and overdraft ${existing.overdraft_limit}`,
        { account: input.id },
      );
    }
    return { account: accountView(existing, ctx.shard), created: false };
  });
}

export async function getAccount(ctx: ShardContext, id: string): Promise<AccountView | undefined> {
  return withTransaction(ctx.pool, async (client) => {
    await routeHere(client, ctx, id);
    const { rows } = await client.query<AccountRow>(`SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE id = $1::text`, [id]);
    return rows[0] ? accountView(rows[0], ctx.shard) : undefined;
  });
}

export async function listAccounts(ctx: ShardContext, includeSystem = false): Promise<AccountView[]> {
  const { rows } = await ctx.pool.query<AccountRow>(
    `SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE $1::boolean OR kind = 'customer' ORDER BY id`,
    [includeSystem],
  );
  return rows.map((row) => accountView(row, ctx.shard));
}

export interface Movement {
  key: string;
  accountId: string;
  amount: bigint;
  currency: string;
}

/** Money entering from outside: external −amount, account +amount, one balanced entry. */
export async function deposit(ctx: ShardContext, input: Movement): Promise<EntryResult> {
  return externalMovement(ctx, input, 'deposit');
}

/** Money leaving: account −amount, external +amount; the available-balance constraint decides. */
export async function withdraw(ctx: ShardContext, input: Movement): Promise<EntryResult> {
  return externalMovement(ctx, input, 'withdrawal');
}

/** `ledger_move`: one balanced entry against the shard's external account, idempotent on its key. */
async function externalMovement(ctx: ShardContext, input: Movement, kind: 'deposit' | 'withdrawal'): Promise<EntryResult> {
  const print = fingerprint(kind, { account: input.accountId, amount: input.amount.toString(), currency: input.currency });
  const result = await runStep<{ postings: PostingView[] }>(ctx, 'ledger_move', [
    ...stepArgs(ctx, input.key, print),
    { value: kind, type: 'text' },
    { value: input.accountId, type: 'text' },
    { value: input.amount.toString(), type: 'bigint' },
    { value: input.currency, type: 'text' },
  ]);
  return { key: input.key, operation: kind, replayed: result.replayed, postings: result.outcome.postings };
}

/**
 * Freeze, unfreeze or close. Closing needs an empty account with nothing pending: money is never
 * stranded in a closed account.
 */
export async function setStatus(ctx: ShardContext, id: string, status: AccountStatus): Promise<AccountView> {
  return withTransaction(ctx.pool, async (client) => {
    await routeHere(client, ctx, id);
    const account = await lockAccount(client, id);
    if (account.status === 'closed' && status !== 'closed') {
      throw new RefusalError(Refusal.ACCOUNT_CLOSED, `account ${id} is closed for good`, { account: id });
    }
    if (status === 'closed' && (account.posted !== '0' || account.pending_debits !== '0' || account.pending_credits !== '0')) {
      throw new RefusalError(Refusal.ACCOUNT_NOT_EMPTY, `account ${id} still has a balance or pending holds`, { account: id });
    }
    const { rows } = await client.query<AccountRow>(
      `UPDATE accounts SET status = $2::text, updated_at = ${dbNow('$3')} WHERE id = $1::text RETURNING ${ACCOUNT_COLUMNS}`,
      [id, status, ctx.offsetMs()],
    );
    if (account.status !== status) {
      await appendEvent(client, { aggregate: 'account', id, type: 'account.status_changed', payload: { account: id, from: account.status, status } });
    }
    return accountView(rows[0]!, ctx.shard);
  });
}
