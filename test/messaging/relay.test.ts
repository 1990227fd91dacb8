import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { createPool } from '../../src/db/transaction.js';
import { LogRelay, lsnValue, slotLag } from '../../src/messaging/relay-log.js';
import { PollRelay } from '../../src/messaging/relay-poll.js';
import { followOutcomes, installRequestTable, REQUESTS_TABLE } from '../../src/messaging/requests.js';
import { startTransfer } from '../../src/client.js';
import { accountOnShard, type TestLedger } from '../support/ledger.js';
import { createTestWorker, uniqueTaskQueue, useDevServer } from '../support/temporal.js';
import { outcomeOf } from '../support/transfers.js';

/**
 * Inbound transactional messages: a producer service writes a transfer request in the same local
 * transaction as its own change; a relay (polling, or tailing the WAL) starts each transfer once.
 */
let t: TestLedger;
let env: TestWorkflowEnvironment;
useDevServer((tl, e) => ((t = tl), (env = e)));

const tag = randomBytes(3).toString('hex');
const taskQueue = uniqueTaskQueue();
let worker: Worker;
let running: Promise<void>;
let producerUrl: string;
let producer: pg.Pool;
const accounts = { wallet: '', fund: '' };

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: inject('pgUrl') });
  await admin.connect();
  const db = `producer_${tag}`;
  await admin.query(`CREATE DATABASE ${db}`);
  await admin.end();
  const u = new URL(inject('pgUrl'));
  u.pathname = `/${db}`;
  producerUrl = u.toString();
  producer = createPool(producerUrl, 10);
  await installRequestTable(producer);
  await installRequestTable(producer); // installing again changes nothing
  await producer.query('CREATE TABLE orders (id text PRIMARY KEY, total bigint NOT NULL)');
  worker = await createTestWorker(env, t.ledger, { taskQueue });
  running = worker.run();
  accounts.wallet = accountOnShard(t.ledger, 0, `wallet-${tag}`);
  accounts.fund = accountOnShard(t.ledger, 1, `fund-${tag}`);
  for (const id of Object.values(accounts)) await t.ledger.openAccount({ id, currency: 'USD' });
  await t.ledger.deposit({ key: `seed-${tag}`, accountId: accounts.wallet, amount: '10000000', currency: 'USD' });
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await producer?.end();
});

/** The producer's own transaction: its order and the payout request commit together, or neither. */
async function order(id: string, amount: string, client?: pg.PoolClient): Promise<void> {
  const c = client ?? (await producer.connect());
  try {
    if (!client) await c.query('BEGIN');
    await c.query('INSERT INTO orders (id, total) VALUES ($1, $2)', [id, amount]);
    await c.query(`INSERT INTO ${REQUESTS_TABLE} (id, from_account, to_account, amount, currency, memo) VALUES ($1, $2, $3, $4, 'USD', $5)`,
      [`payout-${id}`, accounts.wallet, accounts.fund, amount, `order ${id}`]);
    if (!client) await c.query('COMMIT');
  } finally {
    if (!client) c.release();
  }
}

async function states(prefix: string): Promise<Record<string, string>> {
  const { rows } = await producer.query<{ id: string; state: string; reason: string | null }>(`SELECT id, state, reason FROM ${REQUESTS_TABLE} WHERE id LIKE $1 ORDER BY id`, [`${prefix}%`]);
  return Object.fromEntries(rows.map((r) => [r.id, r.reason ? `${r.state}: ${r.reason.split(':')[0]}` : r.state]));
}

