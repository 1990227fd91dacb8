import { DefaultLogger, Runtime, type LogEntry, type LogLevel } from '@temporalio/worker';
import { OUTCOME_FAILURE_PREFIX } from '../domain/transfer.js';
import { endedAlready } from './endings.js';
import type { Logger } from './logger.js';

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

/**
 * The level an SDK log entry is written at. Lines that repeat what our own lines say, or that only
 * matter when debugging, go to debug:
 * - the workflow bundler's webpack build report (one multi-line "asset workflow-bundle-…" entry;
 *   "Workflow bundle created" with its size stays at info);
 * - "Activity failed" for a non-retryable failure (a ledger refusal: the transfer's outcome line
 *   carries the reason and message) and "Workflow failed" for the typed TRANSFER_<STATUS> failure a
 *   transfer that did not complete closes its run with (same outcome line).
 */
export function sdkLogLevel(entry: Pick<LogEntry, 'level' | 'message' | 'meta'>): 'trace' | 'debug' | 'info' | 'warn' | 'error' {
  const level = LEVELS[entry.level];
  if (level === 'error') return level;
  if (/^asset workflow-bundle|webpack [\d.]+ compiled/m.test(entry.message)) return 'debug';
  const error = entry.meta?.['error'] as { nonRetryable?: boolean; type?: string } | undefined;
  if (entry.message === 'Activity failed' && error?.nonRetryable === true) return 'debug';
  if (entry.message === 'Workflow failed' && ((typeof error?.type === 'string' && error.type.startsWith(OUTCOME_FAILURE_PREFIX)) || endedAlready(entry.meta?.['runId']))) return 'debug';
  return level;
}

/**
 * Installs the Temporal runtime once per process, before any connection: SDK and native logs go to
 * our structured logger (workflow/activity log lines keep their transfer ids), and the runtime's own
 * Prometheus metrics are exported on `metricsBind` when given.
 */
export function installRuntime(logger: Logger, metricsBind?: string): void {
  Runtime.install({
    logger: new DefaultLogger('INFO', (entry) => {
      const fields = { ...(entry.meta ?? {}), ...(entry.meta?.['workflowId'] ? { transferId: entry.meta['workflowId'] } : {}) };
      logger[sdkLogLevel(entry)](fields, entry.message);
    }),
    telemetryOptions: {
      logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} },
      ...(metricsBind ? { metrics: { prometheus: { bindAddress: metricsBind } } } : {}),
    },
  });
}
