import type pg from 'pg';
import { clearingAccountId, suspenseAccountId } from '../domain/accounts.js';
import { Refusal } from '../domain/codes.js';
import { RefusalError } from '../domain/errors.js';
import { withTransaction } from '../db/transaction.js';
import { claimKey, fingerprint, idempotent, recordOutcome, refusalKeepingWrites } from './barrier.js';
import { entryPostings } from './account-ops.js';
import {
  appendEntry,
  assertActive,
  assertCurrencyMatches,
  appendEvent,
  dbNow,
  ensureSystemAccounts,
  holdPayload,
  isAvailabilityViolation,
  lockAccount,
  movePosted,
  readNow,
  type ShardContext,
} from './shard-context.js';
import type { EntryResult, HoldResult, HoldSide, HoldView, PostingView, VoidOutcome, VoidResult } from './types.js';
import { HOLD_COLUMNS, holdView, type HoldRow } from './views.js';

export interface Reserve {
  /** Idempotency key of this reservation; also the hold's key. */
  key: string;
  transferId: string;
  accountId: string;
  side: HoldSide;
  amount: bigint;
  currency: string;
  /** How long the hold may stay pending before the sweeper releases it. */
  ttlMs: number;
  /**
   * The other side of the transfer. Part of the fingerprint so that a second start of a transfer id
   * with a different destination is a reused key, not a replay of someone else's hold.
   */
  counterparty?: string;
}

/**
 * Two-phase reservation. A debit hold raises pending debits (so available falls, checked by the
 * database constraint); a credit hold raises pending credits (nothing is spendable until posted).
 */
export async function reserve(ctx: ShardContext, input: Reserve): Promise<HoldResult> {
  const operation = `reserve-${input.side}`;
  const params = {
    transfer: input.transferId,
    account: input.accountId,
    amount: input.amount.toString(),
    currency: input.currency,
    counterparty: input.counterparty ?? null,
  };
  const result = await withTransaction(ctx.pool, (client) =>
    idempotent(client, 'transfer', input.key, operation, params, async () => {
      const account = await lockAccount(client, input.accountId, ctx);
      const at = account.at;
      assertActive(account);
      assertCurrencyMatches(account, input.currency);
      const column = input.side === 'debit' ? 'pending_debits' : 'pending_credits';
      try {
        await client.query('SAVEPOINT balance');
        await client.query(
          `UPDATE accounts SET ${column} = ${column} + $2::bigint, updated_at = $3::timestamptz WHERE id = $1::text`,
          [input.accountId, input.amount.toString(), at],
        );
      } catch (error) {
        if (!isAvailabilityViolation(error)) throw error;
        await client.query('ROLLBACK TO SAVEPOINT balance');
        throw new RefusalError(
          Refusal.INSUFFICIENT_FUNDS,
          `account ${input.accountId} has insufficient available funds for ${input.amount} minor units`,
          { account: input.accountId, requested: input.amount.toString() },
        );
      }
      const { rows } = await client.query<HoldRow>(
        `INSERT INTO holds (key, transfer_id, account_id, side, amount, currency, expires_at, created_at)
         VALUES ($1::text, $2::text, $3::text, $4::text, $5::bigint, $6::char(3), $7::timestamptz, $8::timestamptz)
         RETURNING ${HOLD_COLUMNS}`,
        [input.key, input.transferId, input.accountId, input.side, input.amount.toString(), input.currency,
          new Date(at.getTime() + input.ttlMs), at],
      );
      await appendEvent(client, { aggregate: 'transfer', id: input.transferId, type: `transfer.${input.side}_reserved`, side: input.side, payload: { ...holdPayload(rows[0]!, input.key, at), expiresAt: rows[0]!.expires_at.toISOString() } });
      return { hold: holdView(rows[0]!, ctx.shard) };
    }),
  );
  if (result.refusal) throw result.refusal;
  return { key: input.key, operation, replayed: result.replayed, hold: result.outcome.hold as HoldView };
}

/**
 * Which hold an operation acts on, and (when known) the account and transfer the caller believes it
 * belongs to: a caller naming the wrong account or transfer must never act on someone else's hold.
 */
export interface HoldRef {
  key: string;
  holdKey: string;
  accountId?: string;
  transferId?: string;
}

type LockedHold = HoldRow & { at: Date };

async function lockHold(client: pg.PoolClient, ctx: ShardContext, input: HoldRef): Promise<LockedHold | undefined> {
  const { rows } = await client.query<LockedHold>(
    `SELECT ${HOLD_COLUMNS}, ${dbNow('$2')} AS at FROM holds WHERE key = $1::text FOR UPDATE`,
    [input.holdKey, ctx.offsetMs()],
  );
  const hold = rows[0];
  if (hold && input.accountId !== undefined && hold.account_id !== input.accountId) {
    throw new RefusalError(Refusal.HOLD_NOT_FOUND, `hold ${input.holdKey} is not on account ${input.accountId}`, { hold: input.holdKey, account: input.accountId });
  }
  if (hold && input.transferId !== undefined && hold.transfer_id !== input.transferId) {
    throw new RefusalError(Refusal.HOLD_NOT_FOUND, `hold ${input.holdKey} does not belong to transfer ${input.transferId}`, { hold: input.holdKey, transfer: input.transferId });
  }
  return hold;
}

