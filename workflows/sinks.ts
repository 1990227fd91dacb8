import type { Sinks } from '@temporalio/workflow';

/** Lets the workflow report its outcome to the worker's metrics without an activity (skipped on replay). */
export interface TransferSinks extends Sinks {
  transferMetrics: {
    outcome(status: string, reason: string): void;
  };
}
