import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchSettingsFromEnv } from '../../src/config.js';
import { Refusal } from '../../src/domain/codes.js';
import { RefusalError, TransientError } from '../../src/domain/errors.js';
import { compareLockOrder, evenSlotMap, slotOf } from '../../src/domain/slots.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { moveSlots } from '../../src/ledger/slot-mover.js';
import { accountOnShard, createTestLedger, type TestLedger } from '../support/ledger.js';
import { balances, expectConsistent, fresh, fundedAccount, refusalOf, reserveInput } from './semantics-support.js';

/**
 * Client-side group commit (src/ledger/step-batcher.ts, migrations/007_step_batches.sql): steps of
 * one shard that arrive while its step calls are busy go out together in one ledger_batch call, one
 * transaction. To make a batch happen on purpose, each test uses a ledger with one call in flight
 * per shard, holds that call on a row lock (a deposit on a "gate" account another session has
 * locked), starts the steps under test (they wait in the queue), and lets the gate go: the waiting
 * steps then leave as one batch. Every statement the ledgers' pools send is recorded.
 */

interface Sent {
  shard: number;
  text: string;
  values: unknown[];
}
const sent: Sent[] = [];

/** Records every query the ledger's pooled clients send, with its shard. */
function record(ledger: Ledger): Ledger {
  for (const ctx of ledger.shards) {
    ctx.pool.on('connect', (client: pg.PoolClient) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as { query: unknown }).query = (...args: unknown[]) => {
        const [text, values] = args as [string | { text?: string }, unknown[] | undefined];
        sent.push({ shard: ctx.shard, text: typeof text === 'string' ? text : String(text.text), values: Array.isArray(values) ? values : [] });
        return query(...args);
      };
    });
  }
  return ledger;
}

