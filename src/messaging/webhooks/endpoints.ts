import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { checkWebhookUrl } from './url-guard.js';

/** Standard Webhooks: 24–64 random bytes, base64, prefixed whsec_. */
export function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

export interface Endpoint {
  id: string;
  url: string;
  description: string;
  eventTypes: string[];
  enabled: boolean;
  disabledReason: string | null;
  /** Whether a previous secret still signs (after a rotation, until it expires). */
  rotating: boolean;
  createdAt: string;
}

/** What the dispatcher needs to sign: kept apart from Endpoint so listings never carry secrets. */
export interface SigningKeys {
  secrets: string[];
}

const EVENT_TYPE = /^(\*|[a-z_]+\.\*|[a-z_]+\.[a-z_]+)$/;

export function checkEventTypes(types: string[]): string[] {
  if (types.length === 0) throw new Error('give at least one event type (or "*")');
  for (const t of types) if (!EVENT_TYPE.test(t)) throw new Error(`event type ${JSON.stringify(t)} is not "*", "aggregate.*" or "aggregate.name"`);
  return types;
}

/** '*' matches everything, 'transfer.*' every transfer event, anything else exactly. */
export function matchesEventType(filters: readonly string[], type: string): boolean {
  return filters.some((f) => f === '*' || f === type || (f.endsWith('.*') && type.startsWith(f.slice(0, -1))));
}

const COLUMNS = `id::text, url, description, event_types AS "eventTypes", enabled, disabled_reason AS "disabledReason",
  (previous_secret IS NOT NULL AND previous_expires_at > now()) AS rotating, created_at AS "createdAt"`;

export async function addEndpoint(pool: pg.Pool, input: { url: string; eventTypes: string[]; description?: string }): Promise<{ endpoint: Endpoint; secret: string }> {
  await checkWebhookUrl(input.url);
  checkEventTypes(input.eventTypes);
  const secret = newSecret();
  const { rows } = await pool.query<Endpoint>(
    `INSERT INTO webhook_endpoints (url, description, event_types, secret) VALUES ($1::text, $2::text, $3::text[], $4::text) RETURNING ${COLUMNS}`,
    [input.url, input.description ?? '', input.eventTypes, secret],
  );
  return { endpoint: rows[0]!, secret };
}

export async function listEndpoints(pool: pg.Pool): Promise<Endpoint[]> {
  return (await pool.query<Endpoint>(`SELECT ${COLUMNS} FROM webhook_endpoints ORDER BY created_at, id`)).rows;
}

function one(rows: Endpoint[], id: string): Endpoint {
  if (!rows[0]) throw new Error(`no webhook endpoint ${id}`);
  return rows[0];
}

export async function setEnabled(pool: pg.Pool, id: string, enabled: boolean, reason?: string): Promise<Endpoint> {
  const { rows } = await pool.query<Endpoint>(
    `UPDATE webhook_endpoints SET enabled = $2::boolean, disabled_reason = CASE WHEN $2::boolean THEN NULL ELSE $3::text END, updated_at = now()
     WHERE id::text = $1::text RETURNING ${COLUMNS}`,
    [id, enabled, reason ?? 'disabled by an operator'],
  );
  return one(rows, id);
}

/** A new secret signs from now on; the old one keeps signing for `graceMs` so receivers can switch. */
export async function rotateSecret(pool: pg.Pool, id: string, graceMs: number): Promise<{ endpoint: Endpoint; secret: string }> {
  const secret = newSecret();
  const { rows } = await pool.query<Endpoint>(
    `UPDATE webhook_endpoints SET previous_secret = secret, previous_expires_at = now() + make_interval(secs => $3::double precision / 1000),
       secret = $2::text, updated_at = now() WHERE id::text = $1::text RETURNING ${COLUMNS}`,
    [id, secret, graceMs],
  );
  return { endpoint: one(rows, id), secret };
}

/** The secrets that sign a delivery now: the current one, and the previous one while it is valid. */
export async function signingKeys(pool: pg.Pool, ids: string[]): Promise<Map<string, SigningKeys>> {
  const { rows } = await pool.query<{ id: string; secret: string; previous: string | null }>(
    `SELECT id::text, secret, CASE WHEN previous_expires_at > now() THEN previous_secret END AS previous
     FROM webhook_endpoints WHERE id::text = ANY($1::text[])`,
    [ids],
  );
  return new Map(rows.map((r) => [r.id, { secrets: r.previous ? [r.secret, r.previous] : [r.secret] }]));
}

/**
 * `up`'s reference receiver: one endpoint per description, re-pointed at the receiver's current
 * port on each start; returns its secrets so the receiver can verify.
 */
export async function ensureEndpoint(pool: pg.Pool, input: { url: string; eventTypes: string[]; description: string }): Promise<{ endpoint: Endpoint; secrets: string[] }> {
  await checkWebhookUrl(input.url);
  const found = await pool.query<{ id: string }>('SELECT id::text FROM webhook_endpoints WHERE description = $1::text ORDER BY created_at LIMIT 1', [input.description]);
  let id = found.rows[0]?.id;
  if (id) await pool.query('UPDATE webhook_endpoints SET url = $2::text, updated_at = now() WHERE id::text = $1::text', [id, input.url]);
  else id = (await addEndpoint(pool, input)).endpoint.id;
  const keys = (await signingKeys(pool, [id])).get(id)!;
  const endpoint = (await pool.query<Endpoint>(`SELECT ${COLUMNS} FROM webhook_endpoints WHERE id::text = $1::text`, [id])).rows[0]!;
  return { endpoint, secrets: keys.secrets };
}
