import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransientError } from '../../src/domain/errors.js';
import { evenSlotMap } from '../../src/domain/slots.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { verifyShards, type VerifyReport } from '../../src/ledger/verify.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { expectConsistent, fresh, fundedAccount, reserveInput } from './semantics-support.js';

/** Holes 5 (timeouts and pools) and 8 (verify) of the reliability issue. */
let t: TestLedger;
beforeAll(async () => {
  t = await createTestLedger(2, { poolSize: 24 });
});
afterAll(async () => t?.drop());

async function transfer(ledger: Ledger, from: string, to: string, amount: string, stopAfter?: 'post-debit') {
  const id = fresh('vt');
  const debit = await ledger.reserve(reserveInput(from, amount, { transferId: id, side: 'debit' }));
  const credit = await ledger.reserve(reserveInput(to, amount, { transferId: id, side: 'credit' }));
  await ledger.post({ key: `${id}:post-debit`, holdKey: debit.key, accountId: from, transferId: id });
  if (stopAfter) {
    await ledger.void({ key: `${id}:void-credit`, holdKey: credit.key, accountId: to, transferId: id });
    return id;
  }
  await ledger.post({ key: `${id}:post-credit`, holdKey: credit.key, accountId: to, transferId: id });
  return id;
}

const withoutTime = (r: VerifyReport) => ({ ...r, checkedAt: '', attention: { ...r.attention, inTransit: { ...r.attention.inTransit, oldestMs: 0 } } });

