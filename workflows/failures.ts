import { ActivityFailure, ApplicationFailure, isCancellation, TimeoutFailure } from '@temporalio/workflow';
import { COMPENSATION_BLOCKED, isRefusalCode } from '../src/domain/codes.js';

export interface StepFailure {
  type: string;
  message: string;
  /** A definitive business refusal: the ledger wrote nothing for this step. */
  refusal: boolean;
  cancelled: boolean;
}

/** Reads the failure chain ActivityFailure → ApplicationFailure(type) into what the saga decides on. */
export function describeFailure(error: unknown): StepFailure {
  if (isCancellation(error)) {
    return { type: 'CANCELLED', message: 'cancelled', refusal: false, cancelled: true };
  }
  if (error instanceof ActivityFailure) {
    const cause = error.cause;
    if (cause instanceof ApplicationFailure) {
      const type = cause.type ?? 'ApplicationFailure';
      return { type, message: cause.message, refusal: isRefusalCode(type), cancelled: false };
    }
    if (cause instanceof TimeoutFailure) {
      return { type: `TIMEOUT_${cause.timeoutType}`, message: cause.message, refusal: false, cancelled: false };
    }
    return { type: 'ACTIVITY_FAILED', message: cause?.message ?? error.message, refusal: false, cancelled: false };
  }
  if (error instanceof ApplicationFailure) {
    const type = error.type ?? 'ApplicationFailure';
    return { type, message: error.message, refusal: isRefusalCode(type), cancelled: false };
  }
  throw error; // a bug in the workflow: fail the workflow task, keep the run, fix and redeploy
}

/**
 * What stopped a compensation: the ledger's refusal code carried in a COMPENSATION_BLOCKED failure's
 * details (with the key that posted the hold, for HOLD_POSTED), or, for any other failure that ended the activity, its type. Cancellation cannot reach a
 * compensation (it runs in a non-cancellable scope); anything else is a workflow bug and is rethrown.
 */
export function blockedBy(error: unknown): { code: string; message: string; postedBy?: string } {
  if (error instanceof ActivityFailure && error.cause instanceof ApplicationFailure && error.cause.type === COMPENSATION_BLOCKED) {
    const detail = error.cause.details?.[0] as { code?: unknown; message?: unknown; postedBy?: unknown } | undefined;
    if (typeof detail?.code === 'string') {
      const message = typeof detail.message === 'string' ? detail.message : error.cause.message;
      // The operator deciding on a posted hold needs to know who posted it.
      if (typeof detail.postedBy === 'string') return { code: detail.code, message: `${message} (posted under ${detail.postedBy})`, postedBy: detail.postedBy };
      return { code: detail.code, message };
    }
  }
  const failure = describeFailure(error);
  return { code: failure.type, message: failure.message };
}
