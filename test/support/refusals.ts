import { RefusalError } from '../../src/domain/errors.js';

/** The refusal code `fn` throws, `undefined` if it returns, or a marker if it throws something else. */
export function refusalCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof RefusalError ? error.code : `not a refusal: ${String(error)}`;
  }
  return undefined;
}

/** The same for a promise: its refusal code, 'succeeded', or a marker for any other error. */
export async function refusalCodeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'succeeded';
  } catch (error) {
    return error instanceof RefusalError ? error.code : `not a refusal: ${(error as Error).message}`;
  }
}
