import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from './logger.js';

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

/**
 * Installs the Temporal runtime once per process, before any connection: SDK and native logs go to
 * our structured logger (workflow/activity log lines keep their transfer ids), and the runtime's own
 * Prometheus metrics are exported on `metricsBind` when given.
 */
export function installRuntime(logger: Logger, metricsBind?: string): void {
  Runtime.install({
    logger: new DefaultLogger('INFO', (entry) => {
      const fields = { ...(entry.meta ?? {}), ...(entry.meta?.['workflowId'] ? { transferId: entry.meta['workflowId'] } : {}) };
      logger[LEVELS[entry.level]](fields, entry.message);
    }),
    telemetryOptions: {
      logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} },
      ...(metricsBind ? { metrics: { prometheus: { bindAddress: metricsBind } } } : {}),
    },
  });
}
