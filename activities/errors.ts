import { ApplicationFailure } from '@temporalio/activity';
import { TRANSIENT } from '../src/domain/codes.js';
import { RefusalError, TransientError } from '../src/domain/errors.js';
import { isTransientDbError } from '../src/db/transaction.js';

/**
 * The activity boundary: a ledger refusal becomes a non-retryable ApplicationFailure whose `type` is
 * the refusal code (retry policies and the workflow match on it); a transient fault becomes a
 * retryable one; anything else is rethrown as is and retried by policy.
 */
export function toFailure(error: unknown): unknown {
  if (error instanceof RefusalError) {
    return ApplicationFailure.create({ type: error.code, message: error.message, nonRetryable: true, details: [error.details] });
  }
  if (error instanceof TransientError || isTransientDbError(error)) {
    return ApplicationFailure.create({ type: TRANSIENT, message: (error as Error).message, nonRetryable: false, cause: error as Error });
  }
  return error;
}

export async function asActivity<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw toFailure(error);
  }
}
