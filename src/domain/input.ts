import { Refusal, type RefusalCode } from './codes.js';
import { RefusalError } from './errors.js';

/**
 * Checks for text that arrives from outside (CLI arguments, workflow input, ledger calls). Pure: the
 * workflow sandbox imports it. Every message names the field, so a caller knows what to fix.
 */

/** C0 controls, DEL and C1 controls: nothing a person types into one line of text. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** Half of a UTF-16 pair on its own: not Unicode, and UTF-8 encoders replace it with U+FFFD. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** What a UTF-8 decoder puts where the bytes were not UTF-8 (command-line arguments, payloads). */
const REPLACEMENT = '\uFFFD';

const codePoint = (c: string) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** Why `value` is not storable, printable text, or undefined when it is. */
export function textProblem(value: string): string | undefined {
  // PostgreSQL text cannot hold NUL at all; it would fail the statement rather than store it.
  if (value.includes('\u0000')) return 'contains a NUL character';
  const control = CONTROL.exec(value);
  if (control) return `contains the control character ${codePoint(control[0])}`;
  // Stored as U+FFFD, two different strings would become one (an idempotency key collision).
  if (LONE_SURROGATE.test(value)) return 'is not valid Unicode (a lone UTF-16 surrogate)';
  if (value.includes(REPLACEMENT)) return 'is not valid UTF-8 (it holds U+FFFD, the mark of undecodable bytes)';
  return undefined;
}

export function assertText(
  value: unknown,
  field: string,
  options: { max: number; min?: number; code?: RefusalCode },
): asserts value is string {
  const code = options.code ?? Refusal.INVALID_INPUT;
  const min = options.min ?? 1;
  if (typeof value !== 'string') throw new RefusalError(code, `${field} must be a string (got ${describeType(value)})`);
  if (value.length < min || value.length > options.max) {
    throw new RefusalError(code, `${field} must be ${min === 0 ? 'at most' : `${min} to`} ${options.max} characters (got ${value.length})`);
  }
  const problem = textProblem(value);
  if (problem) throw new RefusalError(code, `${field} ${problem}`);
}

/** Idempotency keys: a caller's name for one operation, compared byte for byte by the database. */
export const MAX_KEY_LENGTH = 200;

export function assertIdempotencyKey(key: unknown, field = 'idempotency key'): asserts key is string {
  assertText(key, field, { max: MAX_KEY_LENGTH });
}

export function assertOneOf<T extends string>(value: unknown, allowed: readonly T[], field: string): asserts value is T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new RefusalError(Refusal.INVALID_INPUT, `${field} must be one of ${allowed.join(', ')} (got ${shown(value)})`);
  }
}

/**
 * Input objects are closed: a field we do not know is a typo or a misunderstanding (`amount_minor`,
 * `memo ` with a space), and ignoring it would run something other than what was meant.
 */
export function assertKnownFields(input: Record<string, unknown>, allowed: readonly string[], what: string): void {
  const unknown = Object.keys(input).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw new RefusalError(
      Refusal.INVALID_INPUT,
      `${what} has unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (allowed: ${allowed.join(', ')})`,
    );
  }
}

/** A value as error messages quote it: JSON, cut short (a megabyte of input must not become a megabyte of error). */
export function shown(value: unknown, max = 60): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'bigint') return `${value}`;
  if (typeof value === 'string') return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${shown(value)}`;
}
