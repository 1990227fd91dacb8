import type { AccountKind, AccountStatus } from '../domain/accounts.js';

/** Amounts leave the ledger as digit strings of minor units: JSON- and Temporal-payload-safe, exact. */
export type MinorUnits = string;

export interface AccountView {
  id: string;
  kind: AccountKind;
  shard: number;
  currency: string;
  status: AccountStatus;
  posted: MinorUnits;
  pendingDebits: MinorUnits;
  pendingCredits: MinorUnits;
  overdraftLimit: MinorUnits;
  /** posted − pending debits + overdraft limit */
  available: MinorUnits;
}

export type HoldSide = 'debit' | 'credit';
export type HoldState = 'pending' | 'posted' | 'voided' | 'expired';

export interface HoldView {
  key: string;
  transferId: string;
  accountId: string;
  shard: number;
  side: HoldSide;
  amount: MinorUnits;
  currency: string;
  state: HoldState;
  expiresAt: string;
  createdAt: string;
  resolvedAt: string | null;
  resolvedBy: string | null;
}

export interface PostingView {
  entryId: string;
  transferId: string | null;
  holdKey: string | null;
  accountId: string;
  shard: number;
  amount: MinorUnits;
  currency: string;
  kind: 'deposit' | 'withdrawal' | 'transfer_debit' | 'transfer_credit' | 'refund';
  createdAt: string;
}

/** What every idempotent operation returns; `replayed` is true when the key had already been applied. */
export interface OperationResult {
  key: string;
  operation: string;
  replayed: boolean;
}

export interface HoldResult extends OperationResult {
  hold: HoldView;
}

export interface EntryResult extends OperationResult {
  postings: PostingView[];
  hold?: HoldView;
  /** A refund whose account had been closed: it landed in the shard's suspense account. */
  suspense?: boolean;
}

export type VoidOutcome = 'voided' | 'null_compensation' | 'nothing_reserved' | 'already_voided' | 'already_expired';

export interface VoidResult extends OperationResult {
  outcome: VoidOutcome;
  hold?: HoldView;
}

export interface SweepResult {
  shard: number;
  expired: HoldView[];
}
