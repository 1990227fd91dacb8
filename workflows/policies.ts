import { ActivityCancellationType, type ActivityOptions, type LocalActivityOptions } from '@temporalio/workflow';
import { ALL_REFUSALS } from '../src/domain/codes.js';

/**
 * Retry policies name the refusal codes (ApplicationFailure types), never class names. A refusal is
 * also thrown nonRetryable by the activity; listing the codes here keeps the policy true on its own.
 */
const REFUSALS = [...ALL_REFUSALS];

/** Reservations: a transient fault is retried a bounded number of times, then the saga compensates. */
export const RESERVE_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '10s',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '20s', maximumAttempts: 8, nonRetryableErrorTypes: REFUSALS },
};

/**
 * Posting: retried until it succeeds or is refused. Giving up half-posted is never better than
 * waiting; if the database stays away past the hold's expiry, the post is refused as HOLD_EXPIRED.
 */
export const POST_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '10s',
  // No maximumAttempts: unlimited.
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30s', nonRetryableErrorTypes: REFUSALS },
};

/**
 * Compensations: transient faults are retried without limit (money must never stay held). A ledger
 * refusal arrives as a non-retryable COMPENSATION_BLOCKED (set by the activity, not listed here):
 * retrying a sticky refusal forever helps nobody, so the saga stops and asks an operator instead.
 */
export const COMPENSATION_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '60s' }, // no maximumAttempts: unlimited
};

/**
 * The same ledger steps run as local activities (the fast path): no activity task round trip
 * through the server, so a whole transfer can finish in one or two workflow tasks. The retry
 * policies are the ones above. A retry whose back-off would exceed `localRetryThreshold` waits on a
 * durable server timer instead of holding the workflow task open, so a long ledger outage shows in
 * history as timers and survives a worker crash.
 */
const LOCAL_RETRY_THRESHOLD = '10s';
const local = ({ startToCloseTimeout, retry }: ActivityOptions): LocalActivityOptions => ({ startToCloseTimeout, retry, localRetryThreshold: LOCAL_RETRY_THRESHOLD });
/**
 * A cancelled reservation is abandoned at once (its attempt may still reach the ledger later, where
 * the void that runs first has left a tombstone that fences it): waiting for a ledger call that may
 * hang on a lock is what a cancel is meant to cut short.
 */
export const LOCAL_RESERVE_OPTIONS: LocalActivityOptions = { ...local(RESERVE_OPTIONS), cancellationType: ActivityCancellationType.TRY_CANCEL };
export const LOCAL_POST_OPTIONS = local(POST_OPTIONS);

export const POLICY_OPTIONS = {
  startToCloseTimeout: '5s',
  retry: { initialInterval: '200ms', maximumInterval: '5s' },
} as const;
