import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { migrate } from '../db/migrate.js';
import { inTransaction } from '../messaging/webhooks/db.js';
import { fromRoot } from '../paths.js';

/**
 * The reference receiver: a downstream "fund account" service. It verifies each delivery's
 * signature against the raw body (re-serialised JSON would not match), then applies the event
 * exactly once: the webhook-id goes into processed_webhooks in the same local transaction as the
 * credit, so a redelivery (a retry, a replay, a dispatcher that died before recording) finds it
 * and changes nothing.
 */
const FUND_MIGRATIONS = fromRoot('migrations/fund-account/');
const FUND_MIGRATION_LOCK = 7_233_003;
const MAX_BODY = 1 << 20;

export interface FundAccountReceiver {
  url: string;
  port: number;
  pool: pg.Pool;
  /** Stops listening and cuts open connections at once (as a crash would, minus the process). */
  close(): Promise<void>;
}

export interface FundBalance { account: string; currency: string; balance: string; credits: number }

export function migrateFundAccount(pool: pg.Pool): Promise<string[]> {
  return migrate(pool, { dir: FUND_MIGRATIONS, lock: FUND_MIGRATION_LOCK });
}

export async function fundBalances(pool: pg.Pool): Promise<FundBalance[]> {
  return (await pool.query<FundBalance>('SELECT account, currency, balance::text, credits FROM fund_balances ORDER BY account, currency')).rows;
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        resolve(undefined);
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

interface Envelope { type: string; data: { transferId?: string; account?: string; amount?: string; currency?: string } }

/** Returns whether the event was new. */
async function apply(pool: pg.Pool, webhookId: string, event: Envelope): Promise<boolean> {
  return inTransaction(pool, async (client) => {
    const fresh = await client.query('INSERT INTO processed_webhooks (webhook_id, event_type) VALUES ($1::text, $2::text) ON CONFLICT DO NOTHING', [webhookId, event.type]);
    if (fresh.rowCount === 1 && event.type === 'transfer.credit_posted') {
      const { transferId, account, amount, currency } = event.data;
      if (!transferId || !account || !currency || !amount || !/^[1-9][0-9]*$/.test(amount)) throw new Error('credit_posted without transferId, account, currency or a digit-string amount');
      await client.query('INSERT INTO fund_credits (webhook_id, transfer_id, account, currency, amount) VALUES ($1::text, $2::text, $3::text, $4::text, $5::numeric)', [webhookId, transferId, account, currency, amount]);
      await client.query(
        `INSERT INTO fund_balances (account, currency, balance, credits) VALUES ($1::text, $2::text, $3::numeric, 1)
         ON CONFLICT (account, currency) DO UPDATE SET balance = fund_balances.balance + EXCLUDED.balance, credits = fund_balances.credits + 1, updated_at = now()`,
        [account, currency, amount]);
    }
    return fresh.rowCount === 1;
  });
}

export async function startFundAccountReceiver(options: { databaseUrl: string; secrets: string[]; port?: number; host?: string; log?: (line: string) => void }): Promise<FundAccountReceiver> {
  if (options.secrets.length === 0) throw new Error('the receiver needs at least one whsec_ secret');
  const verifiers = options.secrets.map((s) => new Webhook(s));
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: 10 });
  pool.on('error', () => undefined);
  await migrateFundAccount(pool);
  const sockets = new Set<Socket>();

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST') return void res.writeHead(405).end();
    const raw = await readBody(req);
    if (!raw) return void res.writeHead(413).end();
    const headers = { 'webhook-id': String(req.headers['webhook-id'] ?? ''), 'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''), 'webhook-signature': String(req.headers['webhook-signature'] ?? '') };
    let event: Envelope | undefined;
    // Any configured secret may verify: during a rotation the sender signs with both.
    for (const v of verifiers) {
      try {
        event = v.verify(raw, headers) as Envelope;
        break;
      } catch {
        // try the next secret
      }
    }
    if (!event) return void res.writeHead(401, { 'content-type': 'text/plain' }).end('bad signature or timestamp\n');
    const fresh = await apply(pool, headers['webhook-id'], event);
    res.writeHead(fresh ? 204 : 200).end();
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: Error) => {
      options.log?.(`fund-account receiver: ${error.message}`);
      // The transaction rolled back: a 500 makes the dispatcher retry later.
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
    });
  } catch (error) {
    await pool.end(); // the port was taken (EADDRINUSE): the caller may try another
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}/webhooks`,
    port,
    pool,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pool.end();
    },
  };
}
