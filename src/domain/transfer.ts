import { assertAccountId } from './accounts.js';
import { Refusal } from './codes.js';
import { RefusalError } from './errors.js';
import { assertKnownFields, assertText, shown } from './input.js';
import { assertCurrency, parseMinorUnits } from './money.js';

/**
 * The transfer as it travels: JSON in, JSON out. Amounts are integer minor units, a digit string or a
 * safe integer on the wire, never a float. Pure module: the workflow sandbox imports it.
 */
export interface TransferRequest {
  /** Optional when started through Temporal: the workflow id is the transfer id. */
  transferId?: string;
  from: string;
  to: string;
  amount: string | number;
  currency: string;
  memo?: string;
  /** Who asked for the transfer: an approver may never be the requester (four eyes). */
  requestedBy?: string;
}

export interface ValidTransfer {
  transferId: string;
  from: string;
  to: string;
  amount: bigint;
  currency: string;
  memo?: string;
  requestedBy?: string;
}

/** Names of people (requester, approver, operator): free text, bounded, no control characters. */
export const PERSON = /^[^\u0000-\u001f\u007f]{1,100}$/;

export const TRANSFER_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/** The fields a transfer input may have; anything else is refused, naming the field. */
export const TRANSFER_INPUT_FIELDS = ['transferId', 'from', 'to', 'amount', 'currency', 'memo', 'requestedBy'] as const;
export const MAX_MEMO_LENGTH = 500;

export function assertTransferId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !TRANSFER_ID.test(id)) {
    throw new RefusalError(Refusal.INVALID_INPUT, `transfer id ${shown(id)} is invalid (letters, digits, "_.:-", at most 128)`);
  }
}
export const MAX_REASON_LENGTH = 500;

/**
 * The cancel update's argument: nothing (`temporal workflow update execute` may send none) or
 * {reason}. Checked by the update's validator, so a bad request is rejected and cancels nothing.
 */
export function validateCancelRequest(request: unknown): void {
  if (request === undefined || request === null) return;
  if (typeof request !== 'object' || Array.isArray(request)) {
    throw new RefusalError(Refusal.INVALID_INPUT, `cancel request must be a JSON object {reason} (got ${shown(request)})`);
  }
  assertKnownFields(request as Record<string, unknown>, ['reason'], 'cancel request');
  const reason = (request as Record<string, unknown>)['reason'];
  if (reason !== undefined) assertText(reason, 'cancel reason', { max: MAX_REASON_LENGTH });
}

export function validateTransfer(input: unknown, workflowId?: string): ValidTransfer {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new RefusalError(Refusal.INVALID_INPUT, 'transfer input must be a JSON object {from, to, amount, currency}');
  }
  const req = input as Record<string, unknown>;
  assertKnownFields(req, TRANSFER_INPUT_FIELDS, 'transfer input');
  const transferId = req['transferId'] ?? workflowId;
  assertTransferId(transferId);
  if (workflowId !== undefined && transferId !== workflowId) {
    throw new RefusalError(Refusal.INVALID_INPUT, `transferId ${transferId} must equal the workflow id ${workflowId}: one transfer, one workflow`);
  }
  assertAccountId(req['from'], 'from');
  assertAccountId(req['to'], 'to');
  if (req['from'] === req['to']) {
    throw new RefusalError(Refusal.SAME_ACCOUNT, `from and to are the same account (${req['from']})`);
  }
  assertCurrency(req['currency']);
  const amount = parseMinorUnits(req['amount']);
  const memo = req['memo'];
  // Free text, but one printable line: no NUL (PostgreSQL cannot store it), controls or broken Unicode.
  if (memo !== undefined) assertText(memo, 'memo', { min: 0, max: MAX_MEMO_LENGTH });
  const requestedBy = req['requestedBy'];
  if (requestedBy !== undefined) assertText(requestedBy, 'requestedBy', { max: 100 });
  return { transferId, from: req['from'], to: req['to'], amount, currency: req['currency'], ...(memo ? { memo } : {}), ...(requestedBy ? { requestedBy } : {}) };
}

/**
 * Terminal outcomes. FAILED: refused before anything was held. COMPENSATED: something was held or
 * posted and has been released or refunded (expired holds included). CANCELLED: cancelled before the
 * debit was posted. RESOLVED: a compensation was refused and an operator settled it by hand
 * (`resolution` says who and how).
 */
