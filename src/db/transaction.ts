import pg from 'pg';
import { RefusalError, TransientError } from '../domain/errors.js';
import { DEFAULT_POOL_SETTINGS, type PoolSettings } from './pool-settings.js';

export { DEFAULT_POOL_SETTINGS, type PoolSettings } from './pool-settings.js';

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
  '57014': 'statement cancelled (statement_timeout)',
  '25P03': 'idle-in-transaction timeout: the server ended a stalled transaction',
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
  // node-postgres reports a dropped socket, and a pool that had no free client in time, without a code.
  return /Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect|Client was closed and is not queryable|Connection ended unexpectedly/i.test(e.message ?? '');
}

/** PostgreSQL aborted this transaction to break a deadlock (40P01): it changed nothing. */
export function isDeadlock(error: unknown): boolean {
  const e = error as { code?: string; sqlState?: string } | undefined;
  return e?.sqlState === '40P01' || e?.code === '40P01';
}

/**
 * Runs `fn` (one transaction) again when PostgreSQL aborted it to break a deadlock: the victim
 * changed nothing. Up to `attempts` runs, a few milliseconds apart; any other error is thrown at once.
 */
export async function retryOnDeadlock<T>(fn: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= attempts || !isDeadlock(error)) throw error;
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
    }
  }
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
  return withClient(pool, async (client, broken) => {
    await client.query('BEGIN');
    try {
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      // A client whose connection died cannot roll back (the server already did): drop it.
      await client.query('ROLLBACK').catch((rollbackError: Error) => broken(rollbackError));
      throw error;
    }
  });
}

/**
 * A checked-out client, released in `finally`. While it is out of the pool nobody else listens to
 * it: a connection PostgreSQL drops between two statements (a restart, a killed backend) would emit
 * an 'error' event with no listener, which Node turns into an uncaught exception that ends the
 * worker. We listen for it, fail this call with a retryable fault, and release the client as broken
 * so the pool discards it instead of handing a dead connection to the next caller.
 */
export async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient, broken: (error: Error) => void) => Promise<T>): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw classifyDbError(error);
  }
  let lost: Error | undefined;
  const onError = (error: Error) => (lost ??= error);
  client.on('error', onError);
  try {
    const result = await fn(client, onError);
    if (lost) throw lost;
    return result;
  } catch (error) {
    // The server ended the session (a killed backend answers 57P01 before its socket closes): the
    // client must not go back to the pool, where the next caller would find it dead.
    if (connectionGone(error)) lost ??= error as Error;
    throw classifyDbError(lost && !isTransientDbError(error) && !(error instanceof RefusalError) ? lost : error);
  } finally {
    client.off('error', onError);
    client.release(lost ?? undefined);
  }
}

/** Errors after which a connection is no longer usable. */
function connectionGone(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (e.code && (['57P01', '57P02', '57P03'].includes(e.code) || e.code.startsWith('08') || RETRYABLE_SOCKET_ERRORS.has(e.code))) return true;
  return /Connection terminated|Connection ended unexpectedly|Client has encountered a connection error|Client was closed and is not queryable/i.test(e.message ?? '');
}

export function createPool(connectionString: string, settings: PoolSettings | number = {}): pg.Pool {
  const s = { ...DEFAULT_POOL_SETTINGS, ...(typeof settings === 'number' ? { max: settings } : settings) };
  const pool = new pg.Pool({
    connectionString,
    max: s.max,
    idleTimeoutMillis: 10_000,
    connectionTimeoutMillis: s.acquireTimeoutMs,
    // A peer that vanished without closing the socket (a crashed host, a dropped NAT entry) is
    // noticed by TCP keepalive instead of hanging a step until its activity times out.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    statement_timeout: s.statementTimeoutMs,
    lock_timeout: s.lockTimeoutMs,
    idle_in_transaction_session_timeout: s.idleInTransactionTimeoutMs,
    application_name: 'durable-transfer',
  });
  // An idle client losing its server must not crash the process; the next checkout reconnects.
  pool.on('error', () => undefined);
  return pool;
}
