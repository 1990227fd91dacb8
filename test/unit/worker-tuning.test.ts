import { describe, expect, it } from 'vitest';
import { workerTuningFromEnv } from '../../src/config.js';

describe('worker tuning from the environment', () => {
  it('defaults to 20 activity slots (regular and local) and one workflow thread, the SDK default', () => {
    expect(workerTuningFromEnv({})).toEqual({ maxConcurrentActivityTaskExecutions: 20, maxConcurrentLocalActivityExecutions: 20, workflowThreadPoolSize: 1 });
  });

  it('takes TRANSFER_ACTIVITY_SLOTS for both kinds of activity and TRANSFER_WORKFLOW_THREADS for the threads', () => {
    expect(workerTuningFromEnv({ TRANSFER_ACTIVITY_SLOTS: '8', TRANSFER_WORKFLOW_THREADS: '2' })).toEqual({ maxConcurrentActivityTaskExecutions: 8, maxConcurrentLocalActivityExecutions: 8, workflowThreadPoolSize: 2 });
  });

  it('refuses a thread count that is not a positive integer, naming the variable', () => {
    for (const bad of ['0', '-1', '1.5', 'two']) {
      expect(() => workerTuningFromEnv({ TRANSFER_WORKFLOW_THREADS: bad })).toThrow(/TRANSFER_WORKFLOW_THREADS must be a positive integer/);
    }
  });
});
