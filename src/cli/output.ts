import { assertAccountId } from '../domain/accounts.js';
import { Refusal } from '../domain/codes.js';
import { RefusalError, TransientError } from '../domain/errors.js';
import { shown } from '../domain/input.js';
import { CURRENCY_EXPONENTS, formatMoney } from '../domain/money.js';
import { assertTransferId, PERSON } from '../domain/transfer.js';
import { TransferIdReusedError } from '../domain/transfer-reuse.js';

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

/** Whether a command already printed its answer: an error after that must not print a second object. */
export const printed = { stdout: false };

/** One JSON object on stdout with --json; human text otherwise. Diagnostics always go to stderr. */
export function emit(options: GlobalOptions, json: unknown, human: () => string): void {
  printed.stdout = true;
  if (options.json) process.stdout.write(`${JSON.stringify(json)}\n`);
  else process.stdout.write(`${human()}\n`);
}

/** Minor units as "12.34 USD" for people; the raw digits if the currency is unknown. */
export function money(amount: string, currency: string): string {
  try {
    return formatMoney(BigInt(amount), currency);
  } catch {
    return `${amount} ${currency}`;
  }
}

/* Input checks that run before any connection is opened: bad input exits 2 and touches nothing. */

export function checkAccountId(id: string, field = 'account'): string {
  assertAccountId(id, field);
  return id;
}

export function checkTransferId(id: string): string {
  assertTransferId(id);
  return id;
}

/**
 * A currency code as typed: case-insensitive (`usd` is USD); an unknown one is refused with the
 * nearest codes this ledger accepts.
 */
export function checkCurrency(text: string): string {
  const code = text.trim().toUpperCase();
  if (Object.hasOwn(CURRENCY_EXPONENTS, code)) return code;
  const near = Object.keys(CURRENCY_EXPONENTS).filter((c) => distance(c, code) <= 1).slice(0, 3);
  throw new RefusalError(Refusal.UNKNOWN_CURRENCY, `unknown currency ${shown(text)}${near.length ? ` (did you mean ${near.join(' or ')}?)` : ''}; accepted: ${Object.keys(CURRENCY_EXPONENTS).join(', ')}`);
}

/** Edit distance, for suggestions between short codes. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const here = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = here;
    }
  }
  return row[b.length]!;
}

/** A person's name (approver, operator): optional; bounded, no control characters. */
export function checkPerson(name: string | undefined, field: string): string | undefined {
  if (name === undefined || name === '') return undefined;
  if (!PERSON.test(name)) throw new CliError(`${field} must be a name of 1 to 100 characters without control characters`, EXIT.USAGE, 'INVALID_INPUT');
  return name;
}

/** The shape of a decimal amount, when the currency (and so the exponent) is only known later. */
export function checkDecimalSyntax(text: string): string {
  if (!/^[0-9]+(?:\.[0-9]+)?$/.test(text.trim()) || !/[1-9]/.test(text)) {
    throw new RefusalError(Refusal.INVALID_AMOUNT, `amount ${shown(text)} is not a plain positive decimal number`);
  }
  return text;
}

export function checkPositiveInteger(text: string, name: string, max: number): number {
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new CliError(`${name} must be an integer from 1 to ${max} (got ${shown(text)})`, EXIT.USAGE, 'INVALID_INPUT');
  }
  return n;
}

const UNREACHABLE = /ECONNREFUSED|ECONNRESET|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|EAI_AGAIN|Connection terminated|connection timeout|Failed to connect|UNAVAILABLE|deadline exceeded|transport error/i;

function isUnreachable(error: unknown): boolean {
  for (let e = error as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e instanceof TransientError) return true;
    if (UNREACHABLE.test(`${String(e.code ?? '')} ${String(e.name ?? '')} ${String(e.message ?? '')}`)) return true;
  }
  return false;
}

/** Maps any error to (exit code, one clear line). */
export function classify(error: unknown): { exitCode: number; message: string; code?: string; fields?: readonly string[] } {
  // Bad usage: the id names another transfer. Nothing was started; the fields say what differs.
  if (error instanceof TransferIdReusedError) return { exitCode: EXIT.USAGE, message: oneLine(error.message), code: error.code, fields: error.fields };
  if (error instanceof CliError) return { exitCode: error.exitCode, message: oneLine(error.message), ...(error.code ? { code: error.code } : {}) };
  if (error instanceof RefusalError) return { exitCode: EXIT.USAGE, message: oneLine(error.message), code: error.code };
  const e = error as { code?: string; name?: string; message?: string };
  if (e?.name === 'CommanderError') return { exitCode: EXIT.USAGE, message: oneLine(e.message ?? 'bad usage'), code: 'USAGE' };
  // The shards are misconfigured (wrong order, wrong slot map): an environment problem, nothing was done.
  if (e?.name === 'ShardIdentityError') return { exitCode: EXIT.UNREACHABLE, message: oneLine(e.message ?? 'shard identity mismatch'), code: 'SHARD_IDENTITY' };
  // A slot move or shard registration refused (overlap, a shard down or of another identity): nothing changed.
  if (e?.name === 'SlotMoveRefused') return { exitCode: EXIT.NOT_COMPLETED, message: oneLine(e.message ?? 'refused'), code: 'MOVE_REFUSED' };
  if (e?.name === 'WorkflowNotFoundError') return { exitCode: EXIT.USAGE, message: oneLine(e.message ?? 'transfer not found'), code: 'NOT_FOUND' };
  // A Temporal call refused by the server's configuration (no such namespace, search attributes not
  // defined): an environment problem, with the server's own words instead of "Failed to start Workflow".
  const cause = serverCause(error);
  if (cause && ENVIRONMENT.test(cause)) {
    return { exitCode: EXIT.UNREACHABLE, message: oneLine(`${e?.message ? `${e.message}: ` : ''}${cause} (run \`npx transfer doctor\`)`), code: 'ENVIRONMENT' };
  }
  if (isUnreachable(error)) {
    return { exitCode: EXIT.UNREACHABLE, message: oneLine(`dependency unreachable: ${e?.message ?? e?.code}`), code: 'UNREACHABLE' };
  }
  const message = e?.message ?? String(error);
  return { exitCode: EXIT.NOT_COMPLETED, message: oneLine(cause && !message.includes(cause) ? `${message}: ${cause}` : message) };
}

/** Server answers that mean the environment is not set up for us (not bad input, not a refusal). */
const ENVIRONMENT = /search attribute|namespace .*(not found|does not exist)|not registered|PermissionDenied|permission denied|unauthori[sz]ed/i;

/** The gRPC detail under an SDK error ("Failed to start Workflow" → why the server refused it). */
function serverCause(error: unknown): string | undefined {
  for (let e = (error as { cause?: unknown } | undefined)?.cause as { details?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.details === 'string' && e.details) return e.details;
    if (typeof e.message === 'string' && e.message) return e.message.replace(/^\d+ [A-Z_]+: /, '');
  }
  return undefined;
}

/** Error messages (gRPC details, driver text) can span lines; the CLI promises one. */
function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim();
}
