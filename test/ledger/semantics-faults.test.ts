import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Refusal } from '../../src/domain/codes.js';
import { RefusalError, TransientError } from '../../src/domain/errors.js';
import { evenSlotMap } from '../../src/domain/slots.js';
import { classifyDbError, isTransientDbError, withTransaction } from '../../src/db/transaction.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { expectConsistent, fresh, fundedAccount, reserveInput } from './semantics-support.js';

let t: TestLedger;
beforeAll(async () => {
  t = await createTestLedger();
});
afterAll(async () => t?.drop());

/** Resolves once `parties` callers have arrived: lets two transactions step in lockstep. */
function rendezvous(parties: number): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  return () => {
    if (++arrived === parties) open();
    return gate;
  };
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('rule 8: transient database faults surface as retryable TransientError; refusals do not', () => {
  it('a real deadlock (40P01) between two transactions on a shard pool is a TransientError', async () => {
    const { ledger } = t;
    const [a, b] = [await fundedAccount(ledger, 0, 'dl-a'), await fundedAccount(ledger, 0, 'dl-b')];
    const pool = ledger.shardFor(a).pool;
    const bothHoldFirstLock = rendezvous(2);
    const lockBoth = (first: string, second: string) =>
      withTransaction(pool, async (client) => {
        await client.query(`SET LOCAL deadlock_timeout = '50ms'`);
        await client.query('SELECT id FROM accounts WHERE id = $1 FOR UPDATE', [first]);
        await bothHoldFirstLock();
        await client.query('SELECT id FROM accounts WHERE id = $1 FOR UPDATE', [second]);
      });
    const results = await Promise.allSettled([lockBoth(a, b), lockBoth(b, a)]);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(failed).toHaveLength(1); // PostgreSQL aborts one side; the other completes
    const error = failed[0]!.reason;
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ sqlState: '40P01', cause: expect.objectContaining({ code: '40P01' }) });
    expect(isTransientDbError(error)).toBe(true);
    expect(isTransientDbError((error as TransientError).cause)).toBe(true);
  });

  it('a real serialization failure (40001) between two SERIALIZABLE transactions is a TransientError', async () => {
    const { ledger } = t;
    const [a, b] = [await fundedAccount(ledger, 1, 'ser-a', 10), await fundedAccount(ledger, 1, 'ser-b', 10)];
    const pool = ledger.shardFor(a).pool;
    const bothRead = rendezvous(2);
    let firstCommitted!: Promise<unknown>;
    // Write skew: each reads the row the other writes.
    const skew = (read: string, write: string, waitFor?: () => Promise<unknown>) =>
      withTransaction(pool, async (client) => {
        await client.query('SET TRANSACTION ISOLATION LEVEL SERIALIZABLE');
        await client.query('SELECT posted FROM accounts WHERE id = $1', [read]);
        await bothRead();
        if (waitFor) await waitFor().catch(() => undefined);
        await client.query('UPDATE accounts SET updated_at = now() WHERE id = $1', [write]);
      });
    firstCommitted = skew(b, a);
    const second = skew(a, b, () => firstCommitted);
    await expect(firstCommitted).resolves.toBeUndefined();
    const error = await second.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ sqlState: '40001', cause: expect.objectContaining({ code: '40001' }) });
  });

  it('a refused connection (ECONNREFUSED) makes getAccount and deposit reject with a TransientError', async () => {
    const port = await closedPort();
    const ledger = Ledger.connect({ shardUrls: [`postgres://postgres:x@127.0.0.1:${port}/nowhere`], slotMap: evenSlotMap(1), poolSize: 1 });
    try {
      const read = await ledger.getAccount('anyone').catch((e: unknown) => e);
      expect(read).toBeInstanceOf(TransientError);
      expect(isTransientDbError(read)).toBe(true);
      expect((read as TransientError).cause).toMatchObject({ code: 'ECONNREFUSED' });
      const write = await ledger.deposit({ key: 'k', accountId: 'anyone', amount: '1', currency: 'USD' }).catch((e: unknown) => e);
      expect(write).toBeInstanceOf(TransientError);
    } finally {
      await ledger.close();
    }
  });

  it('a refusal, a constraint violation or a plain bug is not transient and is passed through unchanged', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'not-transient', 10);
    const refusal = await ledger.reserve(reserveInput(a, '11')).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(RefusalError);
    expect((refusal as RefusalError).code).toBe(Refusal.INSUFFICIENT_FUNDS);
    expect(isTransientDbError(refusal)).toBe(false);
    expect(classifyDbError(refusal)).toBe(refusal);
    const violation = await ledger.shardFor(a).pool.query('UPDATE accounts SET posted = -1 WHERE id = $1', [a]).catch((e: unknown) => e);
    expect(violation).toMatchObject({ code: '23514' });
    expect(isTransientDbError(violation)).toBe(false);
    expect(classifyDbError(violation)).toBe(violation);
    const bug = new TypeError('undefined is not a function');
    expect(classifyDbError(bug)).toBe(bug);
  });
});

