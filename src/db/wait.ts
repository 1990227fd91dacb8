import { isTransientDbError } from './transaction.js';

export interface WaitOptions {
  /** Told before each wait, so an operator sees why the process has not started yet. */
  onRetry?: (attempt: number, delayMs: number, error: Error) => void;
  /** Stops waiting (Ctrl-C): the last error is thrown. */
  signal?: AbortSignal;
  initialDelayMs?: number;
  maxDelayMs?: number;
}

/**
 * Runs `attempt` until it succeeds, waiting with capped exponential back-off (and jitter, so many
 * workers restarting together do not hammer a recovering server in lockstep) while it fails with a
 * transient database fault. A server that is restarting or still replaying its WAL is a reason to
 * wait, however long; a wrong password or a missing database is not, and fails at once.
 */
export async function untilAvailable<T>(attempt: () => Promise<T>, options: WaitOptions = {}): Promise<T> {
  const initial = options.initialDelayMs ?? 250;
  const max = options.maxDelayMs ?? 10_000;
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      if (!isTransientDbError(error) || options.signal?.aborted) throw error;
      const delay = Math.round(Math.min(max, initial * 2 ** (n - 1)) * (0.75 + Math.random() * 0.5));
      options.onRetry?.(n, delay, error as Error);
      await sleep(delay, options.signal);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
