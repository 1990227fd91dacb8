import type { Sinks } from '@temporalio/workflow';

/**
 * Lets the workflow report to the worker's metrics and log without an activity (skipped on replay,
 * so each line is written once per event, not once per replay).
 */
export interface TransferSinks extends Sinks {
  transferMetrics: {
    outcome(status: string, reason: string): void;
    /** A compensation was refused: the transfer waits for an operator. */
    attention(step: string, code: string, message: string): void;
    /** An operator answered NEEDS_ATTENTION (retry or resolve). */
    repaired(step: string, action: string, by: string, note: string): void;
    approvalRefused(by: string, reason: string): void;
  };
}
