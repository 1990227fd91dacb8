import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import pg from 'pg';
import { inject } from 'vitest';
import { migrateMessages, resilientPool } from '../../src/messaging/webhooks/db.js';

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: inject('pgUrl') });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * Shard databases cloned from the migrated ledger template (ledger_events included), an empty
 * messages database migrated here, and a database for the reference receiver; all dropped at the end.
 */
export interface MessagingDbs {
  shardUrls: string[];
  shards: pg.Pool[];
  messagesUrl: string;
  messages: pg.Pool;
  fundUrl: string;
  drop(): Promise<void>;
}

export async function createMessagingDbs(shardCount = 2): Promise<MessagingDbs> {
  const id = randomBytes(4).toString('hex');
  const shardDbs = Array.from({ length: shardCount }, (_, i) => `m_${id}_s${i}`);
  const [messagesDb, fundDb] = [`m_${id}_messages`, `m_${id}_fund`];
  await admin(async (c) => {
    for (const db of shardDbs) {
      for (let attempt = 0; ; attempt++) {
        try {
          await c.query(`CREATE DATABASE ${db} TEMPLATE ${inject('templateDb')}`);
          break;
        } catch (error) {
          // 55006: another file is cloning the template at this instant.
          if ((error as { code?: string }).code !== '55006' || attempt > 50) throw error;
          await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
        }
      }
    }
    await c.query(`CREATE DATABASE ${messagesDb}`);
    await c.query(`CREATE DATABASE ${fundDb}`);
  });
  const shardUrls = shardDbs.map((db) => withDatabase(inject('pgUrl'), db));
  const messagesUrl = withDatabase(inject('pgUrl'), messagesDb);
  const shards = shardUrls.map((u) => resilientPool(u, 5));
  const messages = resilientPool(messagesUrl, 20);
  await migrateMessages(messages);
  return {
    shardUrls,
    shards,
    messagesUrl,
    messages,
    fundUrl: withDatabase(inject('pgUrl'), fundDb),
    async drop() {
      await Promise.allSettled([...shards, messages].map((p) => p.end()));
      await admin(async (c) => {
        for (const db of [...shardDbs, messagesDb, fundDb]) await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      });
    },
  };
}

/** A ledger event as the ledger will write it (plain SQL until the ledger writes them itself). */
export async function insertEvent(db: pg.Pool | pg.PoolClient, input: { type?: string; transferId?: string; account?: string; amount?: string; sequence?: number } = {}): Promise<string> {
  const transferId = input.transferId ?? `t-${randomUUID()}`;
  const type = input.type ?? 'transfer.credit_posted';
  const payload = { transferId, account: input.account ?? 'fund-1', side: 'credit', amount: input.amount ?? '100', currency: 'USD', key: `${transferId}:post-credit`, sequence: input.sequence ?? 4, at: new Date().toISOString() };
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO ledger_events (aggregatetype, aggregateid, type, payload) VALUES ($1::text, $2::text, $3::text, $4::jsonb) RETURNING id::text`,
    [type.split('.')[0] === 'account' ? 'account' : 'transfer', transferId, type, JSON.stringify(payload)],
  );
  return rows[0]!.id;
}

export interface Hit { id: string; timestamp: string; signature: string; body: string; at: number }

/** A receiver on 127.0.0.1 whose answer a test scripts per request; it records what it was sent. */
export interface ScriptedReceiver {
  url: string;
  hits: Hit[];
  close(): Promise<void>;
}

export type Script = (hit: Hit, req: IncomingMessage, res: ServerResponse, n: number) => void;

export async function scriptedReceiver(script: Script, options: { readBody?: boolean } = {}): Promise<ScriptedReceiver> {
  const hits: Hit[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const hit = (body: string): Hit => ({ id: String(req.headers['webhook-id']), timestamp: String(req.headers['webhook-timestamp']), signature: String(req.headers['webhook-signature']), body, at: Date.now() });
    if (options.readBody === false) {
      const h = hit('');
      hits.push(h);
      script(h, req, res, hits.length);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const h = hit(Buffer.concat(chunks).toString('utf8'));
      hits.push(h);
      script(h, req, res, hits.length);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    hits,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Polls `check` until it returns true, failing with `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export async function deliveryStates(messages: pg.Pool): Promise<{ eventId: string; status: string; attempts: number; lastStatus: number | null; lastError: string | null }[]> {
  return (await messages.query<{ eventId: string; status: string; attempts: number; lastStatus: number | null; lastError: string | null }>(
    `SELECT event_id::text AS "eventId", status, attempts, last_status AS "lastStatus", last_error AS "lastError" FROM webhook_deliveries ORDER BY id`)).rows;
}

/** Test speed: the whole schedule in milliseconds, no jitter surprises beyond ±20 %. */
export const FAST = { retryScheduleMs: [30, 60, 90], timeoutMs: 1000, leaseMarginMs: 500, pollMs: 20, concurrency: 4, batchSize: 20 };
