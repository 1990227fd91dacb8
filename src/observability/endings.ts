/**
 * Workflow runs whose ending the transfer outcome sink already logged (one line with the reason and
 * message). The SDK then logs "Workflow failed" for the typed TRANSFER_<STATUS> failure the run
 * closes with; its error crosses from the workflow thread as a bare Error (type lost), so the runtime
 * logger recognises the repeat by run id instead. Bounded: the oldest runs are forgotten first.
 */
const ended = new Set<string>();
const LIMIT = 10_000;

export function markEnded(runId: string): void {
  ended.add(runId);
  if (ended.size > LIMIT) ended.delete(ended.values().next().value as string);
}

export function endedAlready(runId: unknown): boolean {
  return typeof runId === 'string' && ended.has(runId);
}
