import { readdir, readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { createTransferSinks } from '../../src/worker.js';

/**
 * Replays saved histories against today's workflow code. A change that would make a running
 * transfer take a different path (non-determinism) fails here, in CI, before it reaches a worker.
 */
const dir = new URL('./histories/', import.meta.url);

describe('replay of recorded saga histories', () => {
  it('replays every recorded history without non-determinism', async () => {
    const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
    expect(files.length).toBeGreaterThanOrEqual(10);
    const histories = await Promise.all(
      files.map(async (file) => {
        const history = historyFromJSON(JSON.parse(await readFile(new URL(file, dir), 'utf8')));
        return { workflowId: recordedWorkflowId(history) ?? file, history };
      }),
    );
    const results = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle: { codePath: inject('workflowBundle') }, sinks: createTransferSinks() }, histories)) {
      results.push({ workflowId: result.workflowId, error: result.error ? String(result.error) : undefined });
    }
    expect(results).toEqual(histories.map((h) => ({ workflowId: h.workflowId, error: undefined })));
  });
});

/**
 * The recorded run's workflow id (= transfer id, taken from its input). Replay must use the original
 * id: the workflow checks the transfer id against it, and a mismatch would take the invalid-input path.
 */
function recordedWorkflowId(history: ReturnType<typeof historyFromJSON>): string | undefined {
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
  if (!payload) return undefined;
  const input = JSON.parse(Buffer.from(payload).toString('utf8')) as { transferId?: string };
  return input.transferId;
}
