import type pg from 'pg';
import { withTransaction } from '../db/transaction.js';
import { REQUESTS_TABLE } from './requests.js';

/**
 * The worked example of an inbound transactional message: a wallet service records an order and
 * requests its payout in ONE local transaction of its own database. Either both rows commit or
 * neither does; the relay then starts the transfer (row id = transfer id), and the row's state,
 * reason and outcome tell the wallet service what became of it.
 */
export async function installWalletSchema(pool: pg.Pool): Promise<void> {
  await pool.query(`CREATE TABLE IF NOT EXISTS wallet_orders (
    id text PRIMARY KEY, customer text NOT NULL, amount bigint NOT NULL CHECK (amount > 0), currency char(3) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())`);
}

export interface WalletOrder {
  id: string;
  customer: string;
  /** Minor units. */
  amount: bigint;
  currency: string;
  /** Ledger accounts the payout moves money between. */
  from: string;
  to: string;
}

/** The wallet service's own change and its transfer request, committed together. Returns the transfer id. */
export async function placeOrder(pool: pg.Pool, order: WalletOrder): Promise<string> {
  const transferId = `wallet-order-${order.id}`;
  await withTransaction(pool, async (tx) => {
    await tx.query('INSERT INTO wallet_orders (id, customer, amount, currency) VALUES ($1, $2, $3, $4)', [order.id, order.customer, order.amount.toString(), order.currency]);
    await tx.query(
      `INSERT INTO ${REQUESTS_TABLE} (id, from_account, to_account, amount, currency, memo) VALUES ($1, $2, $3, $4, $5, $6)`,
      [transferId, order.from, order.to, order.amount.toString(), order.currency, `wallet order ${order.id}`],
    );
  });
  return transferId;
}

/** What the relay wrote back into the wallet service's row. */
export async function requestState(pool: pg.Pool, transferId: string): Promise<{ state: string; reason: string | null; outcome: unknown } | undefined> {
  const { rows } = await pool.query<{ state: string; reason: string | null; outcome: unknown }>(`SELECT state, reason, outcome FROM ${REQUESTS_TABLE} WHERE id = $1`, [transferId]);
  return rows[0];
}