export type TransferOutcome = 'COMPLETED' | 'FAILED' | 'COMPENSATED' | 'CANCELLED' | 'RESOLVED';

/**
 * A transfer that ends other than COMPLETED closes its workflow run as Failed with a non-retryable
 * ApplicationFailure of this type (TRANSFER_FAILED, TRANSFER_COMPENSATED, …) whose first detail is
 * the TransferResult: the Web UI's list and `temporal workflow list` then tell at a glance which
 * transfers did not complete, and the result is still all there. `transferResult` in src/client.ts
 * reads it back.
 */
export const OUTCOME_FAILURE_PREFIX = 'TRANSFER_';
export const outcomeFailureType = (status: Exclude<TransferOutcome, 'COMPLETED'>): string => `${OUTCOME_FAILURE_PREFIX}${status}`;

/**
 * What the TransferStatus search attribute and the status query show. NEEDS_ATTENTION: a compensation
 * was refused; the transfer waits for an operator (`transfer repair`).
 */
export type TransferStatus = 'RUNNING' | 'AWAITING_APPROVAL' | 'COMPENSATING' | 'NEEDS_ATTENTION' | TransferOutcome;

export const TERMINAL_STATUSES: readonly TransferStatus[] = ['COMPLETED', 'FAILED', 'COMPENSATED', 'CANCELLED', 'RESOLVED'];
export const OPEN_STATUSES: readonly TransferStatus[] = ['RUNNING', 'AWAITING_APPROVAL', 'COMPENSATING', 'NEEDS_ATTENTION'];

export type StepName = 'reserve-debit' | 'reserve-credit' | 'post-debit' | 'post-credit';
export type CompensationName = 'void-debit' | 'void-credit' | 'refund-debit';

/** Idempotency key of one step of one transfer: never shared between steps. */
export function stepKey(transferId: string, step: StepName | CompensationName): string {
  return `${transferId}:${step}`;
}

export interface StepRecord {
  step: StepName | CompensationName | 'approval' | 'policy';
  startedAt: string;
  finishedAt?: string;
  outcome: 'ok' | 'refused' | 'failed' | 'cancelled' | 'running' | 'blocked' | 'resolved';
  detail?: string;
  /** The activity attempt that succeeded (1 = first try). */
  attempt?: number;
  /** True when the ledger recognised the key and returned the first outcome. */
  replayed?: boolean;
}

export interface HoldSummary {
  key: string;
  side: 'debit' | 'credit';
  account: string;
  shard: number;
  amount: string;
  state: string;
  expiresAt: string;
}

export interface TransferResult {
  transferId: string;
  status: TransferOutcome;
  reason?: string;
  message?: string;
  from: string;
  to: string;
  amount: string;
  currency: string;
  memo?: string;
  holds: HoldSummary[];
  postings: { step: string; entryId: string; account: string; amount: string }[];
  compensations: { step: CompensationName; outcome: string }[];
  steps: StepRecord[];
  /** How each side ended, in words the ledger would use: posted, voided, expired, refunded, none. */
  sides?: { debit: string; credit: string };
  /** Present when an operator settled a blocked compensation by hand. */
  resolution?: Resolution;
}

/** A refused compensation waiting for an operator. */
export interface Attention {
  step: CompensationName;
  /** The refusal code the ledger answered with. */
  code: string;
  message: string;
  since: string;
}

export interface Resolution {
  step: CompensationName;
  note: string;
  by?: string;
  at: string;
}

/** The operator's answer to NEEDS_ATTENTION: run the compensation again, or record that it was settled by hand. */
export interface RepairRequest {
  action: 'retry' | 'resolve';
  note?: string;
  by?: string;
}

export interface TransferState {
  transferId: string;
  status: TransferStatus;
  step: string;
  holds: HoldSummary[];
  lastError?: { step: string; type: string; message: string };
  /** Set while the transfer is NEEDS_ATTENTION. */
  attention?: Attention;
  attempts: Record<string, number>;
  cancellable: boolean;
  awaitingApproval: boolean;
  result?: TransferResult;
}

export interface TransferPolicy {
  /** Digit string of minor units at or above which an approval signal is needed; null: never. */
  approvalThreshold: string | null;
  approvalTimeoutMs: number;
  holdTtlMs: number;
  /** Who may approve; absent or empty: anyone but the requester. */
  approvers?: string[];
}
