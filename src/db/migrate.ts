import { readdir, readFile } from 'node:fs/promises';
import type pg from 'pg';
import { isTransientDbError, withClient } from './transaction.js';
import { fromRoot } from '../paths.js';

const MIGRATIONS_DIR = fromRoot('migrations/');

/** Arbitrary constant: serialises concurrent migrators (several workers starting at once). */
const MIGRATION_LOCK = 7_233_001;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (file) => ({
      version: Number(file.slice(0, 3)),
      name: file.replace(/\.sql$/, ''),
      sql: await readFile(`${dir}${file}`, 'utf8'),
    })),
  );
}

/** Another set of migrations for another database (messages, the reference receiver): its own lock. */
export interface MigrationSet {
  dir: string;
  lock: number;
}

/**
 * Applies pending migrations, each in its own transaction, idempotently: running it again (or in
 * several processes at once) applies nothing twice. Returns the names applied now. Without `set`,
 * the ledger's migrations.
 */
export async function migrate(pool: pg.Pool, set?: MigrationSet): Promise<string[]> {
  const migrations = await loadMigrations(set?.dir);
  const lock = set?.lock ?? MIGRATION_LOCK;
  const applied: string[] = [];
  await withClient(pool, async (client) => {
    try {
      await client.query('SELECT pg_advisory_lock($1::bigint)', [lock]);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
      const done = new Set(rows.map((r) => r.version));
      for (const migration of migrations) {
        if (done.has(migration.version)) continue;
        await client.query('BEGIN');
        try {
          await client.query(migration.sql);
          await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2::text)', [migration.version, migration.name]);
          await client.query('COMMIT');
          applied.push(migration.name);
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          // A lost connection is worth retrying (the migration rolled back); a failing script is not.
          if (isTransientDbError(error)) throw error;
          throw new Error(`migration ${migration.name} failed: ${(error as Error).message}`, { cause: error });
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1::bigint)', [lock]).catch(() => undefined);
    }
  });
  return applied;
}