describe('hole 8: verify reads consistent snapshots, streams, and names what is stuck', () => {
  it('never reports a violation while cross-shard transfers run in both directions', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'load-a', 1_000_000);
    const b = await fundedAccount(ledger, 1, 'load-b', 1_000_000);
    let running = true;
    const lanes = Array.from({ length: 6 }, async (_, i) => {
      let n = 0;
      while (running) {
        await (i % 2 === 0 ? transfer(ledger, a, b, String(1 + n)) : transfer(ledger, b, a, String(2 + n)));
        n += 1;
      }
      return n;
    });
    const reports: VerifyReport[] = [];
    for (let i = 0; i < 12; i++) reports.push(await ledger.verify({ batchSize: 7 }));
    running = false;
    const moved = (await Promise.all(lanes)).reduce((x, y) => x + y, 0);
    expect(moved).toBeGreaterThan(20); // the verifies really overlapped work
    expect(reports.flatMap((r) => r.violations)).toEqual([]);
    expect(reports.some((r) => r.attention.inTransit.transfers > 0)).toBe(true);
    await expectConsistent(ledger);
  });

  it('a snapshot left idle while the other shard is checked outlives the idle-in-transaction limit', async () => {
    const a = await fundedAccount(t.ledger, 0, 'idle-a', 10_000);
    const b = await fundedAccount(t.ledger, 1, 'idle-b', 10_000);
    for (let i = 0; i < 6; i++) await transfer(t.ledger, i % 2 ? a : b, i % 2 ? b : a, String(1 + i));
    // 50 ms: a transaction pausing longer between two statements on these connections is ended.
    const strict = Ledger.connect({ shardUrls: t.urls, slotMap: evenSlotMap(2), clockOffsetMs: t.clock.offset, pool: { idleInTransactionTimeoutMs: 50 } });
    try {
      const client = await strict.shards[1]!.pool.connect();
      client.on('error', () => undefined); // the server ends this session on purpose
      try {
        await client.query('BEGIN');
        await new Promise((r) => setTimeout(r, 300));
        await expect(client.query('SELECT 1')).rejects.toThrow(); // the limit is really in force
      } finally {
        client.release(true);
      }
      // Every snapshot is open before the checks start; a cut released slowly keeps them all idle
      // for 300 ms first, as a large shard's checks keep the next shard's snapshot waiting.
      const slowCut = async () => async () => {
        await new Promise((r) => setTimeout(r, 300));
      };
      const report = await verifyShards(strict.shards, { batchSize: 1 }, slowCut);
      expect(report.violations).toEqual([]);
      expect(report.shards.map((s) => s.accounts > 0)).toEqual([true, true]);
    } finally {
      await strict.close();
    }
  });

  it('gives the same answer whatever the cursor batch size, and reports stuck clearing only past its grace', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'batch-a', 10_000);
    const b = await fundedAccount(ledger, 1, 'batch-b', 10_000);
    for (let i = 0; i < 9; i++) await transfer(ledger, i % 2 ? a : b, i % 2 ? b : a, String(10 + i));
    const stuck = await transfer(ledger, a, b, '77', 'post-debit'); // credit voided, debit never refunded
    const small = await ledger.verify({ batchSize: 1 });
    const large = await ledger.verify({ batchSize: 10_000 });
    expect(withoutTime(small)).toEqual(withoutTime(large));
    expect(small.violations).toEqual([]); // recent: in transit, not yet a violation
    expect(small.attention.inTransit.transfers).toBe(1);
    const strict = await ledger.verify({ transitGraceMs: 0, batchSize: 3 });
    expect(strict.violations).toEqual([
      expect.objectContaining({ check: 'clearing_stuck', transfer: stuck, currency: 'USD', amount: '77' }),
    ]);
    await ledger.refund({ key: `${stuck}:refund-debit`, holdKey: `${stuck}:reserve-debit`, accountId: a, transferId: stuck });
    expect((await ledger.verify({ transitGraceMs: 0 })).violations).toEqual([]);
  });

  it('a hold just past expiry is not an alarm while a sweeper may still come; long past it is', async () => {
    const { ledger, clock } = t;
    const a = await fundedAccount(ledger, 1, 'late', 100);
    const input = reserveInput(a, '10', { ttlMs: 1_000 });
    await ledger.reserve(input);
    clock.advance(2_000);
    expect((await ledger.verify()).violations).toEqual([]);
    expect((await ledger.verify({ expiryGraceMs: 0 })).violations).toEqual([expect.objectContaining({ check: 'hold_pending_past_expiry', hold: input.key })]);
    clock.advance(10 * 60_000);
    expect((await ledger.verify()).violations).toEqual([expect.objectContaining({ check: 'hold_pending_past_expiry', hold: input.key })]);
    await ledger.sweepExpired();
    await expectConsistent(ledger);
  });

  it('flags money that reached a closed account behind the ledger', async () => {
    const { ledger } = t;
    const a = await fundedAccount(ledger, 0, 'closed-forged');
    await ledger.setStatus(a, 'closed');
    const client = await ledger.shards[0]!.pool.connect();
    try {
      await client.query('SET session_replication_role = replica'); // superuser: skips triggers, not CHECKs
      await client.query(`DELETE FROM journal WHERE entry_id = 'forged-close'`);
      await client.query(`INSERT INTO journal (entry_id, account_id, amount, currency, kind, created_at)
        VALUES ('forged-close', $1, 5, 'USD', 'deposit', now() + interval '1 day'), ('forged-close', 'sys:external:USD', -5, 'USD', 'deposit', now())`, [a]);
      const report = await ledger.verify();
      expect(report.violations).toEqual(expect.arrayContaining([
        expect.objectContaining({ check: 'closed_account_untouched', shard: 0, account: a, entry: 'forged-close' }),
        expect.objectContaining({ check: 'balance_matches_journal', shard: 0, account: a }),
      ]));
    } finally {
      await client.query(`DELETE FROM journal WHERE entry_id = 'forged-close'`);
      await client.query('RESET session_replication_role');
      client.release();
    }
    await expectConsistent(ledger);
  });
});

