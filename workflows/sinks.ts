import type { Sinks } from '@temporalio/workflow';

/**
 * Lets the workflow report to the worker's metrics and log without an activity (skipped on replay,
 * so each line is written once per event, not once per replay).
 */
export interface TransferSinks extends Sinks {
  transferMetrics: {
    /** How a transfer ended; `detail` (absent from workflows started before it existed) feeds the one log line and the money counter. */
    outcome(status: string, reason: string, detail?: OutcomeDetail): void;
    /** A compensation was refused: the transfer waits for an operator. */
    attention(step: string, code: string, message: string): void;
    /** An operator answered NEEDS_ATTENTION (retry or resolve). */
    repaired(step: string, action: string, by: string, note: string): void;
    approvalRefused(by: string, reason: string): void;
  };
}

export interface OutcomeDetail {
  from: string;
  to: string;
  /** Minor units, as digits. */
  amount: string;
  currency: string;
  /** Why, when the transfer did not complete (the refusal's or failure's message). */
  message?: string;
  /** COMPLETED by replaying postings the ledger already had (a second run of one transfer id): this run moved no money. */
  replayed?: boolean;
}