async function currentLsn(): Promise<string> {
  return (await producer.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
}

async function confirmedFlush(slot: string): Promise<bigint> {
  const { rows } = await producer.query<{ lsn: string | null }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  return lsnValue(rows[0]?.lsn ?? '0/0');
}

async function until(probe: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('poll relay', () => {
  it('starts each committed request once, skips none that commit late, rejects bad rows without blocking, writes outcomes back', async () => {
    const starts = new Map<string, number>();
    const onStart = (id: string) => starts.set(id, (starts.get(id) ?? 0) + 1);
    const relays = [0, 1].map(() => new PollRelay({ pool: producer, url: producerUrl, client: env.client, taskQueue, intervalMs: 200, batch: 5, onStart }));
    for (const r of relays) await r.start();
    try {
      // A late commit: this transaction inserts first and commits last.
      const late = await producer.connect();
      await late.query('BEGIN');
      await order(`p-${tag}-late`, '111', late);
      for (let i = 0; i < 12; i++) await order(`p-${tag}-${i}`, String(100 + i));
      // A transfer id someone else already used with other parameters.
      await startTransfer(env.client, taskQueue, { transferId: `payout-p-${tag}-taken`, from: accounts.wallet, to: accounts.fund, amount: '1', currency: 'USD' });
      await producer.query(`INSERT INTO ${REQUESTS_TABLE} (id, from_account, to_account, amount, currency) VALUES ($1, $2, $3, '2', 'USD')`,
        [`payout-p-${tag}-taken`, accounts.wallet, accounts.fund]);
      // Malformed rows and a reused id with other parameters: rejected with a reason, never blocking.
      await producer.query(`INSERT INTO ${REQUESTS_TABLE} (id, from_account, to_account, amount, currency) VALUES
        ('payout-p-${tag}-bad-amount', $1, $2, '12.50', 'USD'), ('payout-p-${tag}-no-to', $1, NULL, '5', 'USD'),
        ('payout-p-${tag}-bad id', $1, $2, '5', 'USD'), ('payout-p-${tag}-currency', $1, $2, '5', 'XXX')`, [accounts.wallet, accounts.fund]);
      await until(async () => Object.values(await states(`payout-p-${tag}-`)).filter((s) => s !== 'pending').length === 17);
      await late.query('COMMIT');
      late.release();
      await until(async () => (await states(`payout-p-${tag}-late`))[`payout-p-${tag}-late`] !== 'pending');
      await outcomeOf(env.client.workflow.getHandle(`payout-p-${tag}-0`));
      for (let i = 0; i < 20 && (await followOutcomes(producer, env.client)) >= 0; i++) {
        const s = await states(`payout-p-${tag}-`);
        if (Object.values(s).every((x) => x !== 'started')) break;
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      for (const r of relays) await r.stop();
    }
    const final = await states(`payout-p-${tag}-`);
    expect(final).toEqual({
      ...Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`payout-p-${tag}-${i}`, 'completed'])),
      [`payout-p-${tag}-late`]: 'completed',
      [`payout-p-${tag}-bad-amount`]: 'rejected: INVALID_AMOUNT',
      [`payout-p-${tag}-no-to`]: 'rejected: INVALID_ACCOUNT_ID',
      [`payout-p-${tag}-bad id`]: 'rejected: INVALID_INPUT',
      [`payout-p-${tag}-currency`]: 'rejected: UNKNOWN_CURRENCY',
      [`payout-p-${tag}-taken`]: 'rejected: TRANSFER_ID_REUSED',
    });
    // Two relays, each request handed to Temporal exactly once.
    expect([...starts.values()].every((n) => n === 1)).toBe(true);
    expect(starts.size).toBe(14); // malformed rows never reach Temporal; the reused id is refused by it
    expect(relays[0]!.handled + relays[1]!.handled).toBe(18);
    expect(relays[0]!.handled).toBeGreaterThan(0);
  });
});

