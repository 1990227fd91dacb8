import pino from 'pino';

/** Structured JSON logs; LOG_LEVEL picks the level. Every transfer-related line carries transferId. */
export function createLogger(name: string, options: { level?: string; destination?: number | string } = {}): pino.Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  return pino({ name, level, base: { service: name } }, pino.destination({ dest: options.destination ?? 2, sync: false }));
}

export type Logger = pino.Logger;