async function until(what: string, condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const settle = <T>(p: Promise<T>): Promise<PromiseSettledResult<T>> => p.then((value) => ({ status: 'fulfilled' as const, value }), (reason: unknown) => ({ status: 'rejected' as const, reason }));

function value<T>(r: PromiseSettledResult<T>): T {
  if (r.status === 'rejected') throw r.reason;
  return r.value;
}

function reason(r: PromiseSettledResult<unknown>): unknown {
  if (r.status === 'fulfilled') throw new Error(`expected a failure, got ${JSON.stringify(r.value)}`);
  return r.reason;
}

const isBatch = (s: Sent) => s.text.includes('ledger_batch(');
const isStepCall = (s: Sent) => /SELECT ledger_(reserve|post|void|refund|move|release_suspense|batch)\(/.test(s.text);

/** The steps of a recorded ledger_batch call, as sent. */
function batchSteps(s: Sent): { fn: string; args: unknown[] }[] {
  return JSON.parse(String(s.values[0])) as { fn: string; args: unknown[] }[];
}

/**
 * A ledger with one step call in flight per shard, and a way to make steps share one batch.
 * `admins[shard]` locks the gate account of that shard.
 */
class Batching {
  constructor(readonly ledger: Ledger, readonly admins: pg.Client[], readonly gates: string[]) {}

  static async open(t: TestLedger, extra: { lockTimeoutMs?: number } = {}): Promise<Batching> {
    const ledger = record(Ledger.connect({
      shardUrls: t.urls, slotMap: evenSlotMap(t.urls.length), clockOffsetMs: t.clock.offset, poolSize: 8,
      pool: { ...(extra.lockTimeoutMs ? { lockTimeoutMs: extra.lockTimeoutMs } : {}) },
      batch: { inFlight: 1 },
    }));
    await ledger.checkIdentity();
    const admins: pg.Client[] = [];
    const gates: string[] = [];
    for (const [shard, url] of t.urls.entries()) {
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      admins.push(admin);
      // Outside slots 0-1023, which the slot move test moves away.
      let gate = '';
      for (let i = 0; !gate; i++) {
        const id = accountOnShard(ledger, shard, `gate-${i}`);
        if (slotOf(id) >= 1024) gate = id;
      }
      await ledger.openAccount({ id: gate, currency: 'USD' });
      gates.push(gate);
    }
    return new Batching(ledger, admins, gates);
  }

  batcher(shard: number) {
    return this.ledger.shards[shard]!.steps!;
  }

  /**
   * Starts `steps` while the shard's one call is held on the gate's lock, waits until all of them
   * wait in the queue, then lets the gate go: they leave together. What each step settled to, and
   * the shard's statements from the gate on.
   */
  async oneBatch<T>(shard: number, steps: (() => Promise<T>)[]): Promise<{ results: PromiseSettledResult<T>[]; statements: Sent[] }> {
    const admin = this.admins[shard]!;
    const from = sent.length;
    const gateKey = fresh('gate');
    await admin.query('BEGIN');
    let running: Promise<PromiseSettledResult<T>>[] = [];
    let gated: Promise<unknown> | undefined;
    try {
      await admin.query('SELECT 1 FROM accounts WHERE id = $1::text FOR UPDATE', [this.gates[shard]]);
      gated = this.ledger.deposit({ key: gateKey, accountId: this.gates[shard]!, amount: 1, currency: 'USD' });
      await until('the gate step to be sent', () => sent.slice(from).some((s) => s.values.includes(gateKey)));
      running = steps.map((step) => settle(step()));
      await until(`${steps.length} steps waiting`, () => this.batcher(shard).waiting === steps.length);
    } finally {
      await admin.query('ROLLBACK');
    }
    await gated;
    const results = await Promise.all(running);
    return { results, statements: sent.slice(from).filter((s) => s.shard === shard) };
  }

  async close(): Promise<void> {
    await Promise.all(this.admins.map((a) => a.end()));
    await this.ledger.close();
  }
}

let t: TestLedger;
let b: Batching;
/** Every step alone, as before batching. */
let unbatched: Ledger;

beforeAll(async () => {
  t = await createTestLedger(2);
  b = await Batching.open(t, { lockTimeoutMs: 3_000 });
  unbatched = record(Ledger.connect({ shardUrls: t.urls, slotMap: evenSlotMap(2), clockOffsetMs: t.clock.offset, poolSize: 8, batch: { max: 1 } }));
});
afterAll(async () => {
  await b?.close();
  await unbatched?.close();
  await t?.drop();
});

/** The answer with the mirror's ids and shard taken for the original's, and times left out. */
function normalised(answer: unknown, ids: Map<string, string>): unknown {
  return JSON.parse(JSON.stringify(answer, (key, v: unknown) =>
    key.endsWith('At') ? undefined : key === 'shard' ? 0 : typeof v === 'string' && ids.has(v) ? ids.get(v) : v));
}

describe('concurrent steps of one shard share one transaction', () => {
  it('go out as one ledger_batch call, in lock order, with the answers and effects they have alone', async () => {
    // The same accounts and holds twice: on shard 0 for the batch, on shard 1 (same keys) for steps one at a time.
    const setUp = async (ledger: Ledger, shard: number) => {
      const a = await fundedAccount(ledger, shard, 'bt-a', 1_000);
      const c = await fundedAccount(ledger, shard, 'bt-c', 1_000);
      const d = await fundedAccount(ledger, shard, 'bt-d');
      await ledger.reserve(reserveInput(a, '100', { transferId: 'bt-1' }));
      await ledger.reserve(reserveInput(c, '30', { transferId: 'bt-2' }));
      await ledger.reserve(reserveInput(a, '40', { transferId: 'bt-3' }));
      await ledger.post({ key: 'bt-3:post-debit', holdKey: 'bt-3:reserve-debit', accountId: a, transferId: 'bt-3' });
      return [a, c, d] as const;
    };
    const stepsOn = (ledger: Ledger, [a, c, d]: readonly [string, string, string]): (() => Promise<{ replayed: boolean }>)[] => [
      () => ledger.deposit({ key: 'bt-dep', accountId: d, amount: '100', currency: 'USD' }),
      () => ledger.withdraw({ key: 'bt-wd', accountId: c, amount: '50', currency: 'USD' }),
      () => ledger.reserve(reserveInput(a, '200', { transferId: 'bt-4' })),
      () => ledger.reserve(reserveInput(d, '70', { transferId: 'bt-4', side: 'credit' })),
      () => ledger.post({ key: 'bt-1:post-debit', holdKey: 'bt-1:reserve-debit', accountId: a, transferId: 'bt-1' }),
      () => ledger.void({ key: 'bt-2:void-debit', holdKey: 'bt-2:reserve-debit', accountId: c, transferId: 'bt-2' }),
      () => ledger.refund({ key: 'bt-3:refund-debit', holdKey: 'bt-3:reserve-debit', accountId: a, transferId: 'bt-3' }),
      () => ledger.deposit({ key: 'bt-dep-2', accountId: a, amount: '5', currency: 'USD' }),
    ];
    const batched = await setUp(b.ledger, 0);
    const mirror = await setUp(unbatched, 1);
    const before = { ...b.batcher(0).stats };

    const { results, statements } = await b.oneBatch(0, stepsOn(b.ledger, batched));
    const alone: unknown[] = [];
    for (const step of stepsOn(unbatched, mirror)) alone.push(await step());

    // One statement for the gate, one for the eight steps.
    expect(statements.filter(isStepCall)).toHaveLength(2);
    const batch = statements.filter(isBatch);
    expect(batch).toHaveLength(1);
    expect(b.batcher(0).stats).toMatchObject({ batches: before.batches + 1, batchedSteps: before.batchedSteps + 8, fallbacks: before.fallbacks });
    // Sorted by the account each step locks (slot, then id), then by key.
    const order = batchSteps(batch[0]!).map((s) => ({ account: String(s.args[5]), key: String(s.args[2]) }));
    expect(order).toEqual([...order].sort((x, y) => compareLockOrder(x.account, y.account) || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0)));

    // Each caller got what the same step gets alone, and the batch's answer is what its key replays alone.
    const ids = new Map(mirror.map((id, i) => [id, batched[i]!]));
    expect(results.map((r) => normalised(value(r), new Map()))).toEqual(alone.map((x) => normalised(x, ids)));
    for (const r of results) expect(value(r)).toMatchObject({ replayed: false });
    const replays = stepsOn(unbatched, batched);
    for (const [i, replay] of replays.entries()) expect(await replay(), `step ${i} replayed alone`).toEqual({ ...value(results[i]!), replayed: true });
    for (const [i, id] of batched.entries()) expect(await balances(b.ledger, id)).toEqual(await balances(unbatched, mirror[i]!));
    await expectConsistent(b.ledger);
  });

  it('a step on an account a call in flight holds waits for that call; the other lane serves other accounts meanwhile', async () => {
    const two = Ledger.connect({ shardUrls: t.urls, slotMap: evenSlotMap(2), clockOffsetMs: t.clock.offset, poolSize: 8, batch: { inFlight: 2 } });
    const admin = b.admins[0]!;
    const gate = b.gates[0]!;
    const other = await fundedAccount(two, 0, 'lane-other', 100);
    const gateBefore = (await balances(two, gate)).posted;
    try {
      await admin.query('BEGIN');
      let first: Promise<unknown> | undefined;
      let second: Promise<unknown> | undefined;
      let secondDone = false;
      try {
        await admin.query('SELECT 1 FROM accounts WHERE id = $1::text FOR UPDATE', [gate]);
        const batcher = two.shards[0]!.steps!;
        const alone = batcher.stats.singles;
        first = two.deposit({ key: fresh('lane-1'), accountId: gate, amount: 1, currency: 'USD' }); // held on the lock
        await until('the first call to be in flight', () => batcher.stats.singles === alone + 1);
        second = two.deposit({ key: fresh('lane-2'), accountId: gate, amount: 2, currency: 'USD' }).then((r) => {
          secondDone = true;
          return r;
        });
        await until('the second step to wait', () => batcher.waiting === 1);
        // A free lane, but the account is held by the call in flight: the step waits in the queue,
        // while a step on another account takes the free lane and commits at once.
        await two.deposit({ key: fresh('lane-3'), accountId: other, amount: 3, currency: 'USD' });
        expect(batcher.waiting).toBe(1);
        expect(secondDone).toBe(false);
      } finally {
        await admin.query('ROLLBACK');
      }
      await Promise.all([first, second]);
      expect(BigInt((await balances(two, gate)).posted) - BigInt(gateBefore)).toBe(3n);
      expect(BigInt((await balances(two, other)).posted)).toBe(103n);
    } finally {
      await two.close();
    }
  });

  it('under the default settings, many concurrent steps take fewer statements than steps; with max 1, one each', async () => {
    const a = await fundedAccount(t.ledger, 0, 'bt-many');
    const recorded = record(Ledger.connect({ shardUrls: t.urls, slotMap: evenSlotMap(2), poolSize: 22 }));
    const off = record(Ledger.connect({ shardUrls: t.urls, slotMap: evenSlotMap(2), poolSize: 22, batch: { max: 1 } }));
    try {
      await recorded.checkIdentity();
      await off.checkIdentity();
      const at = sent.length;
      const results = await Promise.all(Array.from({ length: 24 }, (_, i) => recorded.deposit({ key: `bt-many-${i}`, accountId: a, amount: 1, currency: 'USD' })));
      expect(results.every((r) => !r.replayed)).toBe(true);
      const calls = sent.slice(at).filter(isStepCall);
      expect(calls.filter(isBatch).length).toBeGreaterThanOrEqual(1);
      expect(calls.length).toBeLessThan(24);
      expect(recorded.shards[0]!.steps!.stats.batchedSteps).toBe(24 - recorded.shards[0]!.steps!.stats.singles);

      const offAt = sent.length;
      await Promise.all(Array.from({ length: 24 }, (_, i) => off.deposit({ key: `bt-off-${i}`, accountId: a, amount: 1, currency: 'USD' })));
      const offCalls = sent.slice(offAt).filter(isStepCall);
      expect(offCalls.filter(isBatch)).toEqual([]);
      expect(offCalls).toHaveLength(24);
      expect((await t.ledger.getAccount(a)).posted).toBe('48');
    } finally {
      await recorded.close();
      await off.close();
    }
  });

  it('a refusal refuses only its own step: the others in the batch commit, and the refusal is sticky', async () => {
    const rich = await fundedAccount(b.ledger, 0, 'bt-rich', 500);
    const poor = await fundedAccount(b.ledger, 0, 'bt-poor', 10);
    const ghost = accountOnShard(b.ledger, 0, fresh('bt-ghost'));
    const frozen = await fundedAccount(b.ledger, 0, 'bt-frozen', 100);
    await b.ledger.setStatus(frozen, 'frozen');
    const poorReserve = reserveInput(poor, '11', { transferId: fresh('bt-r') });
    const richReserve = reserveInput(rich, '100', { transferId: fresh('bt-r') });
    const calls: (() => Promise<unknown>)[] = [
      () => b.ledger.reserve(poorReserve),
      () => b.ledger.deposit({ key: 'bt-ghost-dep', accountId: ghost, amount: 5, currency: 'USD' }),
      () => b.ledger.withdraw({ key: 'bt-frozen-wd', accountId: frozen, amount: 5, currency: 'USD' }),
      () => b.ledger.reserve(richReserve),
      () => b.ledger.withdraw({ key: 'bt-rich-wd', accountId: rich, amount: 50, currency: 'USD' }),
      () => b.ledger.withdraw({ key: 'bt-poor-wd', accountId: poor, amount: 10, currency: 'USD' }),
    ];
    const { results, statements } = await b.oneBatch(0, calls);
    expect(statements.filter(isBatch)).toHaveLength(1);
    const codes = results.map((r) => (r.status === 'rejected' ? (r.reason instanceof RefusalError ? r.reason.code : `not a refusal: ${String(r.reason)}`) : 'ok'));
    expect(codes).toEqual([Refusal.INSUFFICIENT_FUNDS, Refusal.ACCOUNT_NOT_FOUND, Refusal.ACCOUNT_FROZEN, 'ok', 'ok', 'ok']);
    expect(await balances(b.ledger, rich)).toMatchObject({ posted: '450', pendingDebits: '100' });
    expect(await balances(b.ledger, poor)).toMatchObject({ posted: '0', pendingDebits: '0' });
    // Alone, later: the same refusals, replayed from their keys.
    expect(await refusalOf(unbatched.reserve(poorReserve))).toBe(Refusal.INSUFFICIENT_FUNDS);
    expect(await refusalOf(unbatched.withdraw({ key: 'bt-frozen-wd', accountId: frozen, amount: 5, currency: 'USD' }))).toBe(Refusal.ACCOUNT_FROZEN);
    const { rows } = await b.ledger.shards[0]!.pool.query<{ key: string; state: string }>(
      `SELECT key, state FROM idempotency_keys WHERE key = ANY($1::text[]) ORDER BY key`, [[poorReserve.key, 'bt-ghost-dep', 'bt-frozen-wd', richReserve.key]]);
    expect(Object.fromEntries(rows.map((r) => [r.key, r.state]))).toEqual({ [poorReserve.key]: 'refused', 'bt-ghost-dep': 'refused', 'bt-frozen-wd': 'refused', [richReserve.key]: 'done' });
    await expectConsistent(b.ledger);
  });

  it('a key twice in one batch is applied once; the second answer is the first replayed', async () => {
    const a = await fundedAccount(b.ledger, 0, 'bt-dup', 1_000);
    const hold = reserveInput(a, '300', { transferId: fresh('bt-dup') });
    const dep = { key: fresh('bt-dup-dep'), accountId: a, amount: 25, currency: 'USD' };
    const { results, statements } = await b.oneBatch<{ replayed: boolean }>(0, [
      () => b.ledger.reserve(hold),
      () => b.ledger.deposit(dep),
      () => b.ledger.reserve(hold),
      () => b.ledger.deposit(dep),
    ]);
    expect(statements.filter(isBatch)).toHaveLength(1);
    const [r1, d1, r2, d2] = results.map(value);
    expect([r1!.replayed, r2!.replayed].sort()).toEqual([false, true]);
    expect([d1!.replayed, d2!.replayed].sort()).toEqual([false, true]);
    expect({ ...r1, replayed: true }).toEqual({ ...r2, replayed: true });
    expect({ ...d1, replayed: true }).toEqual({ ...d2, replayed: true });
    expect(await balances(b.ledger, a)).toMatchObject({ posted: '1025', pendingDebits: '300' });
    await expectConsistent(b.ledger);
  });

  it('idempotency_keys.account_id is each step\'s own account, and none for a payout out of the ledger after a step with one', async () => {
    // 400 in shard 0's suspense: a posted debit refunded after its account closed.
    const from = await fundedAccount(b.ledger, 0, 'bt-susp', 400);
    const id = fresh('bt-susp-tr');
    const debit = await b.ledger.reserve(reserveInput(from, '400', { transferId: id }));
    await b.ledger.post({ key: `${id}:post-debit`, holdKey: debit.key, accountId: from, transferId: id });
    await b.ledger.setStatus(from, 'closed');
    await b.ledger.refund({ key: `${id}:refund-debit`, holdKey: debit.key, accountId: from, transferId: id });
    const p = await fundedAccount(b.ledger, 0, 'bt-p');
    const q = await fundedAccount(b.ledger, 0, 'bt-q', 100);
    const payee = await fundedAccount(b.ledger, 0, 'bt-payee');
    const keys = { dep: fresh('bt-acc-dep'), out: fresh('bt-acc-out'), into: fresh('bt-acc-into'), wd: fresh('bt-acc-wd') };
    const { results, statements } = await b.oneBatch(0, [
      () => b.ledger.releaseSuspense({ key: keys.out, shard: 0, currency: 'USD', amount: '100' }),
      () => b.ledger.deposit({ key: keys.dep, accountId: p, amount: 7, currency: 'USD' }),
      () => b.ledger.releaseSuspense({ key: keys.into, currency: 'USD', amount: '300', accountId: payee }),
      () => b.ledger.withdraw({ key: keys.wd, accountId: q, amount: 1, currency: 'USD' }),
    ]);
    results.forEach(value);
    const batch = statements.filter(isBatch);
    expect(batch).toHaveLength(1);
    // The payout without an account goes last, right after a step with one: it would inherit its
    // account if the batch did not clear ledger.account before each step.
    const order = batchSteps(batch[0]!);
    expect(order.at(-1)).toMatchObject({ fn: 'ledger_release_suspense', args: expect.arrayContaining([keys.out]) });
    expect(order.at(-1)!.args[6]).toBeNull();
    const { rows } = await b.ledger.shards[0]!.pool.query<{ key: string; account_id: string | null }>(
      'SELECT key, account_id FROM idempotency_keys WHERE key = ANY($1::text[])', [Object.values(keys)]);
    expect(Object.fromEntries(rows.map((r) => [r.key, r.account_id]))).toEqual({ [keys.dep]: p, [keys.out]: null, [keys.into]: payee, [keys.wd]: q });
    expect((await b.ledger.getAccount(payee)).posted).toBe('300');
    expect(await b.ledger.suspenseBalances()).toEqual([]);
    await expectConsistent(b.ledger);

    // Why the clearing matters: the same two calls in one transaction without it.
    const client = await b.ledger.shards[0]!.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT ledger_move(0, 0, 'bt-leak-dep', 'x', 'deposit', $1::text, 1, 'USD')`, [p]);
      await client.query(`SELECT ledger_release_suspense(0, 0, 'bt-leak-out', 'x', 'USD', 1, NULL)`);
      const leak = await client.query<{ account_id: string | null }>(`SELECT account_id FROM idempotency_keys WHERE key = 'bt-leak-out'`);
      expect(leak.rows[0]!.account_id).toBe(p);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('only step functions can be called through ledger_batch, each with its own number of arguments', async () => {
    const pool = b.ledger.shards[0]!.pool;
    await expect(pool.query(`SELECT ledger_batch('[{"fn": "pg_sleep", "args": [1]}]'::jsonb)`)).rejects.toThrow(/pg_sleep is not a step function/);
    await expect(pool.query(`SELECT ledger_batch('[{"fn": "ledger_post", "args": [0, 0, "k"]}]'::jsonb)`)).rejects.toThrow(/ledger_post takes 7 arguments/);
    await expect(pool.query(`SELECT ledger_batch('{"fn": "ledger_post"}'::jsonb)`)).rejects.toThrow(/array of steps/);
    expect((await pool.query(`SELECT ledger_batch('[]'::jsonb) AS x`)).rows[0].x).toEqual([]);
  });
});

describe('a batch that fails as a whole', () => {
  it('a deadlock: nothing of it commits, each step runs again alone, and each caller gets its own answer', async () => {
    const x = await fundedAccount(b.ledger, 0, 'bt-dl', 100);
    const y = await fundedAccount(b.ledger, 0, 'bt-dl', 100);
    const [first, second] = [x, y].sort(compareLockOrder) as [string, string];
    const poor = await fundedAccount(b.ledger, 0, 'bt-dl-poor');
    const blocker = new pg.Client({ connectionString: t.urls[0] });
    await blocker.connect();
    const before = { ...b.batcher(0).stats };
    try {
      // The blocker never detects the deadlock itself: the batch is the side PostgreSQL aborts.
      await blocker.query(`SET deadlock_timeout = '60s'`);
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM accounts WHERE id = $1::text FOR UPDATE', [second]);
      const batch = b.oneBatch<unknown>(0, [
        () => b.ledger.deposit({ key: fresh('bt-dl-1'), accountId: first, amount: 1, currency: 'USD' }),
        () => b.ledger.deposit({ key: fresh('bt-dl-2'), accountId: second, amount: 2, currency: 'USD' }),
        () => b.ledger.reserve(reserveInput(poor, '5')),
      ]);
      // Once the batch holds `first` and waits for `second`, the blocker asks for `first`: a cycle.
      await waitForLockWait(t.urls[0]!, 'ledger_batch');
      // Granted once PostgreSQL has aborted the batch (after deadlock_timeout, 1 s).
      await blocker.query('SELECT 1 FROM accounts WHERE id = $1::text FOR UPDATE', [first]);
      await until('the fallback steps to wait for the blocker', () => b.batcher(0).stats.fallbacks > before.fallbacks);
      await blocker.query('COMMIT');
      const { results, statements } = await batch;
      expect(statements.filter(isBatch)).toHaveLength(1);
      expect(b.batcher(0).stats.fallbacks).toBe(before.fallbacks + 1);
      const [d1, d2, r] = results;
      expect(value(d1!)).toMatchObject({ replayed: false });
      expect(value(d2!)).toMatchObject({ replayed: false });
      expect(reason(r!)).toMatchObject({ code: Refusal.INSUFFICIENT_FUNDS });
      expect((await b.ledger.getAccount(first)).posted).toBe('101');
      expect((await b.ledger.getAccount(second)).posted).toBe('102');
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
      await blocker.end();
    }
    await expectConsistent(b.ledger);
  });

  it('a step raising an internal error: that caller gets the error it gets alone, the others their answers', async () => {
    const pool = b.ledger.shards[0]!.pool;
    await pool.query(`CREATE FUNCTION test_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'boom at %', NEW.entry_id; END $$`);
    await pool.query(`CREATE TRIGGER test_boom BEFORE INSERT ON journal FOR EACH ROW WHEN (NEW.entry_id LIKE 'boom-%') EXECUTE FUNCTION test_boom()`);
    try {
      const a = await fundedAccount(b.ledger, 0, 'bt-boom', 100);
      const before = { ...b.batcher(0).stats };
      const okKeys = [fresh('bt-ok'), fresh('bt-ok')];
      const { results, statements } = await b.oneBatch(0, [
        () => b.ledger.deposit({ key: okKeys[0]!, accountId: a, amount: 1, currency: 'USD' }),
        () => b.ledger.deposit({ key: fresh('boom'), accountId: a, amount: 2, currency: 'USD' }),
        () => b.ledger.withdraw({ key: okKeys[1]!, accountId: a, amount: 4, currency: 'USD' }),
        () => b.ledger.withdraw({ key: fresh('bt-toomuch'), accountId: a, amount: 1_000, currency: 'USD' }),
      ]);
      expect(b.batcher(0).stats.fallbacks).toBe(before.fallbacks + 1);
      // One batch, then the four steps alone.
      expect(statements.filter(isStepCall).map((s) => (isBatch(s) ? 'batch' : 'alone'))).toEqual(['alone', 'batch', 'alone', 'alone', 'alone', 'alone']);
      expect(value(results[0]!)).toMatchObject({ replayed: false });
      const boom = reason(results[1]!);
      expect(boom).not.toBeInstanceOf(TransientError);
      expect(boom).not.toBeInstanceOf(RefusalError);
      expect(String((boom as Error).message)).toMatch(/boom at boom-/);
      const aloneError = await unbatched.deposit({ key: fresh('boom'), accountId: a, amount: 2, currency: 'USD' }).catch((e: unknown) => e);
      expect((aloneError as Error).constructor).toBe((boom as Error).constructor);
      expect(value(results[2]!)).toMatchObject({ replayed: false });
      expect(reason(results[3]!)).toMatchObject({ code: Refusal.INSUFFICIENT_FUNDS });
      expect((await b.ledger.getAccount(a)).posted).toBe('97');
    } finally {
      await pool.query('DROP TRIGGER test_boom ON journal');
      await pool.query('DROP FUNCTION test_boom()');
    }
    await expectConsistent(b.ledger);
  });

  it('a lock timeout: the step on the locked account times out alone as it would have; the others apply', async () => {
    const locked = await fundedAccount(b.ledger, 0, 'bt-lt', 100);
    const free = await fundedAccount(b.ledger, 0, 'bt-lt-free', 100);
    const blocker = new pg.Client({ connectionString: t.urls[0] });
    await blocker.connect();
    const keys = [fresh('bt-lt'), fresh('bt-lt')];
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM accounts WHERE id = $1::text FOR UPDATE', [locked]);
      const { results } = await b.oneBatch(0, [
        () => b.ledger.deposit({ key: keys[0]!, accountId: locked, amount: 1, currency: 'USD' }),
        () => b.ledger.deposit({ key: keys[1]!, accountId: free, amount: 1, currency: 'USD' }),
      ]);
      const timedOut = reason(results[0]!);
      expect(timedOut).toBeInstanceOf(TransientError);
      expect(timedOut).toMatchObject({ sqlState: '55P03' });
      expect(value(results[1]!)).toMatchObject({ replayed: false });
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    // What the caller's retry does: applied once.
    expect((await b.ledger.deposit({ key: keys[0]!, accountId: locked, amount: 1, currency: 'USD' })).replayed).toBe(false);
    expect((await b.ledger.getAccount(locked)).posted).toBe('101');
    expect((await b.ledger.getAccount(free)).posted).toBe('101');
  });

  it('a connection lost mid-batch: each step runs again alone on a new connection, once', async () => {
    const a = await fundedAccount(b.ledger, 0, 'bt-kill', 100);
    const c = await fundedAccount(b.ledger, 0, 'bt-kill', 100);
    const blocker = new pg.Client({ connectionString: t.urls[0] });
    await blocker.connect();
    const before = { ...b.batcher(0).stats };
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM accounts WHERE id = $1::text FOR UPDATE', [c]);
      const batch = b.oneBatch(0, [
        () => b.ledger.deposit({ key: fresh('bt-kill'), accountId: a, amount: 3, currency: 'USD' }),
        () => b.ledger.deposit({ key: fresh('bt-kill'), accountId: c, amount: 4, currency: 'USD' }),
      ]);
      const pid = await waitForLockWait(t.urls[0]!, 'ledger_batch');
      await blocker.query('SELECT pg_terminate_backend($1::int)', [pid]);
      await until('the fallback', () => b.batcher(0).stats.fallbacks > before.fallbacks);
      await blocker.query('COMMIT');
      const { results } = await batch;
      expect(results.map((r) => value(r).replayed)).toEqual([false, false]);
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
      await blocker.end();
    }
    expect((await b.ledger.getAccount(a)).posted).toBe('103');
    expect((await b.ledger.getAccount(c)).posted).toBe('104');
    await expectConsistent(b.ledger);
  });
});

describe('a step alone that PostgreSQL aborts to break a deadlock', () => {
  it('runs again and its caller gets its answer, not the fault', async () => {
    // A batch holds an account across its steps, so a step alone racing one of them on the same
    // hold or key can now be in a cycle. Here another session plays that batch: it holds the hold,
    // then claims the step's key while the step (holding its key) waits for the hold.
    const a = await fundedAccount(b.ledger, 0, 'bt-victim', 100);
    const transferId = fresh('bt-victim');
    const hold = await b.ledger.reserve(reserveInput(a, '10', { transferId }));
    const key = `${transferId}:post-debit`;
    const other = new pg.Client({ connectionString: t.urls[0] });
    await other.connect();
    try {
      await other.query(`SET deadlock_timeout = '60s'`); // the step detects the cycle, and is aborted
      await other.query('BEGIN');
      await other.query('SELECT 1 FROM holds WHERE key = $1::text FOR UPDATE', [hold.key]);
      const posting = b.ledger.post({ key, holdKey: hold.key, accountId: a, transferId });
      await waitForLockWait(t.urls[0]!, 'ledger_post');
      await other.query(`INSERT INTO idempotency_keys (scope, key, operation, fingerprint, state, outcome) VALUES ('transfer', $1::text, 'post', 'x', 'done', '{}')`, [key]);
      // The step was aborted (the insert went through); its second attempt now waits for this session.
      await waitForLockWait(t.urls[0]!, 'ledger_post');
      await other.query('ROLLBACK');
      const posted = await posting;
      expect(posted).toMatchObject({ replayed: false, hold: { state: 'posted' } });
    } finally {
      await other.query('ROLLBACK').catch(() => undefined);
      await other.end();
    }
    expect(await balances(b.ledger, a)).toMatchObject({ posted: '90', pendingDebits: '0' });
  });
});

/** The pid of the backend running `what` once it waits for a lock. */
async function waitForLockWait(url: string, what: string): Promise<number> {
  const probe = new pg.Client({ connectionString: url });
  await probe.connect();
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { rows } = await probe.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE $1::text`, [`%${what}%`]);
      if (rows[0]) return rows[0].pid;
      if (Date.now() > deadline) throw new Error(`no backend running ${what} waits for a lock`);
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    await probe.end();
  }
}

describe('a moved account inside a batch', () => {
  it('answers "moved" for its own step only: that step is rerouted to the new shard, the others apply here', async () => {
    const m = await createTestLedger(2);
    const mover = Ledger.connect({ shardUrls: m.urls, slotMap: evenSlotMap(2), clockOffsetMs: m.clock.offset, poolSize: 4 });
    const stale = await Batching.open(m);
    try {
      const idIn = (prefix: string, from: number, to: number) => {
        for (let i = 0; ; i++) if (slotOf(`${prefix}-${i}`) >= from && slotOf(`${prefix}-${i}`) <= to) return `${prefix}-${i}`;
      };
      const leaving = idIn('bt-leaving', 0, 1023);
      const staying = idIn('bt-staying', 4096, 8191);
      for (const id of [leaving, staying]) {
        await stale.ledger.openAccount({ id, currency: 'USD' });
        await stale.ledger.deposit({ key: `seed-${id}`, accountId: id, amount: 100, currency: 'USD' });
      }
      expect(stale.ledger.shardFor(leaving).shard).toBe(0);
      expect((await moveSlots(mover, { from: 0, to: 1023 }, 1)).state).toBe('done');
      // `stale` still has the first map: both steps go to shard 0, in one batch.
      const redirects = stale.ledger.redirects;
      const keys = { leaving: fresh('bt-mv'), staying: fresh('bt-mv') };
      const { results, statements } = await stale.oneBatch(0, [
        () => stale.ledger.deposit({ key: keys.leaving, accountId: leaving, amount: 5, currency: 'USD' }),
        () => stale.ledger.deposit({ key: keys.staying, accountId: staying, amount: 6, currency: 'USD' }),
      ]);
      expect(statements.filter(isBatch)).toHaveLength(1);
      const [moved, here] = results.map(value);
      expect(moved!.replayed).toBe(false);
      expect(moved!.postings.map((p) => p.shard)).toEqual([1, 1]);
      expect(here!.postings.map((p) => p.shard)).toEqual([0, 0]);
      expect(stale.ledger.redirects).toBe(redirects + 1);
      const keysOn = async (shard: number) => (await m.ledger.shards[shard]!.pool.query<{ key: string }>(
        'SELECT key FROM idempotency_keys WHERE key = ANY($1::text[]) ORDER BY key', [Object.values(keys)])).rows.map((r) => r.key);
      expect(await keysOn(0)).toEqual([keys.staying]);
      expect(await keysOn(1)).toEqual([keys.leaving]);
      expect(await stale.ledger.getAccount(leaving)).toMatchObject({ shard: 1, posted: '105' });
      expect(await stale.ledger.getAccount(staying)).toMatchObject({ shard: 0, posted: '106' });
      expect((await stale.ledger.verify()).violations).toEqual([]);
    } finally {
      await stale.close();
      await mover.close();
      await m.drop();
    }
  });
});

describe('LEDGER_BATCH_MAX and LEDGER_BATCH_IN_FLIGHT', () => {
  it('default to 32 steps and 2 calls; 1 turns batching off; more than 64 steps is refused', () => {
    expect(batchSettingsFromEnv({})).toEqual({ max: 32, inFlight: 2 });
    expect(batchSettingsFromEnv({ LEDGER_BATCH_MAX: '1', LEDGER_BATCH_IN_FLIGHT: '2' })).toEqual({ max: 1, inFlight: 2 });
    expect(() => batchSettingsFromEnv({ LEDGER_BATCH_MAX: '65' })).toThrow(/at most 64/);
    expect(() => batchSettingsFromEnv({ LEDGER_BATCH_MAX: '0' })).toThrow(/positive integer/);
  });
});