describe('log relay (logical decoding, pgoutput)', () => {
  it('an idle relay acknowledges the server\'s keepalives, so WAL written elsewhere is not pinned by its slot', async () => {
    const slot = `relay_idle_${tag}`;
    const relay = new LogRelay({ pool: producer, url: producerUrl, client: env.client, taskQueue, slot });
    await relay.start();
    try {
      await until(async () => (await slotLag(producer, slot)).active);
      // About 2 MiB of WAL that no publication carries: the relay receives nothing but keepalives.
      await producer.query(`CREATE TABLE IF NOT EXISTS relay_unpublished_${tag} (x text)`);
      await producer.query(`INSERT INTO relay_unpublished_${tag} SELECT repeat(md5(g::text), 32) FROM generate_series(1, 2000) g`);
      const after = lsnValue(await currentLsn());
      await until(async () => (await confirmedFlush(slot)) >= after, 60_000);
      expect(relay.handled).toBe(0);
    } finally {
      await relay.stop();
      await producer.query(`DROP TABLE IF EXISTS relay_unpublished_${tag}`);
      await until(async () => !(await slotLag(producer, slot)).active);
      await producer.query('SELECT pg_drop_replication_slot($1)', [slot]);
    }
  }, 90_000);

  it('hands over each request, acknowledges only after the hand-over, and re-delivers after a crash without paying twice', async () => {
    const slot = `relay_${tag}`;
    let block: Promise<void> | undefined;
    let release!: () => void;
    const starts: string[] = [];
    const options = { pool: producer, url: producerUrl, client: env.client, taskQueue, slot, onStart: (id: string) => starts.push(id) };
    // Crash 1: the relay dies after Temporal accepted the start and before it acknowledged.
    const first = new LogRelay({
      ...options,
      afterStart: async (id) => {
        if (id === `payout-l-${tag}-0`) {
          block = new Promise<void>((r) => (release = r));
          await block;
          throw new Error('relay process died here'); // what a kill -9 leaves: started, not marked, not acknowledged
        }
      },
    });
    await first.start();
    await until(async () => (await slotLag(producer, slot)).active);
    // An idle relay may acknowledge the server's keepalives, but never past a request it has not
    // handed over and marked: the slot stays before the order's commit while the hand-over hangs.
    // WAL other databases write while the order's transaction is open (another test file creating
    // its databases) precedes that commit and may be acknowledged, so the bound is read right
    // before the COMMIT, in the same round trip.
    const c = await producer.connect();
    let beforeCommit: bigint;
    try {
      await c.query('BEGIN');
      await order(`l-${tag}-0`, '50', c);
      const [lsn] = (await c.query('SELECT pg_current_wal_insert_lsn()::text AS lsn; COMMIT')) as unknown as pg.QueryResult<{ lsn: string }>[];
      beforeCommit = lsnValue(lsn!.rows[0]!.lsn);
    } finally {
      c.release();
    }
    await until(async () => block !== undefined);
    await new Promise((r) => setTimeout(r, 300));
    expect(await confirmedFlush(slot)).toBeLessThanOrEqual(beforeCommit); // nothing acknowledged while the hand-over is unfinished
    await first.stop(); // the crash
    release();
    expect((await states(`payout-l-${tag}-`))[`payout-l-${tag}-0`]).toBe('pending');

    const second = new LogRelay(options);
    await second.start();
    try {
      for (let i = 1; i < 5; i++) await order(`l-${tag}-${i}`, String(60 + i));
      const beforeLast = lsnValue(await currentLsn());
      await order(`l-${tag}-5`, '65');
      // The killed relay's WAL sender may hold the slot until the server notices (at most
      // wal_sender_timeout, 60 s); the new relay retries every second until it can attach.
      await until(async () => Object.values(await states(`payout-l-${tag}-`)).filter((s) => s === 'started').length === 6, 90_000);
      // Acknowledged past the last order's commit, whatever the other databases of the cluster write.
      await until(async () => second.confirmed !== undefined && (await confirmedFlush(slot)) > beforeLast);
      expect((await slotLag(producer, slot)).active).toBe(true);
    } finally {
      await second.stop();
    }
    expect(starts.filter((id) => id === `payout-l-${tag}-0`)).toHaveLength(2); // re-delivered once
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => outcomeOf(env.client.workflow.getHandle(`payout-l-${tag}-${i}`))));
    expect(results.map((r) => (r as { status: string }).status)).toEqual(Array(6).fill('COMPLETED'));
    const paid = (await t.ledger.transferRecords(`payout-l-${tag}-0`)).postings.filter((p) => p.accountId === accounts.fund);
    expect(paid.map((p) => p.amount)).toEqual(['50']); // paid once
    await producer.query('SELECT pg_drop_replication_slot($1)', [slot]);
  }, 150_000);
});

describe('poll relay under faults', () => {
  it('a relay dying after a start, and its database connections cut mid-batch, lose nothing and pay nothing twice', async () => {
    const starts = new Map<string, number>();
    let crashOnce = true;
    let cutOnce = true;
    // The relay's own pool, named, so the cut below hits its connections and not this test's.
    const relayPool = new pg.Pool({ connectionString: producerUrl, max: 4, application_name: 'relay-under-test' });
    relayPool.on('error', () => undefined);
    const relay = new PollRelay({
      pool: relayPool, url: producerUrl, client: env.client, taskQueue, intervalMs: 100, batch: 4,
      onStart: (id) => starts.set(id, (starts.get(id) ?? 0) + 1),
      afterStart: async (id) => {
        if (id === `payout-f-${tag}-0` && crashOnce) {
          crashOnce = false;
          throw new Error('relay died after the start was accepted'); // the batch's transaction never commits
        }
        if (id === `payout-f-${tag}-5` && cutOnce) {
          cutOnce = false;
          // What a PostgreSQL restart does to the relay: every connection of its pool is killed mid-batch.
          await producer.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE datname = current_database() AND application_name = 'relay-under-test'`);
        }
      },
    });
    await relay.start();
    try {
      for (let i = 0; i < 10; i++) await order(`f-${tag}-${i}`, String(200 + i));
      await until(async () => Object.values(await states(`payout-f-${tag}-`)).filter((s) => s === 'started').length === 10, 60_000);
    } finally {
      await relay.stop();
      await relayPool.end();
    }
    expect(crashOnce || cutOnce).toBe(false);
    expect(starts.get(`payout-f-${tag}-0`)).toBeGreaterThanOrEqual(2); // handed over again after the crash
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => outcomeOf(env.client.workflow.getHandle(`payout-f-${tag}-${i}`))));
    expect(results.map((r) => (r as { status: string }).status)).toEqual(Array(10).fill('COMPLETED'));
    for (let i = 0; i < 10; i++) {
      const credits = (await t.ledger.transferRecords(`payout-f-${tag}-${i}`)).postings.filter((p) => p.accountId === accounts.fund);
      expect(credits.map((p) => p.amount)).toEqual([String(200 + i)]); // paid exactly once
    }
  });
});
