import type { RefusalCode } from './codes.js';

/**
 * A business refusal: deterministic, so retrying cannot help. Carries a stable `code` and, where
 * useful, machine-readable details (account, amounts as digit strings).
 */
export class RefusalError extends Error {
  override readonly name = 'RefusalError';
  constructor(
    readonly code: RefusalCode,
    message: string,
    readonly details: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** A fault that may pass on its own (database restart, deadlock, serialization failure). */
export class TransientError extends Error {
  override readonly name = 'TransientError';
  constructor(
    message: string,
    readonly sqlState?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
