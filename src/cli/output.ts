import { RefusalError } from '../domain/errors.js';
import { formatMoney } from '../domain/money.js';

/** Exit codes: the contract scripts rely on. */
export const EXIT = { OK: 0, NOT_COMPLETED: 1, USAGE: 2, UNREACHABLE: 3 } as const;

export class CliError extends Error {
  constructor(message: string, readonly exitCode: number, readonly code?: string) {
    super(message);
  }
}

export interface GlobalOptions {
  json?: boolean;
  verbose?: boolean;
}

/** One JSON object on stdout with --json; human text otherwise. Diagnostics always go to stderr. */
export function emit(options: GlobalOptions, json: unknown, human: () => string): void {
  if (options.json) process.stdout.write(`${JSON.stringify(json)}\n`);
  else process.stdout.write(`${human()}\n`);
}

export function money(amount: string, currency: string): string {
  try {
    return formatMoney(BigInt(amount), currency);
  } catch {
    return `${amount} ${currency}`;
  }
}

const UNREACHABLE = /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|Connection terminated|connect|UNAVAILABLE|deadline exceeded|transport error/i;

/** Maps any error to (exit code, one clear line). */
export function classify(error: unknown): { exitCode: number; message: string; code?: string } {
  if (error instanceof CliError) return { exitCode: error.exitCode, message: error.message, ...(error.code ? { code: error.code } : {}) };
  if (error instanceof RefusalError) return { exitCode: EXIT.USAGE, message: error.message, code: error.code };
  const e = error as { code?: string; name?: string; message?: string };
  if (e?.name === 'CommanderError') return { exitCode: EXIT.USAGE, message: e.message ?? 'bad usage' };
  if (UNREACHABLE.test(`${e?.code ?? ''} ${e?.name ?? ''} ${e?.message ?? ''}`)) {
    return { exitCode: EXIT.UNREACHABLE, message: `dependency unreachable: ${e?.message ?? e?.code}`, code: 'UNREACHABLE' };
  }
  return { exitCode: EXIT.NOT_COMPLETED, message: e?.message ?? String(error) };
}
