import { retryOnDeadlock, withTransaction } from '../db/transaction.js';
import { compareLockOrder } from '../domain/slots.js';
import { appendEvents, holdPayload, readNow, type ShardContext } from './shard-context.js';
import type { HoldView, SweepResult } from './types.js';
import { HOLD_COLUMNS, holdView, type HoldRow } from './views.js';

/**
 * Expires pending holds past their expiry and releases what they held, so a transfer whose worker
 * vanished cannot lock funds forever. Safe to run in many processes at once: SKIP LOCKED gives each
 * sweeper different holds, and the state compare-and-set makes a second pass a no-op.
 */
export async function sweepExpired(ctx: ShardContext, batchSize = 500): Promise<SweepResult> {
  // A sweep holds the holds it found while it locks their accounts; a batch of steps holding one of
  // those accounts may wait for one of those holds. PostgreSQL then aborts one side: when it is the
  // sweep, nothing of it committed, and it runs again.
  return retryOnDeadlock(() => sweepOnce(ctx, batchSize));
}

async function sweepOnce(ctx: ShardContext, batchSize: number): Promise<SweepResult> {
  const expired = await withTransaction(ctx.pool, async (client) => {
    // The database's clock decides expiry, whichever worker sweeps.
    const at = await readNow(client, ctx);
    const { rows } = await client.query<HoldRow>(
      `WITH due AS (
         SELECT key FROM holds
         WHERE state = 'pending' AND expires_at <= $1::timestamptz
           -- a copy a slot move has not finished handing over is not this shard's to expire yet
           AND NOT EXISTS (SELECT 1 FROM slot_moved_ids m WHERE m.account_id = holds.account_id AND NOT m.confirmed)
         ORDER BY expires_at LIMIT $2::int
         FOR UPDATE SKIP LOCKED)
       UPDATE holds h SET state = 'expired', resolved_at = $1::timestamptz, resolved_by = 'sweeper'
       FROM due WHERE h.key = due.key AND h.state = 'pending'
       RETURNING ${HOLD_COLUMNS.split(', ').map((c) => `h.${c}`).join(', ')}`,
      [at, batchSize],
    );
    if (rows.length === 0) return [];
    const release = new Map<string, { debits: bigint; credits: bigint }>();
    for (const hold of rows) {
      const sums = release.get(hold.account_id) ?? { debits: 0n, credits: 0n };
      if (hold.side === 'debit') sums.debits += BigInt(hold.amount);
      else sums.credits += BigInt(hold.amount);
      release.set(hold.account_id, sums);
    }
    // Accounts in lock order (slot, then id), as step batches lock them: two sweepers releasing
    // overlapping accounts, or a sweeper and a batch, cannot wait on each other's accounts in a cycle.
    for (const accountId of [...release.keys()].sort(compareLockOrder)) {
      const sums = release.get(accountId)!;
      await client.query(
        `UPDATE accounts SET pending_debits = pending_debits - $2::bigint, pending_credits = pending_credits - $3::bigint,
           updated_at = $4::timestamptz WHERE id = $1::text`,
        [accountId, sums.debits.toString(), sums.credits.toString(), at],
      );
    }
    await appendEvents(client, rows.map((hold) => ({ aggregate: 'transfer' as const, id: hold.transfer_id, type: 'transfer.hold_expired' as const, side: hold.side, payload: holdPayload(hold, 'sweeper', at) })));
    return rows;
  });
  return { shard: ctx.shard, expired: expired.map((row): HoldView => holdView(row, ctx.shard)) };
}
