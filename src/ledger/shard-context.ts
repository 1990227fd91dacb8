import type pg from 'pg';
import { clearingAccountId, externalAccountId, suspenseAccountId } from '../domain/accounts.js';
import { Refusal } from '../domain/codes.js';
import { RefusalError } from '../domain/errors.js';
import { currencyExponent } from '../domain/money.js';
import type { StepBatcher } from './step-batcher.js';
import { MovedError } from './topology.js';
import { ACCOUNT_COLUMNS, type AccountRow } from './views.js';

/** What every operation on one shard needs: its pool and its number. */
export interface ShardContext {
  shard: number;
  pool: pg.Pool;
  /**
   * Time is the database's (`now()`, the transaction's start), never a worker's: a worker whose
   * clock is skewed can neither expire a hold early nor keep one alive late. Tests move the
   * database's clock forward by this offset (hold expiry) instead of waiting; 0 in production.
   */
  offsetMs: () => number;
  /** Groups concurrent steps into one transaction (absent: every step alone). */
  steps?: StepBatcher;
}

/** The database's time for this transaction, as SQL; `$n` is bound to `ctx.offsetMs()`. */
export function dbNow(param: string): string {
  return `(now() + ${param}::bigint * interval '1 millisecond')`;
}

/** The database's time, when an operation has no row read to carry it. */
export async function readNow(client: pg.PoolClient | pg.Pool, ctx: ShardContext): Promise<Date> {
  const { rows } = await client.query<{ at: Date }>(`SELECT ${dbNow('$1')} AS at`, [ctx.offsetMs()]);
  return rows[0]!.at;
}

/**
 * The leading arguments of every step function (migrations/004_step_functions.sql): the shard (its
 * views name it), the clock offset (the function reads the database's time itself), the step's
 * idempotency key and the fingerprint of its parameters.
 */
export function stepArgs(ctx: ShardContext, key: string, print: string) {
  return [
    { value: ctx.shard, type: 'int' },
    { value: ctx.offsetMs(), type: 'bigint' },
    { value: key, type: 'text' },
    { value: print, type: 'text' },
  ];
}

/** Locks a customer account row for the rest of the transaction, or refuses if it does not exist. */
export async function lockAccount(client: pg.PoolClient, accountId: string): Promise<AccountRow> {
  const { rows } = await client.query<AccountRow>(
    `SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE id = $1::text AND kind = 'customer' FOR UPDATE`,
    [accountId],
  );
  const row = rows[0];
  if (!row) throw new RefusalError(Refusal.ACCOUNT_NOT_FOUND, `account ${accountId} does not exist`, { account: accountId });
  return row;
}

/** The shard's external, clearing and suspense accounts for a currency; created on first use, never updated. */
export async function ensureSystemAccounts(client: pg.PoolClient, currency: string): Promise<void> {
  await client.query(
    `INSERT INTO accounts (id, kind, currency, currency_exponent)
     VALUES ($1::text, 'external', $3::char(3), $4::smallint), ($2::text, 'clearing', $3::char(3), $4::smallint),
            ($5::text, 'suspense', $3::char(3), $4::smallint)
     ON CONFLICT (id) DO NOTHING`,
    [externalAccountId(currency), clearingAccountId(currency), currency, currencyExponent(currency), suspenseAccountId(currency)],
  );
}

/** Event types written with ledger effects (the per-shard outbox, `ledger_events`). */
export type LedgerEventType =
  | 'transfer.debit_reserved' | 'transfer.credit_reserved' | 'transfer.debit_posted' | 'transfer.credit_posted'
  | 'transfer.hold_voided' | 'transfer.hold_expired' | 'transfer.debit_refunded'
  | 'account.opened' | 'account.deposited' | 'account.withdrawn' | 'account.status_changed' | 'suspense.released';

type LedgerEvent = { aggregate: 'transfer' | 'account'; id: string; type: LedgerEventType; side?: 'debit' | 'credit'; payload: Record<string, unknown> };

/**
 * Writes events in the caller's transaction: they commit, or roll back, with the effect they
 * describe (a transactional outbox; the dispatcher delivers them downstream). One statement
 * however many (a sweep expires hundreds of holds at once). The database adds each event's side and
 * its place in its transfer (`ledger_event_payload`, shared with the step functions).
 */
export async function appendEvents(client: pg.PoolClient, events: readonly LedgerEvent[]): Promise<void> {
  if (events.length === 0) return;
  const rows = events.map((event) => ({ aggregatetype: event.aggregate, aggregateid: event.id, type: event.type, side: event.side ?? null, payload: event.payload }));
  await client.query(
    `INSERT INTO ledger_events (aggregatetype, aggregateid, type, payload)
     SELECT e->>'aggregatetype', e->>'aggregateid', e->>'type', ledger_event_payload(e->>'type', e->>'side', e->'payload')
     FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(e, n) ORDER BY n`,
    [JSON.stringify(rows)],
  );
}

export function appendEvent(client: pg.PoolClient, event: LedgerEvent): Promise<void> {
  return appendEvents(client, [event]);
}

/** A hold's event payload: amounts as digit strings, never numbers. */
export function holdPayload(hold: { key: string; transfer_id: string; account_id: string; amount: string; currency: string }, key: string, at: Date): Record<string, unknown> {
  return { transferId: hold.transfer_id, holdKey: hold.key, account: hold.account_id, amount: String(hold.amount), currency: hold.currency, key, at: at.toISOString() };
}

/** A step function's "moved" answer (ledger_route): the slot is served by another shard. */
export interface MovedAnswer { slot: number; shard: number; account: string }

/**
 * Whether this shard serves the account's slot now (ledger_route), in the caller's transaction: an
 * operation that is not a step function (open, status, read) asks first, and holds the same locks a
 * step holds, so a slot move hands the account over before or after it, never during.
 */
export async function routeHere(client: pg.PoolClient, ctx: ShardContext, accountId: string): Promise<void> {
  const { rows } = await client.query<{ answer: { moved?: MovedAnswer } | null }>('SELECT ledger_route($1::text) AS answer', [accountId]);
  const moved = rows[0]?.answer?.moved;
  if (moved) throw new MovedError(moved.slot, moved.shard, moved.account, ctx.shard);
}
