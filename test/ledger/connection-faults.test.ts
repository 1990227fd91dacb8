import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransientError } from '../../src/domain/errors.js';
import { createPool, withTransaction } from '../../src/db/transaction.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { fresh, fundedAccount, reserveInput } from './semantics-support.js';

/**
 * Hole 0 of the reliability issue: a connection PostgreSQL drops while a client is checked out of the
 * pool (a restart, a killed backend) must surface as a retryable fault of that one call, never as an
 * uncaught 'error' event that takes the whole worker process down.
 */
let t: TestLedger;
let admin: pg.Client;
beforeAll(async () => {
  t = await createTestLedger();
  admin = new pg.Client({ connectionString: t.urls[0] });
  await admin.connect();
});
afterAll(async () => {
  await admin?.end();
  await t?.drop();
});

const uncaught: unknown[] = [];
const onUncaught = (error: unknown) => uncaught.push(error);

async function terminate(pid: number): Promise<void> {
  await admin.query('SELECT pg_terminate_backend($1::int)', [pid]);
  await new Promise((r) => setTimeout(r, 150)); // let the socket close reach the client
}

describe('a backend killed under a checked-out client', () => {
  it('between two statements of a transaction: the call fails with TransientError and nothing escapes', async () => {
    process.on('uncaughtException', onUncaught);
    try {
      const pool = createPool(t.urls[0]!, 2);
      const failed = await withTransaction(pool, async (client) => {
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        await terminate(rows[0]!.pid);
        await client.query('SELECT 1');
      }).catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(TransientError);
      // The pool dropped the dead client: the next transaction gets a fresh connection and works.
      await expect(withTransaction(pool, (c) => c.query('SELECT 1 AS one').then((r) => r.rows[0].one))).resolves.toBe(1);
      await pool.end();
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });

  it('during a ledger operation: the reservation is retried by its caller and applies once', async () => {
    const { ledger } = t;
    const account = await fundedAccount(ledger, 0, 'cf', 10_000);
    const pool = ledger.shardFor(account).pool;
    // Kill every backend of this shard's pool while a reservation waits on a lock held here.
    await admin.query('BEGIN');
    await admin.query('SELECT 1 FROM accounts WHERE id = $1::text FOR UPDATE', [account]);
    const input = reserveInput(account, 700, { transferId: fresh('cf-tr') });
    const pending = ledger.reserve(input).catch((error: unknown) => error);
    await new Promise((r) => setTimeout(r, 200));
    const { rows } = await admin.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`,
    );
    for (const row of rows) await terminate(row.pid);
    await admin.query('ROLLBACK');
    expect(await pending).toBeInstanceOf(TransientError);
    const retried = await ledger.reserve(input);
    expect(retried.replayed).toBe(false); // the killed attempt committed nothing
    expect((await ledger.reserve(input)).replayed).toBe(true);
    // The event is part of the effect's transaction: none from the killed attempt, one in all.
    const { rows: events } = await pool.query(`SELECT type FROM ledger_events WHERE aggregateid = $1`, [input.transferId]);
    expect(events).toEqual([{ type: 'transfer.debit_reserved' }]);
    expect((await ledger.getAccount(account)).pendingDebits).toBe('700');
    expect(pool.totalCount).toBeGreaterThan(0);
  });
});
