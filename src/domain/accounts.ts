import { Refusal } from './codes.js';
import { RefusalError } from './errors.js';
import { shown } from './input.js';

/**
 * Customer account ids: letters, digits and `_ . -`, at most 64 characters. A colon is reserved for
 * the ledger's own system accounts (`sys:…`), so a customer can never open or address one.
 */
const ACCOUNT_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function assertAccountId(id: unknown, field = 'account'): asserts id is string {
  if (typeof id !== 'string' || !ACCOUNT_ID.test(id)) {
    throw new RefusalError(
      Refusal.INVALID_ACCOUNT_ID,
      `${field} ${shown(id)} is not a valid account id (letters, digits, "_", ".", "-"; at most 64)`,
    );
  }
}

/** Where money enters from and leaves to the outside world, one per currency per shard. */
export function externalAccountId(currency: string): string {
  return `sys:external:${currency}`;
}

/** In-transit money between a posted debit and its posted credit, one per currency per shard. */
export function clearingAccountId(currency: string): string {
  return `sys:clearing:${currency}`;
}

/**
 * Money owed to a customer that cannot be paid into their account (a refund arriving after the
 * account was closed), one per currency per shard, until an operator releases it.
 */
export function suspenseAccountId(currency: string): string {
  return `sys:suspense:${currency}`;
}

export const ACCOUNT_STATUSES = ['active', 'frozen', 'closed'] as const;
export type AccountStatus = (typeof ACCOUNT_STATUSES)[number];
export type AccountKind = 'customer' | 'external' | 'clearing' | 'suspense';
