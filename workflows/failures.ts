import { ActivityFailure, ApplicationFailure, isCancellation, TimeoutFailure } from '@temporalio/workflow';
import { isRefusalCode } from '../src/domain/codes.js';

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