describe('hole 5: timeouts and pools', () => {
  it('no free connection in time, a lock held too long, a statement too slow: each is a TransientError', async () => {
    const a = await fundedAccount(t.ledger, 0, 'pool', 1000);
    const tight = Ledger.connect({ shardUrls: t.urls, slotMap: evenSlotMap(2), clockOffsetMs: t.clock.offset, pool: { max: 1, acquireTimeoutMs: 200, lockTimeoutMs: 300, statementTimeoutMs: 500 } });
    const admin = new pg.Client({ connectionString: t.urls[0] });
    await admin.connect();
    try {
      await tight.checkIdentity();
      // Pool exhausted: the only connection is busy in a slow statement.
      const busy = tight.shards[0]!.pool.query('SELECT pg_sleep(0.4)');
      await expect(tight.reserve(reserveInput(a, '1'))).rejects.toBeInstanceOf(TransientError);
      await busy;
      // lock_timeout: another session holds the account row.
      await admin.query('BEGIN');
      await admin.query('SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE', [a]);
      const locked = await tight.reserve(reserveInput(a, '1')).catch((e: unknown) => e);
      expect(locked).toBeInstanceOf(TransientError);
      expect(locked).toMatchObject({ sqlState: '55P03' });
      await admin.query('ROLLBACK');
      // statement_timeout
      const slow = await tight.shards[0]!.pool.query('SELECT pg_sleep(2)').catch((e: unknown) => e);
      const { classifyDbError } = await import('../../src/db/transaction.js');
      expect(classifyDbError(slow)).toMatchObject({ sqlState: '57014' });
      expect(classifyDbError(slow)).toBeInstanceOf(TransientError);
    } finally {
      await admin.end();
      await tight.close();
    }
  });

  it('under load a pool sized to the concurrency never fails a step; an undersized one fails them as retryable, and retries apply each once', async () => {
    const a = await fundedAccount(t.ledger, 1, 'hot', 1_000_000);
    const sized = Ledger.connect({ shardUrls: t.urls, slotMap: evenSlotMap(2), clockOffsetMs: t.clock.offset, pool: { max: 22 } });
    // Every step alone (batching off): 40 steps want 40 connections at once.
    const starved = Ledger.connect({ shardUrls: t.urls, slotMap: evenSlotMap(2), clockOffsetMs: t.clock.offset, pool: { max: 2, acquireTimeoutMs: 30 }, batch: { max: 1 } });
    // Batched, the same small pool is enough: never more step calls than connections, the rest wait and go out together.
    const batched = Ledger.connect({ shardUrls: t.urls, slotMap: evenSlotMap(2), clockOffsetMs: t.clock.offset, pool: { max: 2, acquireTimeoutMs: 30 } });
    try {
      const inputs = Array.from({ length: 20 }, () => reserveInput(a, '3'));
      const first = await Promise.allSettled(inputs.map((i) => sized.reserve(i)));
      expect(first.filter((r) => r.status === 'rejected')).toEqual([]);

      const more = Array.from({ length: 40 }, () => reserveInput(a, '5'));
      const tries = await Promise.allSettled(more.map((i) => starved.reserve(i)));
      const failed = tries.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(failed.length).toBeGreaterThan(0);
      for (const f of failed) expect(f.reason).toBeInstanceOf(TransientError);
      // What an activity retry does: the same calls again, until each succeeded once.
      for (const input of more) await sized.reserve(input);
      expect((await t.ledger.getAccount(a)).pendingDebits).toBe(String(20 * 3 + 40 * 5));

      await batched.checkIdentity();
      const together = await Promise.allSettled(Array.from({ length: 40 }, () => batched.reserve(reserveInput(a, '7'))));
      expect(together.filter((r) => r.status === 'rejected')).toEqual([]);
      expect(batched.shards[1]!.steps!.stats.batches).toBeGreaterThan(0);
      expect((await t.ledger.getAccount(a)).pendingDebits).toBe(String(20 * 3 + 40 * 5 + 40 * 7));
    } finally {
      await sized.close();
      await starved.close();
      await batched.close();
    }
    await expectConsistent(t.ledger);
  });
});
