import type pg from 'pg';
import { insertDeliveries, type LedgerEvent } from './fanout.js';

export interface ReplayRange {
  eventId?: string;
  since?: Date;
  until?: Date;
  endpointId?: string;
}

/** At most this many events per shard per call: a replay is an operator's action, not a bulk export. */
const REPLAY_LIMIT = 50_000;

/**
 * Re-sends events read again from the shards (so deliveries already pruned come back too): each
 * (event, matching enabled endpoint) becomes due now with a fresh schedule. The webhook-id is the
 * event id, so a receiver that already applied an event ignores the replay.
 */
export async function replayEvents(messages: pg.Pool, shards: pg.Pool[], range: ReplayRange): Promise<{ events: number; deliveries: number }> {
  if (!range.eventId && !range.since && !range.until) throw new Error('give an event id or a time range');
  let events = 0;
  let deliveries = 0;
  for (const [shard, pool] of shards.entries()) {
    const { rows } = await pool.query<LedgerEvent>(
      `SELECT id::text, seq::text, txid::text, aggregatetype, aggregateid, type, payload, created_at AS "createdAt" FROM ledger_events
       WHERE ($1::text IS NULL OR id::text = $1::text) AND ($2::timestamptz IS NULL OR created_at >= $2::timestamptz)
         AND ($3::timestamptz IS NULL OR created_at < $3::timestamptz)
       ORDER BY ledger_events.seq LIMIT $4::int`,
      [range.eventId ?? null, range.since ?? null, range.until ?? null, REPLAY_LIMIT],
    );
    events += rows.length;
    if (rows.length > 0) deliveries += await insertDeliveries(messages, shard, rows, 'reset', range.endpointId);
  }
  return { events, deliveries };
}