describe('verify names the precise violation in a deliberately corrupted database', () => {
  let c: TestLedger;
  let a: string;
  let b: string;
  beforeAll(async () => {
    c = await createTestLedger();
    a = await fundedAccount(c.ledger, 0, 'victim', 1000);
    b = await fundedAccount(c.ledger, 1, 'other', 1000);
    await c.ledger.reserve(reserveInput(b, '300'));
  });
  afterAll(async () => c?.drop());
  const raw = (shard: number, sql: string, params: unknown[] = []) => c.ledger.shards[shard]!.pool.query(sql, params);

  it('is clean before any corruption', async () => {
    await expectConsistent(c.ledger);
  });

  it('a posted balance edited behind the journal: balance_matches_journal on that account and shard', async () => {
    await raw(0, 'UPDATE accounts SET posted = posted + 1 WHERE id = $1', [a]);
    const report = await c.ledger.verify();
    expect(report.ok).toBe(false);
    expect(report.violations).toEqual([
      { check: 'balance_matches_journal', shard: 0, account: a, currency: 'USD', amount: '1001', message: 'posted balance 1001 but journal sums to 1000' },
    ]);
    await raw(0, 'UPDATE accounts SET posted = posted - 1 WHERE id = $1', [a]);
    await expectConsistent(c.ledger);
  });

  it('pending debits that no pending hold explains: pending_matches_holds on that account and shard', async () => {
    await raw(1, 'UPDATE accounts SET pending_debits = pending_debits + 7 WHERE id = $1', [b]);
    const report = await c.ledger.verify();
    expect(report.ok).toBe(false);
    expect(report.violations).toEqual([
      expect.objectContaining({ check: 'pending_matches_holds', shard: 1, account: b, message: 'pending debits/credits 307/0 but pending holds sum to 300/0' }),
    ]);
    await raw(1, 'UPDATE accounts SET pending_debits = pending_debits - 7 WHERE id = $1', [b]);
    await expectConsistent(c.ledger);
  });

  it('a one-legged journal entry forged past the triggers: entry_balanced, balance_matches_journal and money_conserved', async () => {
    const client = await c.ledger.shards[0]!.pool.connect();
    const forged = fresh('forged');
    try {
      await client.query(`SET session_replication_role = replica`); // superuser: skips the triggers
      await client.query(
        `INSERT INTO journal (entry_id, account_id, amount, currency, kind, created_at) VALUES ($1, $2, 5, 'USD', 'deposit', now())`,
        [forged, a],
      );
      const report = await c.ledger.verify();
      expect(report.ok).toBe(false);
      expect(report.violations).toEqual([
        expect.objectContaining({ check: 'balance_matches_journal', shard: 0, account: a, message: 'posted balance 1000 but journal sums to 1005' }),
        expect.objectContaining({ check: 'entry_balanced', shard: 0, entry: forged, amount: '5' }),
        expect.objectContaining({ check: 'money_conserved', currency: 'USD', amount: '5' }),
      ]);
      await client.query('DELETE FROM journal WHERE entry_id = $1', [forged]);
    } finally {
      await client.query('RESET session_replication_role');
      client.release();
    }
    await expectConsistent(c.ledger);
  });
});
