import { createHash } from 'node:crypto';
import type pg from 'pg';
import { Refusal, isRefusalCode } from '../domain/codes.js';
import { RefusalError } from '../domain/errors.js';

/**
 * The idempotency barrier. A key is claimed by a unique-key INSERT in the same transaction as the
 * effect, never by check-then-act: a concurrent duplicate blocks on the unique index until the first
 * transaction ends, then sees its committed record and replays it.
 */

/**
 * Key namespaces: `transfer` holds the saga's step keys, hold keys and tombstones; `movement` the
 * keys callers choose for deposits and withdrawals; `suspense` the operator's payouts. A key in one
 * can never claim or replay a key in another.
 */
export type KeyScope = 'transfer' | 'movement' | 'suspense';

export interface StoredRecord {
  scope: KeyScope;
  key: string;
  operation: string;
  fingerprint: string;
  state: 'done' | 'refused' | 'cancelled';
  outcome: Record<string, unknown>;
}

/** Canonical JSON (sorted keys) so the same parameters always give the same fingerprint. */
export function fingerprint(operation: string, params: Record<string, unknown>): string {
  const canonical = JSON.stringify(params, Object.keys(params).sort());
  return createHash('sha256').update(`${operation}\n${canonical}`).digest('hex');
}

export type Claim = { claimed: true } | { claimed: false; record: StoredRecord };

export async function claimKey(
  client: pg.PoolClient,
  scope: KeyScope,
  key: string,
  operation: string,
  print: string,
): Promise<Claim> {
  const inserted = await client.query(
    `INSERT INTO idempotency_keys (scope, key, operation, fingerprint, state, outcome)
     VALUES ($4::text, $1::text, $2::text, $3::text, 'done', '{}'::jsonb)
     ON CONFLICT (scope, key) DO NOTHING RETURNING key`,
    [key, operation, print, scope],
  );
  if (inserted.rowCount === 1) return { claimed: true };
  const { rows } = await client.query<StoredRecord>(
    'SELECT scope, key, operation, fingerprint, state, outcome FROM idempotency_keys WHERE scope = $2::text AND key = $1::text',
    [key, scope],
  );
  const record = rows[0];
  if (!record) throw new Error(`idempotency key ${key} conflicted but cannot be read`);
  return { claimed: false, record };
}

/**
 * Turns an earlier record under the same key into this call's answer: the first outcome again, the
 * first refusal again (a retry never turns a failure into a payment), or an error for a reused key.
 */
export function replay(record: StoredRecord, operation: string, print: string): Record<string, unknown> {
  if (record.state === 'cancelled') {
    throw new RefusalError(
      Refusal.FENCED,
      `key ${record.key} was cancelled by a compensation before this ${operation} arrived; nothing was done`,
      { key: record.key },
    );
  }
  if (record.operation !== operation || record.fingerprint !== print) {
    throw new RefusalError(
      Refusal.IDEMPOTENCY_KEY_REUSED,
      `idempotency key ${record.key} was first used for a different ${record.operation === operation ? 'request' : `operation (${record.operation})`}`,
      { key: record.key },
    );
  }
  if (record.state === 'refused') throw storedRefusal(record.outcome);
  return record.outcome;
}

export async function recordOutcome(
  client: pg.PoolClient,
  scope: KeyScope,
  key: string,
  state: 'done' | 'refused' | 'cancelled',
  outcome: Record<string, unknown>,
): Promise<void> {
  await client.query('UPDATE idempotency_keys SET state = $2::text, outcome = $3::jsonb WHERE scope = $4::text AND key = $1::text', [
    key,
    state,
    JSON.stringify(outcome),
    scope,
  ]);
}

export function refusalOutcome(error: RefusalError): Record<string, unknown> {
  return { code: error.code, message: error.message, details: error.details };
}

function storedRefusal(outcome: Record<string, unknown>): RefusalError {
  const code = outcome['code'];
  return new RefusalError(
    isRefusalCode(code) ? code : Refusal.INVALID_INPUT,
    String(outcome['message'] ?? 'refused'),
    (outcome['details'] as Record<string, string> | undefined) ?? {},
  );
}

/**
 * Runs `effect` behind the barrier inside an open transaction. A refusal thrown by the effect rolls
 * back its writes to a savepoint but keeps the claimed key with the refusal, so the refusal is sticky.
 */
export async function idempotent<T extends Record<string, unknown>>(
  client: pg.PoolClient,
  scope: KeyScope,
  key: string,
  operation: string,
  params: Record<string, unknown>,
  effect: () => Promise<T>,
): Promise<{ outcome: T; replayed: boolean; refusal?: RefusalError }> {
  const print = fingerprint(operation, params);
  const claim = await claimKey(client, scope, key, operation, print);
  if (!claim.claimed) {
    return { outcome: replay(claim.record, operation, print) as T, replayed: true };
  }
  await client.query('SAVEPOINT effect');
  try {
    const outcome = await effect();
    await recordOutcome(client, scope, key, 'done', outcome);
    return { outcome, replayed: false };
  } catch (caught) {
    const error = (caught as { code?: string }).code === '22003'
      ? new RefusalError(Refusal.INVALID_AMOUNT, 'the resulting balance would not fit in 64 bits')
      : caught;
    if (!(error instanceof RefusalError)) throw error;
    if (!keepsWrites.has(error)) await client.query('ROLLBACK TO SAVEPOINT effect');
    await recordOutcome(client, scope, key, 'refused', refusalOutcome(error));
    return { outcome: {} as T, replayed: false, refusal: error };
  }
}

const keepsWrites = new WeakSet<RefusalError>();

/**
 * A refusal whose writes must stay: posting a hold found past its expiry expires (and releases) it in
 * the same transaction that records the refusal.
 */
export function refusalKeepingWrites(error: RefusalError): RefusalError {
  keepsWrites.add(error);
  return error;
}
