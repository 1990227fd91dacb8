import type pg from 'pg';
import { nextDelayMs, type DispatcherSettings } from './config.js';
import { inTransaction } from './db.js';
import type { SendResult } from './sender.js';

/** A claimed delivery: everything one attempt needs. Secrets stay in memory, never in logs. */
export interface ClaimedDelivery {
  id: string;
  eventId: string;
  endpointId: string;
  url: string;
  attempt: number;
  body: string;
  secrets: string[];
}

/**
 * Claims up to `limit` due deliveries of enabled endpoints. SKIP LOCKED lets several dispatchers
 * claim side by side without waiting on each other; the claim is a lease (next_attempt_at moved past
 * the send's deadline) committed at once, so no transaction stays open during HTTP calls and a
 * dispatcher that dies mid-send leaves the delivery to be retried when its lease runs out.
 */
export async function claimDue(pool: pg.Pool, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
  const { rows } = await pool.query<ClaimedDelivery & { previous: string | null; secret: string }>(
    `WITH due AS (
       SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled
       WHERE d.status = 'pending' AND d.next_attempt_at <= now()
       ORDER BY d.next_attempt_at LIMIT $1::int FOR UPDATE OF d SKIP LOCKED)
     UPDATE webhook_deliveries d
       SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => $2::double precision / 1000), updated_at = now()
     FROM due, webhook_endpoints e
     WHERE d.id = due.id AND e.id = d.endpoint_id
     RETURNING d.id::text, d.event_id::text AS "eventId", d.endpoint_id::text AS "endpointId", e.url, d.attempts AS attempt, d.body,
       e.secret, CASE WHEN e.previous_expires_at > now() THEN e.previous_secret END AS previous`,
    [limit, leaseMs],
  );
  return rows.map(({ secret, previous, ...d }) => ({ ...d, secrets: previous ? [secret, previous] : [secret] }));
}

export type Outcome = 'delivered' | 'retry' | 'dead' | 'gone';

export function outcomeOf(settings: DispatcherSettings, attempt: number, result: SendResult): { outcome: Outcome; delayMs?: number } {
  if (result.ok) return { outcome: 'delivered' };
  if (result.gone) return { outcome: 'gone' };
  const delayMs = nextDelayMs(settings, attempt, result.retryAfterMs);
  return delayMs === undefined ? { outcome: 'dead' } : { outcome: 'retry', delayMs };
}

/**
 * Records a batch of attempts in one transaction. `d.attempts = attempt` fences a dispatcher whose
 * lease ran out while it waited: another one has claimed the delivery since, and its record wins.
 * 410 Gone disables the endpoint (its other deliveries wait, re-sendable once it is enabled again).
 */
export async function recordAttempts(pool: pg.Pool, settings: DispatcherSettings, batch: { delivery: ClaimedDelivery; result: SendResult }[]): Promise<void> {
  if (batch.length === 0) return;
  const cols = { id: [] as string[], attempt: [] as number[], status: [] as string[], http: [] as (number | null)[], error: [] as (string | null)[], latency: [] as number[], delay: [] as number[] };
  const gone = new Set<string>();
  for (const { delivery, result } of batch) {
    const { outcome, delayMs } = outcomeOf(settings, delivery.attempt, result);
    if (outcome === 'gone') gone.add(delivery.endpointId);
    cols.id.push(delivery.id);
    cols.attempt.push(delivery.attempt);
    cols.status.push(outcome === 'retry' ? 'pending' : outcome === 'gone' ? 'dead' : outcome);
    cols.http.push(result.status ?? null);
    cols.error.push(outcome === 'gone' ? 'endpoint answered 410 Gone; disabled' : (result.error ?? null));
    cols.latency.push(result.latencyMs);
    cols.delay.push(delayMs ?? 0);
  }
  await inTransaction(pool, async (client) => {
    await client.query(
      `WITH r AS (SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::int[], $5::text[], $6::int[], $7::bigint[])
                  AS r(id, attempt, status, http_status, error, latency, delay_ms)),
       upd AS (
         UPDATE webhook_deliveries d SET status = r.status, last_status = r.http_status, last_error = r.error, last_latency_ms = r.latency,
           next_attempt_at = CASE WHEN r.status = 'pending' THEN now() + make_interval(secs => r.delay_ms::double precision / 1000) ELSE d.next_attempt_at END,
           delivered_at = CASE WHEN r.status = 'delivered' THEN now() END, updated_at = now()
         FROM r WHERE d.id = r.id AND d.attempts = r.attempt AND d.status = 'pending'
         RETURNING d.id)
       INSERT INTO webhook_attempts (delivery_id, attempt, http_status, error, latency_ms)
       SELECT r.id, r.attempt, r.http_status, r.error, r.latency FROM r JOIN upd ON upd.id = r.id
       ON CONFLICT DO NOTHING`,
      [cols.id, cols.attempt, cols.status, cols.http, cols.error, cols.latency, cols.delay],
    );
    if (gone.size > 0) {
      await client.query(
        `UPDATE webhook_endpoints SET enabled = false, disabled_reason = 'answered 410 Gone at ' || now()::text, updated_at = now()
         WHERE id::text = ANY($1::text[]) AND enabled`, [[...gone]]);
    }
  });
}

