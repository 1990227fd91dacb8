import type { AccountView, HoldView, PostingView } from './types.js';

/** Row → view mappers. bigint columns arrive from node-postgres as digit strings and stay strings. */

export interface AccountRow {
  id: string;
  kind: AccountView['kind'];
  currency: string;
  status: AccountView['status'];
  posted: string;
  pending_debits: string;
  pending_credits: string;
  overdraft_limit: string;
}

export const ACCOUNT_COLUMNS = 'id, kind, currency, status, posted, pending_debits, pending_credits, overdraft_limit';

export function accountView(row: AccountRow, shard: number): AccountView {
  const available = BigInt(row.posted) - BigInt(row.pending_debits) + BigInt(row.overdraft_limit);
  return {
    id: row.id,
    kind: row.kind,
    shard,
    currency: row.currency,
    status: row.status,
    posted: row.posted,
    pendingDebits: row.pending_debits,
    pendingCredits: row.pending_credits,
    overdraftLimit: row.overdraft_limit,
    available: available.toString(),
  };
}

export interface HoldRow {
  key: string;
  transfer_id: string;
  account_id: string;
  side: HoldView['side'];
  amount: string;
  currency: string;
  state: HoldView['state'];
  expires_at: Date;
  created_at: Date;
  resolved_at: Date | null;
  resolved_by: string | null;
}

export const HOLD_COLUMNS =
  'key, transfer_id, account_id, side, amount, currency, state, expires_at, created_at, resolved_at, resolved_by';

export function holdView(row: HoldRow, shard: number): HoldView {
  return {
    key: row.key,
    transferId: row.transfer_id,
    accountId: row.account_id,
    shard,
    side: row.side,
    amount: row.amount,
    currency: row.currency,
    state: row.state,
    expiresAt: row.expires_at.toISOString(),
    createdAt: row.created_at.toISOString(),
    resolvedAt: row.resolved_at ? row.resolved_at.toISOString() : null,
    resolvedBy: row.resolved_by,
  };
}

export interface PostingRow {
  entry_id: string;
  transfer_id: string | null;
  hold_key: string | null;
  account_id: string;
  amount: string;
  currency: string;
  kind: PostingView['kind'];
  created_at: Date;
}

export const POSTING_COLUMNS = 'entry_id, transfer_id, hold_key, account_id, amount, currency, kind, created_at';

export function postingView(row: PostingRow, shard: number): PostingView {
  return {
    entryId: row.entry_id,
    transferId: row.transfer_id,
    holdKey: row.hold_key,
    accountId: row.account_id,
    shard,
    amount: row.amount,
    currency: row.currency,
    kind: row.kind,
    createdAt: row.created_at.toISOString(),
  };
}
