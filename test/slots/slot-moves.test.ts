import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Refusal } from '../../src/domain/codes.js';
import { evenSlotMap, slotOf } from '../../src/domain/slots.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { addShard, moveSlots, slotStatus, SlotMoveRefused } from '../../src/ledger/slot-mover.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { refusalCodeOf as refusalOf } from '../support/refusals.js';

/**
 * Online slot moves on four shards (even split: shard 0 has 0-4095, 1 4096-8191, 2 8192-12287,
 * 3 12288-16383). `t.ledger` plays a worker that keeps its first map: every step it sends after a
 * move goes to the old shard first and must be redirected, applied once, or replayed.
 */
let t: TestLedger;
let mover: Ledger;
const TTL = 120_000;

beforeAll(async () => {
  t = await createTestLedger(4);
  await t.ledger.checkIdentity();
  mover = Ledger.connect({ shardUrls: t.urls, slotMap: evenSlotMap(4), clockOffsetMs: t.clock.offset, poolSize: 4 });
});
afterAll(async () => {
  await mover?.close();
  await t?.drop();
});

/** An id whose slot lies in from..to. */
function idIn(prefix: string, from: number, to: number): string {
  for (let i = 0; i < 200_000; i++) {
    const id = `${prefix}-${i}`;
    const slot = slotOf(id);
    if (slot >= from && slot <= to) return id;
  }
  throw new Error(`no ${prefix} id in slots ${from}-${to}`);
}

