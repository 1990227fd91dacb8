import { createHash } from 'node:crypto';
import { formatSlotMap, type SlotRange } from '../domain/slots.js';
import { withTransaction } from '../db/transaction.js';
import type { ShardContext } from './shard-context.js';

/**
 * Raised when a shard database is not the shard the process was told it is (LEDGER_SHARD_URLS in
 * another order, a database of another deployment, another slot map). Never retried: routing an
 * account to the wrong database would make its money invisible, or spendable twice.
 */
export class ShardIdentityError extends Error {
  override readonly name = 'ShardIdentityError';
}

export function slotMapHash(slotMap: readonly SlotRange[], shardCount: number): string {
  return createHash('sha256').update(`${shardCount}\n${formatSlotMap([...slotMap])}`).digest('hex').slice(0, 16);
}

/**
 * Claims the shard's identity on first use and checks it on every later one. The first process to
 * use a fresh database writes its shard number and the slot map's hash; everyone after must agree.
 */
export async function checkShardIdentity(ctx: ShardContext, expectedHash: string, describe: string): Promise<void> {
  const found = await withTransaction(ctx.pool, async (client) => {
    await client.query(
      `INSERT INTO shard_identity (shard, slot_map_hash) VALUES ($1::int, $2::text) ON CONFLICT (only_row) DO NOTHING`,
      [ctx.shard, expectedHash],
    );
    const { rows } = await client.query<{ shard: number; slot_map_hash: string }>('SELECT shard, slot_map_hash FROM shard_identity');
    return rows[0]!;
  });
  if (found.shard !== ctx.shard) {
    throw new ShardIdentityError(
      `ledger database ${describe} is shard ${found.shard}, but was given as shard ${ctx.shard}: ` +
        'list LEDGER_SHARD_URLS in shard order (position = shard number)',
    );
  }
  if (found.slot_map_hash !== expectedHash) {
    throw new ShardIdentityError(
      `ledger database ${describe} (shard ${ctx.shard}) was set up for another slot map or shard count ` +
        `(hash ${found.slot_map_hash}, this process has ${expectedHash}): check LEDGER_SLOT_MAP and LEDGER_SHARD_URLS`,
    );
  }
}
