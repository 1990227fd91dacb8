import type pg from 'pg';
import { TransientError } from '../domain/errors.js';
import { checkSlotMap, formatSlotMap, type SlotRange } from '../domain/slots.js';
import { withTransaction } from '../db/transaction.js';
import type { ShardContext } from './shard-context.js';

/**
 * The cluster's topology: the versioned slot map and the shard registry, in control tables that
 * only shard 0's copy of uses (migrations/005_slot_moves.sql). The map is a routing hint: each shard
 * decides for itself whether it serves a slot (slot_state), so a stale map costs a redirect, never
 * a step applied on the wrong shard.
 */

/** Advisory lock keys (first half of the two-int form). */
export const LOCKS = {
  /** The control row, while it is seeded or changed. */
  control: 7_233_007,
  /** A running move, held by the process running it (session lock, released if it dies). */
  move: 7_233_005,
  /** Held exclusively by the mover around a batch of hand-overs, shared by `verify` while it opens its snapshots. */
  cut: 7_233_006,
  /** Per account id while its slot moves (taken by ledger_route and the mover). */
  account: 7_233_004,
} as const;

/**
 * A step reached a shard that does not (or no longer) serve its account's slot. Nothing was done.
 * Transient: whoever does not follow the redirect retries, and finds the right shard then.
 */
export class MovedError extends TransientError {
  readonly moved = true;
  constructor(readonly slot: number, readonly shard: number, readonly account: string, readonly from: number) {
    super(`account ${account} (slot ${slot}) is served by shard ${shard}, not shard ${from}: MOVED`, 'MOVED');
  }
}

export function isMoved(error: unknown): error is MovedError {
  return error instanceof MovedError;
}

export interface ControlState {
  clusterId: string;
  version: number;
  slotMap: SlotRange[];
  shards: { shard: number; url: string }[];
}

/** The first process to use a cluster writes its map (version 1) and its shards; later ones change nothing. */
export async function seedControl(pool: pg.Pool, seed: readonly SlotRange[], urls: readonly string[]): Promise<void> {
  await withTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1::int, 0)', [LOCKS.control]);
    await client.query(
      `INSERT INTO ledger_control (map_version, slot_map) VALUES (1, $1::text) ON CONFLICT (only_row) DO NOTHING`,
      [formatSlotMap([...seed])],
    );
    for (const [shard, url] of urls.entries()) {
      await client.query('INSERT INTO ledger_shards (shard, url) VALUES ($1::int, $2::text) ON CONFLICT (shard) DO NOTHING', [shard, url]);
    }
  });
}

/** The current map and registry; a map with gaps, overlaps or unknown shards is refused. */
export async function readControl(pool: pg.Pool | pg.PoolClient): Promise<ControlState> {
  const { rows: [control] } = await pool.query<{ cluster_id: string; map_version: string; slot_map: string }>(
    'SELECT cluster_id, map_version, slot_map FROM ledger_control',
  );
  if (!control) throw new Error('the cluster has no slot map yet (shard 0 was never used)');
  const { rows } = await pool.query<{ shard: number; url: string }>('SELECT shard, url FROM ledger_shards ORDER BY shard');
  rows.forEach((r, i) => {
    if (r.shard !== i) throw new Error(`the shard registry misses shard ${i}`);
  });
  const version = Number(control.map_version);
  return { clusterId: control.cluster_id, version, slotMap: checkSlotMap(control.slot_map, rows.length, `the control table (version ${version})`), shards: rows };
}

/**
 * Fills a shard's slot_state from the map, once (an empty table only: after that, only the mover
 * changes it). Slots of other shards are `absent`, with their owner as the redirect.
 */
export async function initSlotState(ctx: ShardContext, map: readonly SlotRange[]): Promise<void> {
  await withTransaction(ctx.pool, async (client) => {
    await client.query('LOCK TABLE slot_state IN EXCLUSIVE MODE');
    await client.query(
      `INSERT INTO slot_state (slot, state, peer)
       SELECT s, CASE WHEN r.shard = $1::int THEN 'owned' ELSE 'absent' END, CASE WHEN r.shard = $1::int THEN NULL ELSE r.shard END
       FROM jsonb_to_recordset($2::jsonb) AS r("from" int, "to" int, shard int), generate_series(r."from", r."to") AS s
       WHERE NOT EXISTS (SELECT 1 FROM slot_state)`,
      [ctx.shard, JSON.stringify(map)],
    );
  });
}
