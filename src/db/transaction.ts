import pg from 'pg';
import { TransientError } from '../domain/errors.js';

// bigint columns come back as digit strings by default; amounts are parsed with BigInt explicitly at
// the edge, never through Number.

/**
 * SQLSTATEs (and socket errors) that mean "try again": the operation did not take effect, or took
 * effect atomically and its idempotency key will replay it. Everything else is a bug or a refusal.
 */
const RETRYABLE_SQLSTATES: Record<string, string> = {
  '40001': 'serialization failure: a concurrent transaction won; rerun',
  '40P01': 'deadlock detected: PostgreSQL aborted one side; rerun',
  '55P03': 'lock not available (lock_timeout)',
  '57P01': 'admin shutdown: the server is restarting',
  '57P02': 'crash shutdown',
  '57P03': 'cannot connect now: the server is starting up',
  '53300': 'too many connections',
  '08000': 'connection exception',
  '08003': 'connection does not exist',
  '08006': 'connection failure',
  '08001': 'unable to establish connection',
  '08004': 'server rejected the connection',
};

const RETRYABLE_SOCKET_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND']);

export function isTransientDbError(error: unknown): boolean {
  if (error instanceof TransientError) return true;
  const e = error as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (e.code && (e.code in RETRYABLE_SQLSTATES || RETRYABLE_SOCKET_ERRORS.has(e.code))) return true;
  // node-postgres reports a dropped socket without a code.
  return /Connection terminated|connection timeout|Client has encountered a connection error/i.test(e.message ?? '');
}

/** Re-types transient faults so callers (activities) can tell them from bugs without knowing pg. */
export function classifyDbError(error: unknown): unknown {
  if (error instanceof TransientError || !isTransientDbError(error)) return error;
  const e = error as { code?: string; message?: string };
  const reason = (e.code && RETRYABLE_SQLSTATES[e.code]) ?? e.message ?? 'connection lost';
  return new TransientError(`transient database fault: ${reason}`, e.code, { cause: error });
}

/**
 * The one seam for database access: a client from the pool, a transaction around `fn`, and the
 * client released in `finally` whatever happens (a leaked client would starve the pool).
 */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw classifyDbError(error);
  }
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackError) {
      broken = rollbackError as Error; // the connection is unusable; drop it from the pool
    }
    throw classifyDbError(error);
  } finally {
    client.release(broken);
  }
}

export function createPool(connectionString: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, idleTimeoutMillis: 10_000, connectionTimeoutMillis: 5_000 });
  // An idle client losing its server must not crash the process; the next checkout reconnects.
  pool.on('error', () => undefined);
  return pool;
}