async function lockExistingHold(client: pg.PoolClient, ctx: ShardContext, input: HoldRef): Promise<LockedHold> {
  const hold = await lockHold(client, ctx, input);
  if (!hold) throw new RefusalError(Refusal.HOLD_NOT_FOUND, `hold ${input.holdKey} does not exist`, { hold: input.holdKey });
  return hold;
}

/** Compare-and-set on the hold's state: only a pending hold moves, and only once. */
async function resolveHold(client: pg.PoolClient, shard: number, hold: HoldRow, state: 'posted' | 'voided' | 'expired', by: string, at: Date): Promise<HoldView> {
  const { rows } = await client.query<HoldRow>(
    `UPDATE holds SET state = $2::text, resolved_at = $3::timestamptz, resolved_by = $4::text
     WHERE key = $1::text AND state = 'pending' RETURNING ${HOLD_COLUMNS}`,
    [hold.key, state, at, by],
  );
  if (!rows[0]) throw new Error(`hold ${hold.key} was not pending when resolved`);
  const column = hold.side === 'debit' ? 'pending_debits' : 'pending_credits';
  await client.query(`UPDATE accounts SET ${column} = ${column} - $2::bigint, updated_at = $3::timestamptz WHERE id = $1::text`, [
    hold.account_id,
    hold.amount,
    at,
  ]);
  return holdView(rows[0], shard);
}

function refuseResolved(hold: HoldRow, action: string): never {
  const code = { posted: Refusal.HOLD_POSTED, voided: Refusal.HOLD_VOIDED, expired: Refusal.HOLD_EXPIRED, pending: Refusal.INVALID_INPUT }[hold.state];
  throw new RefusalError(code, `cannot ${action} hold ${hold.key}: it is already ${hold.state}`, { hold: hold.key, state: hold.state });
}

/**
 * Posts a pending hold, moving the money through the shard's clearing account: a debit goes
 * account → clearing, a credit clearing → account. Each shard balances alone; clearing nets to zero
 * across shards once both sides are posted.
 */
export async function post(ctx: ShardContext, input: HoldRef): Promise<EntryResult> {
  const result = await withTransaction(ctx.pool, (client) =>
    idempotent(client, 'transfer', input.key, 'post', { hold: input.holdKey }, async () => {
      const hold = await lockExistingHold(client, ctx, input);
      const at = hold.at;
      if (hold.state !== 'pending') refuseResolved(hold, 'post');
      if (hold.expires_at.getTime() <= at.getTime()) {
        // Expired but not yet swept: release it here and keep that, then refuse the post.
        await resolveHold(client, ctx.shard, hold, 'expired', input.key, at);
        await appendEvent(client, { aggregate: 'transfer', id: hold.transfer_id, type: 'transfer.hold_expired', side: hold.side, payload: holdPayload(hold, input.key, at) });
        throw refusalKeepingWrites(
          new RefusalError(Refusal.HOLD_EXPIRED, `hold ${hold.key} expired at ${hold.expires_at.toISOString()}`, { hold: hold.key }),
        );
      }
      await lockAccount(client, hold.account_id);
      const view = await resolveHold(client, ctx.shard, hold, 'posted', input.key, at);
      const amount = BigInt(hold.amount);
      const signed = hold.side === 'debit' ? -amount : amount;
      await movePosted(client, hold.account_id, signed, at);
      await appendEntry(
        client,
        { entryId: input.key, transferId: hold.transfer_id, holdKey: hold.key, currency: hold.currency, kind: `transfer_${hold.side}`, at },
        [
          { accountId: hold.account_id, amount: signed },
          { accountId: clearingAccountId(hold.currency), amount: -signed },
        ],
      );
      await appendEvent(client, { aggregate: 'transfer', id: hold.transfer_id, type: `transfer.${hold.side}_posted`, side: hold.side, payload: holdPayload(hold, input.key, at) });
      return { hold: view, postings: await entryPostings(client, ctx.shard, input.key, hold.key) };
    }),
  );
  if (result.refusal) throw result.refusal;
  return {
    key: input.key,
    operation: 'post',
    replayed: result.replayed,
    hold: result.outcome.hold as HoldView,
    postings: result.outcome.postings as PostingView[],
  };
}

/**
 * Voids a reservation. Safe in every order: with no reservation yet it leaves a tombstone under the
 * reservation's key (null compensation), so a reservation arriving later is fenced and does nothing.
 */
