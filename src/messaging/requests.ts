import { readFile } from 'node:fs/promises';
import type { Client } from '@temporalio/client';
import { describeTransfer, startTransfer } from '../client.js';
import { withTransaction } from '../db/transaction.js';
import type pg from 'pg';
import { RefusalError } from '../domain/errors.js';
import { validateTransfer, type TransferRequest } from '../domain/transfer.js';
import { TransferIdReusedError } from '../domain/transfer-reuse.js';
import { fromRoot } from '../paths.js';

/**
 * Requests other services write into `transfer_outbox.transfer_requests` in their own database, in
 * the same transaction as their own change. This module turns one row into a started transfer (or
 * a rejection with a reason) and writes the answer back into the row.
 */

export const REQUESTS_TABLE = 'transfer_outbox.transfer_requests';
export const REQUESTS_CHANNEL = 'transfer_requests';
export const REQUESTS_PUBLICATION = 'transfer_requests';
const INSTALL_SQL = fromRoot('sql/transfer_requests.sql');

/** Creates (or brings up to date) the request table, its trigger and its publication in a producer's database. */
export async function installRequestTable(q: pg.Pool | pg.Client): Promise<void> {
  await q.query(await readFile(INSTALL_SQL, 'utf8'));
}

export interface RequestRow {
  id: string;
  from_account: string | null;
  to_account: string | null;
  amount: string | null;
  currency: string | null;
  memo: string | null;
  attempts?: number;
}

export type Handled =
  | { kind: 'started'; existed: boolean }
  | { kind: 'rejected'; reason: string }
  | { kind: 'retry'; error: string };

export interface RequestHandlerOptions {
  client: Client;
  taskQueue: string;
  /** Replaces the hand-over to Temporal (the messaging benchmark measures the relay alone). */
  handler?: (row: RequestRow) => Promise<Handled>;
  /** Test hook: runs right after a workflow start was accepted, before the row is marked. */
  afterStart?: (id: string) => Promise<void> | void;
  /** Counts starts per id (tests prove no request is started twice by concurrent relays). */
  onStart?: (id: string) => void;
}

/** The row as a transfer request, or why it cannot be one (named field, no guessing). */
export function requestOf(row: RequestRow): { request: TransferRequest & { transferId: string } } | { reason: string } {
  try {
    const input = {
      transferId: row.id,
      from: row.from_account ?? undefined,
      to: row.to_account ?? undefined,
      amount: row.amount ?? undefined,
      currency: row.currency ?? undefined,
      ...(row.memo !== null && row.memo !== undefined && row.memo !== '' ? { memo: row.memo } : {}),
    };
    const t = validateTransfer(input, row.id);
    return { request: { transferId: t.transferId, from: t.from, to: t.to, amount: t.amount.toString(), currency: t.currency, ...(t.memo ? { memo: t.memo } : {}) } };
  } catch (error) {
    if (error instanceof RefusalError) return { reason: `${error.code}: ${error.message}` };
    throw error;
  }
}

/** Hands one request to Temporal. The row's id is the workflow id: starting it again changes nothing. */
export async function handleRequest(row: RequestRow, options: RequestHandlerOptions): Promise<Handled> {
  if (options.handler) return options.handler(row);
  const parsed = requestOf(row);
  if ('reason' in parsed) return { kind: 'rejected', reason: parsed.reason };
  let started: Awaited<ReturnType<typeof startTransfer>>;
  try {
    options.onStart?.(row.id);
    started = await startTransfer(options.client, options.taskQueue, parsed.request);
  } catch (error) {
    const e = error as Error;
    // The id was used before for another transfer: the producer must pick a new id.
    if (e instanceof TransferIdReusedError) return { kind: 'rejected', reason: `TRANSFER_ID_REUSED: ${e.message}` };
    if (e instanceof RefusalError) return { kind: 'rejected', reason: `${e.code}: ${e.message}` };
    return { kind: 'retry', error: e.message ?? String(error) };
  }
  await options.afterStart?.(row.id); // outside the try: a crash here is a crash, not a retry
  return { kind: 'started', existed: !started.started };
}

/** Back-off for a request Temporal could not take: 1 s doubling to 5 min. */
export function retryDelayMs(attempts: number): number {
  return Math.min(300_000, 1_000 * 2 ** Math.min(attempts, 9));
}

/** Writes the relay's answer into the producer's row (idempotent: only a pending row moves). */
export async function markHandled(q: pg.Pool | pg.PoolClient, row: RequestRow, handled: Handled): Promise<void> {
  if (handled.kind === 'started') {
    await q.query(
      `UPDATE ${REQUESTS_TABLE} SET state = 'started', reason = NULL, handled_at = now(), attempts = attempts + 1 WHERE id = $1 AND state = 'pending'`,
      [row.id],
    );
  } else if (handled.kind === 'rejected') {
    await q.query(
      `UPDATE ${REQUESTS_TABLE} SET state = 'rejected', reason = $2, handled_at = now(), attempts = attempts + 1 WHERE id = $1 AND state = 'pending'`,
      [row.id, handled.reason.slice(0, 1000)],
    );
  } else {
    await q.query(
      `UPDATE ${REQUESTS_TABLE} SET reason = $2, attempts = attempts + 1,
         next_attempt_at = now() + $3::bigint * interval '1 millisecond' WHERE id = $1 AND state = 'pending'`,
      [row.id, `retrying: ${handled.error}`.slice(0, 1000), retryDelayMs(row.attempts ?? 0)],
    );
  }
}

/** Marks many handed-over rows in one statement (the log relay marks per flush, not per row). */
export async function markStarted(q: pg.Pool | pg.PoolClient, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await q.query(
    `UPDATE ${REQUESTS_TABLE} SET state = 'started', reason = NULL, handled_at = now(), attempts = attempts + 1 WHERE id = ANY($1::text[]) AND state = 'pending'`,
    [ids],
  );
}

/**
 * Writes each started transfer's outcome back into its row once the transfer has ended, so the
 * producer can read it where it asked: completed, or failed with the reason.
 */
export async function followOutcomes(pool: pg.Pool, client: Client, batch = 100): Promise<number> {
  return withTransaction(pool, async (c) => {
    const { rows } = await c.query<{ id: string }>(
      `SELECT id FROM ${REQUESTS_TABLE} WHERE state = 'started' ORDER BY handled_at LIMIT $1 FOR UPDATE SKIP LOCKED`, [batch]);
    let ended = 0;
    for (const { id } of rows) {
      const view = await describeTransfer(client, id).catch((error: Error) => error);
      if (view instanceof Error || !view.closedAt) continue;
      const state = view.status === 'COMPLETED' ? 'completed' : 'failed';
      await c.query(`UPDATE ${REQUESTS_TABLE} SET state = $2, reason = $3, outcome = $4::jsonb WHERE id = $1`, [
        id, state, view.reason ?? null, JSON.stringify({ status: view.status, ...(view.reason ? { reason: view.reason } : {}), ...(view.message ? { message: view.message } : {}), closedAt: view.closedAt }),
      ]);
      ended += 1;
    }
    return ended;
  });
}
