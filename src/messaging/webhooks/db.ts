import pg from 'pg';
import { migrate } from '../../db/migrate.js';
import { fromRoot } from '../../paths.js';

/** Distinct from the ledger's migration lock: the messages database may share a server with a shard. */
const MESSAGES_MIGRATION_LOCK = 7_233_002;
const MESSAGES_MIGRATIONS = fromRoot('migrations/messages/');

export function migrateMessages(pool: pg.Pool): Promise<string[]> {
  return migrate(pool, { dir: MESSAGES_MIGRATIONS, lock: MESSAGES_MIGRATION_LOCK });
}

/**
 * A pool that survives its connections being cut: pg emits 'error' on an idle client whose backend
 * was terminated, and an unhandled 'error' would end the process. The next query gets a new client.
 */
export function resilientPool(url: string, max: number, onError: (error: Error) => void = () => undefined): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max, keepAlive: true, connectionTimeoutMillis: 10_000 });
  pool.on('error', onError);
  return pool;
}

/**
 * A transaction on a client of its own. A checked-out client whose backend is terminated between
 * two queries emits 'error' outside any query: without a listener that would end the process. The
 * next query then fails, the transaction is abandoned, and the client is discarded, not pooled.
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  const ignore = () => undefined;
  client.on('error', ignore);
  let failed: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    failed = error as Error;
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.off('error', ignore);
    client.release(failed);
  }
}
