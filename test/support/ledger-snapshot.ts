import pg from 'pg';

/**
 * Every row of every table of every shard, as PostgreSQL prints it (row_to_json): two snapshots
 * are equal iff nothing was written, balances, holds, journal and idempotency records included.
 */
export interface LedgerSnapshot {
  shards: { shard: number; tables: Record<string, string[]> }[];
}

export async function snapshotLedger(urls: readonly string[]): Promise<LedgerSnapshot> {
  const shards: LedgerSnapshot['shards'] = [];
  for (const [shard, url] of urls.entries()) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      // One snapshot per shard: concurrent writers (there should be none) cannot tear it.
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const { rows: tables } = await client.query<{ name: string }>(
        `SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`,
      );
      const snapshot: Record<string, string[]> = {};
      for (const { name } of tables) {
        const { rows } = await client.query<{ r: string }>(`SELECT row_to_json(t)::text AS r FROM ${client.escapeIdentifier(name)} t ORDER BY 1`);
        snapshot[name] = rows.map((row) => row.r);
      }
      await client.query('COMMIT');
      shards.push({ shard, tables: snapshot });
    } finally {
      await client.end();
    }
  }
  return { shards };
}

export interface TableChange {
  shard: number;
  table: string;
  added: string[];
  removed: string[];
}

/** Rows that appeared or disappeared between two snapshots (a changed row is one of each). */
export function ledgerChanges(before: LedgerSnapshot, after: LedgerSnapshot): TableChange[] {
  const changes: TableChange[] = [];
  for (const shard of after.shards) {
    const old = before.shards.find((s) => s.shard === shard.shard)?.tables ?? {};
    for (const table of new Set([...Object.keys(old), ...Object.keys(shard.tables)])) {
      const was = new Set(old[table] ?? []);
      const now = new Set(shard.tables[table] ?? []);
      const added = [...now].filter((r) => !was.has(r));
      const removed = [...was].filter((r) => !now.has(r));
      if (added.length || removed.length) changes.push({ shard: shard.shard, table, added, removed });
    }
  }
  return changes;
}

/**
 * The ledger's one intended trace of a refusal: a business refusal (frozen, closed or unknown
 * account, another currency) is recorded under its idempotency key so that a retry can never turn
 * it into a payment. Returns the changes that are anything else.
 */
export function unexpectedChanges(changes: TableChange[], refusedKeys: ReadonlySet<string>): TableChange[] {
  return changes
    .map((c) => {
      if (c.table !== 'idempotency_keys' || c.removed.length) return c;
      const added = c.added.filter((row) => {
        const record = JSON.parse(row) as { key: string; state: string };
        return !(record.state === 'refused' && refusedKeys.has(record.key));
      });
      return { ...c, added };
    })
    .filter((c) => c.added.length || c.removed.length);
}