async function rowsOn(shard: number, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await t.ledger.shards[shard]!.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM (${sql}) x`, params);
  return rows[0]!.n;
}

async function open(id: string, amount = 1_000n): Promise<void> {
  await t.ledger.openAccount({ id, currency: 'USD' });
  if (amount > 0n) await t.ledger.deposit({ key: `seed-${id}`, accountId: id, amount, currency: 'USD' });
}

const reserve = (transferId: string, accountId: string, side: 'debit' | 'credit', amount: bigint, counterparty?: string) =>
  t.ledger.reserve({ key: `${transferId}:${side}`, transferId, accountId, side, amount, currency: 'USD', ttlMs: TTL, ...(counterparty ? { counterparty } : {}) });

describe('the slot map in the database', () => {
  it('is seeded once, versioned, and the SQL slot hash is the same as the code\'s', async () => {
    const { rows } = await t.ledger.shards[0]!.pool.query<{ map_version: string; slot_map: string }>('SELECT map_version, slot_map FROM ledger_control');
    expect(rows[0]).toEqual({ map_version: '1', slot_map: '0-4095:0,4096-8191:1,8192-12287:2,12288-16383:3' });
    const ids = Array.from({ length: 300 }, (_, i) => `acct-${i}-${'x'.repeat(i % 17)}`);
    const { rows: slots } = await t.ledger.shards[1]!.pool.query<{ s: number[] }>('SELECT array_agg(ledger_slot(id) ORDER BY n) AS s FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n)', [ids]);
    expect(slots[0]!.s).toEqual(ids.map(slotOf));
  });

  it('a map with gaps, overlaps or unknown shards in the control table is refused with a clear error', async () => {
    const control = t.ledger.shards[0]!.pool;
    const reader = Ledger.connect({ shardUrls: t.urls, slotMap: evenSlotMap(4), poolSize: 2 });
    try {
      for (const [bad, why] of [['0-4095:0,4097-16383:1', /misses slot 4096/], ['0-4095:0,4095-16383:1', /overlaps at slot 4096/], ['0-8191:0,8192-16383:7', /names shard 7, but only 4 exist/]] as const) {
        await control.query(`UPDATE ledger_control SET slot_map = $1::text, map_version = map_version + 1000`, [bad]);
        try {
          await expect(reader.refreshMap()).rejects.toThrow(why);
          await expect(reader.refreshMap()).rejects.toThrow(/slot map from the control table \(version \d+\) is refused/);
        } finally {
          await control.query(`UPDATE ledger_control SET slot_map = '0-4095:0,4096-8191:1,8192-12287:2,12288-16383:3', map_version = map_version - 1000`);
        }
      }
    } finally {
      await reader.close();
    }
  });
});

describe('moving a slot range while steps run', () => {
  // Shard 0's first quarter moves to shard 2; the worker-like ledger keeps the old map.
  const RANGE = { from: 0, to: 1023 };
  const a = idIn('alice', 0, 1023);
  const b = idIn('bob', 4096, 8191); // stays on shard 1
  const lazy = idIn('lazy', 1024, 4095); // shard 0, not in the range

  it('moves pending and posted holds, tombstones, refusals and replays; old keys replay on the new shard', async () => {
    await open(a);
    await open(b);
    await open(lazy);
    // posted transfer a → b
    await reserve('t1', a, 'debit', 100n, b);
    await reserve('t1', b, 'credit', 100n, a);
    await t.ledger.post({ key: 't1:post-debit', holdKey: 't1:debit', accountId: a, transferId: 't1' });
    await t.ledger.post({ key: 't1:post-credit', holdKey: 't1:credit', accountId: b, transferId: 't1' });
    // pending debit hold
    await reserve('t2', a, 'debit', 50n, b);
    // tombstone: void before the reservation
    await t.ledger.void({ key: 't3:void-debit', holdKey: 't3:debit', accountId: a, transferId: 't3' });
    // sticky refusal
    expect(await refusalOf(reserve('t4', a, 'debit', 10_000n, b))).toBe(Refusal.INSUFFICIENT_FUNDS);
    const before = await t.ledger.getAccount(a);
    expect(before.shard).toBe(0);

    const move = await moveSlots(mover, RANGE, 2);
    expect(move).toMatchObject({ state: 'done', source: 0, target: 2, movedIds: 1 });
    expect(mover.mapVersion).toBe(2);
    expect(await rowsOn(0, `SELECT 1 FROM accounts WHERE id = $1 UNION ALL SELECT 1 FROM holds WHERE account_id = $1 UNION ALL SELECT 1 FROM idempotency_keys WHERE account_id = $1`, [a])).toBe(0);
    expect(await rowsOn(2, `SELECT 1 FROM holds WHERE account_id = $1`, [a])).toBe(2);

    // The worker still has map version 1: every call goes to shard 0 first.
    expect(t.ledger.mapVersion).toBe(1);
    const redirects = t.ledger.redirects;
    expect((await t.ledger.deposit({ key: `seed-${a}`, accountId: a, amount: 1_000n, currency: 'USD' })).replayed).toBe(true);
    expect((await reserve('t1', a, 'debit', 100n, b)).replayed).toBe(true);
    expect((await t.ledger.post({ key: 't1:post-debit', holdKey: 't1:debit', accountId: a, transferId: 't1' })).replayed).toBe(true);
    expect(await refusalOf(reserve('t3', a, 'debit', 10n, b))).toBe(Refusal.FENCED);
    expect(await refusalOf(reserve('t4', a, 'debit', 10_000n, b))).toBe(Refusal.INSUFFICIENT_FUNDS);
    expect(t.ledger.redirects).toBeGreaterThan(redirects);
    // the pending hold is posted on the new shard, once
    const posted = await t.ledger.post({ key: 't2:post-debit', holdKey: 't2:debit', accountId: a, transferId: 't2' });
    expect(posted.replayed).toBe(false);
    expect(posted.postings!.every((p) => p.shard === 2)).toBe(true);
    expect((await t.ledger.post({ key: 't2:post-debit', holdKey: 't2:debit', accountId: a, transferId: 't2' })).replayed).toBe(true);
    const after = await t.ledger.getAccount(a);
    expect(after).toMatchObject({ shard: 2, posted: String(BigInt(before.posted) - 50n), pendingDebits: '0' });
    await t.ledger.refreshMap();
    expect(t.ledger.mapVersion).toBe(2);
    expect(t.ledger.shardFor(a).shard).toBe(2);
    // refund the t2 debit back through the moved account, then verify every shard
    await t.ledger.refund({ key: 't2:refund-debit', holdKey: 't2:debit', accountId: a, transferId: 't2' });
    const report = await t.ledger.verify();
    expect(report.violations).toEqual([]);
  });

  it('a step arriving at the old shard during a hand-over runs before it there or after it on the new shard, once', async () => {
    const c = idIn('carol', 1024, 2047);
    const d = idIn('dave', 1024, 2047);
    await open(c);
    await open(d);
    await reserve('t5', c, 'debit', 30n, d);
    let release!: () => void;
    const paused = new Promise<void>((r) => (release = r));
    let reached!: () => void;
    const atPause = new Promise<void>((r) => (reached = r));
    const moving = moveSlots(mover, { from: 1024, to: 2047 }, 3, {
      batchSize: 1,
      afterTargetCommit: async () => {
        reached();
        await paused;
      },
    });
    await atPause; // the first id is committed on shard 3, not yet let go of by shard 0
    const first = [c, d].sort()[0]!;
    // A step on the id being handed over waits for the hand-over; one on an unmoved id of the
    // migrating range runs on the source meanwhile.
    let stepDone = false;
    const step = (first === c
      ? t.ledger.post({ key: 't5:post-debit', holdKey: 't5:debit', accountId: c, transferId: 't5' })
      : t.ledger.deposit({ key: 'late-dep', accountId: d, amount: 5n, currency: 'USD' })).then((r) => ((stepDone = true), r));
    await new Promise((r) => setTimeout(r, 300));
    expect(stepDone).toBe(false);
    release();
    const [result, move] = await Promise.all([step, moving]);
    expect(move.state).toBe('done');
    expect(result.replayed).toBe(false);
    expect(result.postings!.every((p) => p.shard === 3)).toBe(true);
    expect(await rowsOn(0, `SELECT 1 FROM journal WHERE account_id = ANY($1)`, [[c, d]])).toBe(0);
    expect((await t.ledger.verify()).violations).toEqual([]);
  });

  it('two overlapping moves cannot both proceed, and a move to a down shard or one of another identity refuses and changes nothing', async () => {
    const e = idIn('erin', 2048, 2100);
    await open(e);
    let release!: () => void;
    const paused = new Promise<void>((r) => (release = r));
    let reached!: () => void;
    const atPause = new Promise<void>((r) => (reached = r));
    const first = moveSlots(mover, { from: 2048, to: 3071 }, 1, { afterTargetCommit: async () => { reached(); await paused; } });
    await atPause;
    const other = Ledger.connect({ shardUrls: t.urls, slotMap: evenSlotMap(4), poolSize: 2 });
    try {
      await expect(moveSlots(other, { from: 3000, to: 3100 }, 2)).rejects.toThrow(/overlap move #\d+ .*still running/);
      await expect(moveSlots(other, { from: 2048, to: 3071 }, 1)).rejects.toThrow(/being run by another process/);
    } finally {
      release();
      await other.close();
    }
    expect((await first).state).toBe('done');

    // A registered shard that is down: the move is refused before anything is written.
    const control = t.ledger.shards[0]!.pool;
    const count = async () => (await control.query<{ n: number }>('SELECT count(*)::int AS n FROM slot_moves')).rows[0]!.n;
    const movesBefore = await count();
    const statesBefore = await rowsOn(0, `SELECT 1 FROM slot_state WHERE state = 'owned'`);
    await control.query(`INSERT INTO ledger_shards (shard, url) VALUES (4, 'postgres://nobody@127.0.0.1:1/down')`);
    const fresh = Ledger.connect({ shardUrls: t.urls, slotMap: evenSlotMap(4), poolSize: 2, pool: { acquireTimeoutMs: 2_000 } });
    try {
      await expect(moveSlots(fresh, { from: 3072, to: 3100 }, 4)).rejects.toThrow(SlotMoveRefused);
      await expect(moveSlots(fresh, { from: 3072, to: 3100 }, 4)).rejects.toThrow(/shard 4 is unreachable/);
      await expect(moveSlots(fresh, { from: 3072, to: 3100 }, 9)).rejects.toThrow(/shard 9 is not registered/);
    } finally {
      await fresh.close();
      await control.query('DELETE FROM ledger_shards WHERE shard = 4');
    }
    // A registered shard whose database has another identity (shard 1's database registered as 4).
    await control.query('INSERT INTO ledger_shards (shard, url) VALUES (4, $1::text)', [t.urls[1]]);
    const confused = Ledger.connect({ shardUrls: t.urls, slotMap: evenSlotMap(4), poolSize: 2, pool: { acquireTimeoutMs: 2_000 } });
    try {
      await expect(moveSlots(confused, { from: 3072, to: 3100 }, 4)).rejects.toThrow(/shard 4 is unreachable or not the shard it is registered as/);
    } finally {
      await confused.close();
      await control.query('DELETE FROM ledger_shards WHERE shard = 4');
    }
    expect(await count()).toBe(movesBefore);
    expect(await rowsOn(0, `SELECT 1 FROM slot_state WHERE state = 'owned'`)).toBe(statesBefore);
  });

  it('a move interrupted mid-batch leaves the source serving; running it again finishes it', async () => {
    const ids = ['f', 'g', 'h', 'i'].map((p) => idIn(`frank-${p}`, 3072, 4095));
    for (const id of ids) await open(id);
    await reserve('t6', ids[0]!, 'debit', 10n, ids[1]);
    await reserve('t6', ids[1]!, 'credit', 10n, ids[0]);
    await expect(moveSlots(mover, { from: 3072, to: 4095 }, 1, {
      batchSize: 2,
      afterTargetCommit: (n) => {
        if (n === 2) throw new Error('mover killed (simulated)');
      },
    })).rejects.toThrow(/simulated/);
    const status = await slotStatus(mover);
    const running = status.moves.find((m) => m.state === 'running')!;
    expect(running).toMatchObject({ fromSlot: 3072, toSlot: 4095, phase: 'copying', movedIds: 2 });
    // The third id was copied to shard 1 but never let go of: shard 0 still serves it, and the step
    // changes it there.
    const third = [...ids].sort()[2]!;
    await t.ledger.deposit({ key: 'between', accountId: third, amount: 7n, currency: 'USD' });
    for (const id of ids) await t.ledger.deposit({ key: `during-${id}`, accountId: id, amount: 1n, currency: 'USD' });
    const resumed = await moveSlots(mover, { from: 3072, to: 4095 }, 1);
    expect(resumed).toMatchObject({ id: running.id, state: 'done' });
    expect(await t.ledger.getAccount(third)).toMatchObject({ shard: 1, posted: '1008' });
    await t.ledger.post({ key: 't6:post-debit', holdKey: 't6:debit', accountId: ids[0]!, transferId: 't6' });
    await t.ledger.post({ key: 't6:post-credit', holdKey: 't6:credit', accountId: ids[1]!, transferId: 't6' });
    expect((await t.ledger.verify()).violations).toEqual([]);
    const final = await slotStatus(mover);
    expect(final.map).toEqual([{ from: 0, to: 1023, shard: 2 }, { from: 1024, to: 2047, shard: 3 }, { from: 2048, to: 4095, shard: 1 }, { from: 4096, to: 8191, shard: 1 }, { from: 8192, to: 12287, shard: 2 }, { from: 12288, to: 16383, shard: 3 }].reduce<{ from: number; to: number; shard: number }[]>((m, r) => {
      const last = m[m.length - 1];
      if (last && last.shard === r.shard && last.to + 1 === r.from) last.to = r.to;
      else m.push({ ...r });
      return m;
    }, []));
  });

  it('moves a range back, and to a shard added while running; accounts opened in a migrating range land once', async () => {
    const back = await moveSlots(mover, { from: 0, to: 1023 }, 0);
    expect(back.state).toBe('done');
    expect(await t.ledger.getAccount(a)).toMatchObject({ shard: 0 });
    // a fifth shard: an empty database
    const admin = new pg.Client({ connectionString: t.urls[0] });
    await admin.connect();
    const db = `${t.databases[0]}_x`;
    await admin.query(`CREATE DATABASE ${db}`);
    await admin.end();
    t.databases.push(db);
    const url = new URL(t.urls[0]!);
    url.pathname = `/${db}`;
    await expect(addShard(mover, 'postgres://nobody@127.0.0.1:1/none')).rejects.toThrow(/unreachable/);
    const sameAsOne = new URL(t.urls[1]!);
    sameAsOne.searchParams.set('application_name', 'x');
    await expect(addShard(mover, sameAsOne.toString())).rejects.toThrow(/already is shard 1/);
    expect(await addShard(mover, url.toString())).toEqual({ shard: 4, created: true });
    expect(await addShard(mover, url.toString())).toEqual({ shard: 4, created: false });
    // accounts opened while the range migrates, by the worker with the old map
    let opened = 0;
    const opener = (async () => {
      for (let i = 0; i < 15; i++) {
        await open(idIn(`new-${i}`, 0, 1023), 10n);
        opened++;
      }
    })();
    const m = await moveSlots(mover, { from: 0, to: 1023 }, 4, { batchSize: 1 });
    await opener;
    expect(m.state).toBe('done');
    expect(opened).toBe(15);
    // anything opened after the source let go is handed to shard 4 by redirect; nothing is left on 0
    expect(await rowsOn(0, `SELECT 1 FROM accounts WHERE kind = 'customer' AND ledger_slot(id) BETWEEN 0 AND 1023`)).toBe(0);
    expect(await t.ledger.getAccount(a)).toMatchObject({ shard: 4 });
    const report = await t.ledger.verify();
    expect(report.violations).toEqual([]);
    expect(report.shards.map((s) => s.shard)).toEqual([0, 1, 2, 3, 4]);
  });
});