export async function voidHold(ctx: ShardContext, input: HoldRef): Promise<VoidResult> {
  const result = await withTransaction(ctx.pool, (client) =>
    idempotent(client, 'transfer', input.key, 'void', { hold: input.holdKey }, async () => {
      let hold = await lockHold(client, ctx, input);
      if (!hold) {
        // A tombstone fences the reservation of this transfer only: it may not block another's key.
        if (input.transferId !== undefined && !input.holdKey.startsWith(`${input.transferId}:`)) {
          throw new RefusalError(Refusal.HOLD_NOT_FOUND, `hold ${input.holdKey} is not a hold of transfer ${input.transferId}`, { hold: input.holdKey });
        }
        const tombstone = await claimKey(client, 'transfer', input.holdKey, 'tombstone', fingerprint('tombstone', { by: input.key }));
        if (tombstone.claimed) {
          const at = await readNow(client, ctx);
          await recordOutcome(client, 'transfer', input.holdKey, 'cancelled', { cancelledBy: input.key, at: at.toISOString() });
          return { outcome: 'null_compensation' satisfies VoidOutcome };
        }
        // The reservation committed while we waited on its key: it either made a hold or was refused.
        hold = await lockHold(client, ctx, input);
        if (!hold) return { outcome: (tombstone.record.state === 'cancelled' ? 'null_compensation' : 'nothing_reserved') satisfies VoidOutcome };
      }
      if (hold.state === 'posted') refuseResolved(hold, 'void');
      if (hold.state === 'voided') return { outcome: 'already_voided' satisfies VoidOutcome, hold: holdView(hold, ctx.shard) };
      if (hold.state === 'expired') return { outcome: 'already_expired' satisfies VoidOutcome, hold: holdView(hold, ctx.shard) };
      await lockAccount(client, hold.account_id);
      const voided = await resolveHold(client, ctx.shard, hold, 'voided', input.key, hold.at);
      await appendEvent(client, { aggregate: 'transfer', id: hold.transfer_id, type: 'transfer.hold_voided', side: hold.side, payload: holdPayload(hold, input.key, hold.at) });
      return { outcome: 'voided' satisfies VoidOutcome, hold: voided };
    }),
  );
  if (result.refusal) throw result.refusal;
  return {
    key: input.key,
    operation: 'void',
    replayed: result.replayed,
    outcome: result.outcome.outcome as VoidOutcome,
    ...(result.outcome.hold ? { hold: result.outcome.hold as HoldView } : {}),
  };
}

/**
 * The way back from a posted debit: a new balancing entry (clearing → account), never an edit. A
 * refund always lands: on a frozen account it lands as usual (the money is the customer's; freezing
 * stops new spending, not restitution), and when the account was closed after the debit was posted
 * it lands in the shard's suspense account, listed by `verify` until an operator releases it.
 */
export async function refund(ctx: ShardContext, input: HoldRef): Promise<EntryResult> {
  const result = await withTransaction(ctx.pool, (client) =>
    idempotent(client, 'transfer', input.key, 'refund', { hold: input.holdKey }, async () => {
      const hold = await lockExistingHold(client, ctx, input);
      const at = hold.at;
      if (hold.side !== 'debit' || hold.state !== 'posted') {
        throw new RefusalError(Refusal.HOLD_NOT_POSTED, `only a posted debit hold can be refunded (${hold.key} is a ${hold.state} ${hold.side})`, { hold: hold.key });
      }
      const already = await client.query(`SELECT 1 FROM journal WHERE hold_key = $1::text AND kind = 'refund'`, [hold.key]);
      if (already.rowCount) throw new RefusalError(Refusal.ALREADY_REFUNDED, `hold ${hold.key} was already refunded`, { hold: hold.key });
      const account = await lockAccount(client, hold.account_id);
      const amount = BigInt(hold.amount);
      const payee = account.status === 'closed' ? suspenseAccountId(hold.currency) : hold.account_id;
      if (payee === hold.account_id) await movePosted(client, hold.account_id, amount, at);
      else await ensureSystemAccounts(client, hold.currency);
      await appendEntry(
        client,
        { entryId: input.key, transferId: hold.transfer_id, holdKey: hold.key, currency: hold.currency, kind: 'refund', at },
        [
          { accountId: payee, amount },
          { accountId: clearingAccountId(hold.currency), amount: -amount },
        ],
      );
      await appendEvent(client, { aggregate: 'transfer', id: hold.transfer_id, type: 'transfer.debit_refunded', side: 'debit', payload: { ...holdPayload(hold, input.key, at), ...(payee !== hold.account_id ? { suspense: true } : {}) } });
      return { postings: await entryPostings(client, ctx.shard, input.key, hold.key), ...(payee !== hold.account_id ? { suspense: true } : {}) };
    }),
  );
  if (result.refusal) throw result.refusal;
  return {
    key: input.key,
    operation: 'refund',
    replayed: result.replayed,
    postings: result.outcome.postings as PostingView[],
    ...(result.outcome.suspense ? { suspense: true } : {}),
  };
}