/** Retention: delivered rows (and their attempts) older than `retentionMs`, a bounded batch at a time. */
export async function pruneDelivered(pool: pg.Pool, retentionMs: number, batch = 5000): Promise<number> {
  const result = await pool.query(
    `DELETE FROM webhook_deliveries WHERE id IN (
       SELECT id FROM webhook_deliveries WHERE status = 'delivered' AND delivered_at < now() - make_interval(secs => $1::double precision / 1000)
       LIMIT $2::int)`,
    [retentionMs, batch],
  );
  return result.rowCount ?? 0;
}

export interface DeliveryRow {
  id: string;
  eventId: string;
  endpointId: string;
  eventType: string;
  status: string;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  lastLatencyMs: number | null;
  nextAttemptAt: string;
  createdAt: string;
  deliveredAt: string | null;
  history: { attempt: number; at: string; httpStatus: number | null; error: string | null; latencyMs: number }[];
}

export async function listDeliveries(pool: pg.Pool, filter: { endpointId?: string; status?: string; eventId?: string; limit: number }): Promise<DeliveryRow[]> {
  const { rows } = await pool.query<DeliveryRow>(
    `SELECT d.id::text, d.event_id::text AS "eventId", d.endpoint_id::text AS "endpointId", d.event_type AS "eventType", d.status, d.attempts,
       d.last_status AS "lastStatus", d.last_error AS "lastError", d.last_latency_ms AS "lastLatencyMs", d.next_attempt_at AS "nextAttemptAt",
       d.created_at AS "createdAt", d.delivered_at AS "deliveredAt",
       COALESCE((SELECT json_agg(json_build_object('attempt', a.attempt, 'at', a.at, 'httpStatus', a.http_status, 'error', a.error, 'latencyMs', a.latency_ms) ORDER BY a.attempt)
                 FROM webhook_attempts a WHERE a.delivery_id = d.id), '[]') AS history
     FROM webhook_deliveries d
     WHERE ($1::text IS NULL OR d.endpoint_id::text = $1::text) AND ($2::text IS NULL OR d.status = $2::text) AND ($3::text IS NULL OR d.event_id::text = $3::text)
     ORDER BY d.id DESC LIMIT $4::int`,
    [filter.endpointId ?? null, filter.status ?? null, filter.eventId ?? null, filter.limit],
  );
  return rows;
}

/** Dead deliveries due again with a fresh schedule. */
export async function replayDead(pool: pg.Pool, endpointId?: string): Promise<number> {
  const result = await pool.query(
    `UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now()
     WHERE status = 'dead' AND ($1::text IS NULL OR endpoint_id::text = $1::text)`,
    [endpointId ?? null],
  );
  return result.rowCount ?? 0;
}
