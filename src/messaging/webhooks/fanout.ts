import type pg from 'pg';
import { inTransaction } from './db.js';
import { matchesEventType } from './endpoints.js';

/** A row of a shard's ledger_events, as read for delivery. */
export interface LedgerEvent {
  id: string;
  seq: string;
  txid: string;
  aggregatetype: string;
  aggregateid: string;
  type: string;
  payload: Record<string, unknown>;
  createdAt: Date;
}

// The output columns seq and txid are text: ORDER BY must name the table's columns, or it would sort
// the text ('10' before '9') and the cursor would skip events.
const EVENT_COLUMNS = `id::text, seq::text, txid::text, aggregatetype, aggregateid, type, payload, created_at AS "createdAt"`;

/**
 * The next page of committed events after the cursor, in (txid, seq) order, below the snapshot's
 * xmin. Every transaction with a txid under xmin has ended, and none can start there again, so no
 * event can later appear behind the cursor. A seq cursor alone would skip an event whose
 * transaction took its seq first and committed last (the Marten outbox bug).
 */
export async function readEventsAfter(shard: pg.Pool, after: { txid: string; seq: string }, limit: number): Promise<LedgerEvent[]> {
  const { rows } = await shard.query<LedgerEvent>(
    `SELECT ${EVENT_COLUMNS} FROM ledger_events
     WHERE (txid, seq) > ($1::xid8, $2::bigint) AND txid < pg_snapshot_xmin(pg_current_snapshot())
     ORDER BY ledger_events.txid, ledger_events.seq LIMIT $3::int`,
    [after.txid, after.seq, limit],
  );
  return rows;
}

/** What a receiver gets: Standard Webhooks' {type, timestamp, data} envelope. */
export function eventBody(event: LedgerEvent, shard: number): string {
  return JSON.stringify({
    id: event.id,
    type: event.type,
    timestamp: event.createdAt.toISOString(),
    data: { ...event.payload, aggregatetype: event.aggregatetype, aggregateid: event.aggregateid, shard },
  });
}

interface EndpointFilter { id: string; eventTypes: string[] }

/**
 * Delivery rows for each (event, matching enabled endpoint). `ignore` (fan-out) leaves an existing
 * row as it is, so reading an event twice sends it once; `reset` (replay) makes it due again.
 */
export async function insertDeliveries(client: pg.PoolClient | pg.Pool, shard: number, events: LedgerEvent[], mode: 'ignore' | 'reset', onlyEndpoint?: string): Promise<number> {
  const { rows: endpoints } = await client.query<EndpointFilter>(
    `SELECT id::text, event_types AS "eventTypes" FROM webhook_endpoints WHERE enabled AND ($1::text IS NULL OR id::text = $1::text)`,
    [onlyEndpoint ?? null],
  );
  const cols: { event: string[]; endpoint: string[]; type: string[]; at: Date[]; body: string[] } = { event: [], endpoint: [], type: [], at: [], body: [] };
  for (const event of events) {
    const body = eventBody(event, shard);
    for (const endpoint of endpoints) {
      if (!matchesEventType(endpoint.eventTypes, event.type)) continue;
      cols.event.push(event.id);
      cols.endpoint.push(endpoint.id);
      cols.type.push(event.type);
      cols.at.push(event.createdAt);
      cols.body.push(body);
    }
  }
  if (cols.event.length === 0) return 0;
  const conflict = mode === 'ignore'
    ? 'DO NOTHING'
    : `DO UPDATE SET status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now(), delivered_at = NULL`;
  const result = await client.query(
    `INSERT INTO webhook_deliveries (event_id, endpoint_id, shard, event_type, event_created_at, body)
     SELECT e, p::uuid, $6::int, t, a, b FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[]) AS u(e, p, t, a, b)
     ON CONFLICT (event_id, endpoint_id) ${conflict}`,
    [cols.event, cols.endpoint, cols.type, cols.at, cols.body, shard],
  );
  return result.rowCount ?? 0;
}

/**
 * One page of one shard: lock the shard's cursor (another dispatcher holding it skips this shard),
 * read the events after it, write their deliveries and move the cursor, all in one transaction of
 * the messages database: the cursor never passes an event whose deliveries are not durable.
 * Returns how many events were read (0: nothing new).
 */
export async function fanOutPage(messages: pg.Pool, shardPool: pg.Pool, shard: number, pageSize: number): Promise<number> {
  await messages.query('INSERT INTO webhook_cursors (shard) VALUES ($1::int) ON CONFLICT DO NOTHING', [shard]);
  return inTransaction(messages, async (client) => {
    const cursor = await client.query<{ txid: string; seq: string }>(
      'SELECT txid::text, seq::text FROM webhook_cursors WHERE shard = $1::int FOR UPDATE SKIP LOCKED', [shard]);
    if (!cursor.rows[0]) return 0;
    const events = await readEventsAfter(shardPool, cursor.rows[0], pageSize);
    if (events.length > 0) {
      await insertDeliveries(client, shard, events, 'ignore');
      const last = events[events.length - 1]!;
      await client.query('UPDATE webhook_cursors SET txid = $2::xid8, seq = $3::bigint, updated_at = now() WHERE shard = $1::int', [shard, last.txid, last.seq]);
    }
    return events.length;
  });
}
