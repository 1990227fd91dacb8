import type pg from 'pg';
import { clearingAccountId, externalAccountId, suspenseAccountId } from '../domain/accounts.js';
import { Refusal } from '../domain/codes.js';
import { RefusalError } from '../domain/errors.js';
import { currencyExponent } from '../domain/money.js';
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
 * Locks a customer account row for the rest of the transaction, or refuses if it does not exist.
 * The row carries the database's time, so the lock and the clock cost one round trip.
 */
export async function lockAccount(client: pg.PoolClient, accountId: string, ctx?: ShardContext): Promise<AccountRow & { at: Date }> {
  const { rows } = await client.query<AccountRow & { at: Date }>(
    `SELECT ${ACCOUNT_COLUMNS}, ${dbNow('$2')} AS at FROM accounts WHERE id = $1::text AND kind = 'customer' FOR UPDATE`,
    [accountId, ctx?.offsetMs() ?? 0],
  );
  const row = rows[0];
  if (!row) throw new RefusalError(Refusal.ACCOUNT_NOT_FOUND, `account ${accountId} does not exist`, { account: accountId });
  return row;
}

export function assertActive(row: AccountRow): void {
  if (row.status === 'frozen') {
    throw new RefusalError(Refusal.ACCOUNT_FROZEN, `account ${row.id} is frozen`, { account: row.id });
  }
  if (row.status === 'closed') {
    throw new RefusalError(Refusal.ACCOUNT_CLOSED, `account ${row.id} is closed`, { account: row.id });
  }
}

export function assertCurrencyMatches(row: AccountRow, currency: string): void {
  if (row.currency !== currency) {
    throw new RefusalError(
      Refusal.CURRENCY_MISMATCH,
      `account ${row.id} holds ${row.currency}, not ${currency}`,
      { account: row.id, accountCurrency: row.currency, currency },
    );
  }
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

/** SQLSTATE 23514 on the available-balance constraint: the database refused to overdraw. */
export function isAvailabilityViolation(error: unknown): boolean {
  const e = error as { code?: string; constraint?: string };
  return e?.code === '23514' && e.constraint === 'available_not_negative';
}

export interface Leg {
  accountId: string;
  amount: bigint;
}

/** Writes one balanced journal entry; the deferred trigger proves the balance again at commit. */
export async function appendEntry(
  client: pg.PoolClient,
  entry: { entryId: string; transferId: string | null; holdKey: string | null; currency: string; kind: string; at: Date },
  legs: Leg[],
): Promise<void> {
  for (const leg of legs) {
    await client.query(
      `INSERT INTO journal (entry_id, transfer_id, hold_key, account_id, amount, currency, kind, created_at)
       VALUES ($1::text, $2::text, $3::text, $4::text, $5::bigint, $6::char(3), $7::text, $8::timestamptz)`,
      [entry.entryId, entry.transferId, entry.holdKey, leg.accountId, leg.amount.toString(), entry.currency, entry.kind, entry.at],
    );
  }
}

/** Applies a posted-balance change to a customer account (system accounts derive theirs from the journal). */
export async function movePosted(client: pg.PoolClient, accountId: string, delta: bigint, at: Date): Promise<void> {
  await client.query(
    `UPDATE accounts SET posted = posted + $2::bigint, updated_at = $3::timestamptz WHERE id = $1::text`,
    [accountId, delta.toString(), at],
  );
}

/** Event types written with ledger effects (the per-shard outbox, `ledger_events`). */
export type LedgerEventType =
  | 'transfer.debit_reserved' | 'transfer.credit_reserved' | 'transfer.debit_posted' | 'transfer.credit_posted'
  | 'transfer.hold_voided' | 'transfer.hold_expired' | 'transfer.debit_refunded'
  | 'account.opened' | 'account.deposited' | 'account.withdrawn' | 'account.status_changed' | 'suspense.released';

/**
 * The order of a transfer's events, the same on every shard, so a receiver can order what it got
 * out of order: reserve debit, reserve credit, post debit, post credit, release credit, release
 * debit, refund.
 */
export function transferSequence(type: LedgerEventType, side?: 'debit' | 'credit'): number | undefined {
  switch (type) {
    case 'transfer.debit_reserved': return 1;
    case 'transfer.credit_reserved': return 2;
    case 'transfer.debit_posted': return 3;
    case 'transfer.credit_posted': return 4;
    case 'transfer.hold_voided':
    case 'transfer.hold_expired': return side === 'credit' ? 5 : 6;
    case 'transfer.debit_refunded': return 7;
    default: return undefined;
  }
}

type LedgerEvent = { aggregate: 'transfer' | 'account'; id: string; type: LedgerEventType; side?: 'debit' | 'credit'; payload: Record<string, unknown> };

/**
 * Writes events in the caller's transaction: they commit, or roll back, with the effect they
 * describe (a transactional outbox; the dispatcher delivers them downstream). One statement
 * however many (a sweep expires hundreds of holds at once).
 */
export async function appendEvents(client: pg.PoolClient, events: readonly LedgerEvent[]): Promise<void> {
  if (events.length === 0) return;
  const rows = events.map((event) => {
    const sequence = transferSequence(event.type, event.side);
    return {
      aggregatetype: event.aggregate, aggregateid: event.id, type: event.type,
      payload: { ...event.payload, ...(event.side ? { side: event.side } : {}), ...(sequence !== undefined ? { sequence } : {}) },
    };
  });
  await client.query(
    `INSERT INTO ledger_events (aggregatetype, aggregateid, type, payload)
     SELECT e->>'aggregatetype', e->>'aggregateid', e->>'type', e->'payload' FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(e, n) ORDER BY n`,
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
