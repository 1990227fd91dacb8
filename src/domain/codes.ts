/**
 * Stable refusal codes. They cross process boundaries (ledger → activity → workflow → CLI), so they
 * are plain strings and never change meaning. Retry policies name them as constants; never class names.
 */
export const Refusal = {
  INSUFFICIENT_FUNDS: 'INSUFFICIENT_FUNDS',
  ACCOUNT_NOT_FOUND: 'ACCOUNT_NOT_FOUND',
  ACCOUNT_FROZEN: 'ACCOUNT_FROZEN',
  ACCOUNT_CLOSED: 'ACCOUNT_CLOSED',
  ACCOUNT_EXISTS: 'ACCOUNT_EXISTS',
  ACCOUNT_NOT_EMPTY: 'ACCOUNT_NOT_EMPTY',
  CURRENCY_MISMATCH: 'CURRENCY_MISMATCH',
  UNKNOWN_CURRENCY: 'UNKNOWN_CURRENCY',
  INVALID_AMOUNT: 'INVALID_AMOUNT',
  INVALID_ACCOUNT_ID: 'INVALID_ACCOUNT_ID',
  INVALID_INPUT: 'INVALID_INPUT',
  SAME_ACCOUNT: 'SAME_ACCOUNT',
  IDEMPOTENCY_KEY_REUSED: 'IDEMPOTENCY_KEY_REUSED',
  /** A reservation arrived after its compensation (anti-hanging fence). */
  FENCED: 'FENCED',
  HOLD_NOT_FOUND: 'HOLD_NOT_FOUND',
  HOLD_VOIDED: 'HOLD_VOIDED',
  HOLD_EXPIRED: 'HOLD_EXPIRED',
  HOLD_POSTED: 'HOLD_POSTED',
  HOLD_NOT_POSTED: 'HOLD_NOT_POSTED',
  ALREADY_REFUNDED: 'ALREADY_REFUNDED',
  /** Transfer-level outcomes decided by the workflow rather than the ledger. */
  CANCELLED: 'CANCELLED',
  APPROVAL_TIMEOUT: 'APPROVAL_TIMEOUT',
} as const;

export type RefusalCode = (typeof Refusal)[keyof typeof Refusal];

export const ALL_REFUSALS: readonly RefusalCode[] = Object.values(Refusal);

/**
 * A compensation the ledger refused (the refusal code is in the failure's details). Not a refusal
 * of the transfer: the workflow surfaces it as NEEDS_ATTENTION and waits for an operator.
 */
export const COMPENSATION_BLOCKED = 'COMPENSATION_BLOCKED';

/** Error type used for faults worth retrying (serialization failure, deadlock, lost connection). */
export const TRANSIENT = 'TRANSIENT';

export function isRefusalCode(value: unknown): value is RefusalCode {
  return typeof value === 'string' && (ALL_REFUSALS as readonly string[]).includes(value);
}
