import type pg from 'pg';
import { assignRange, formatSlotMap, ownersOf, parseSlotMap, type SlotRange } from '../domain/slots.js';
import { currencyExponent } from '../domain/money.js';
import { migrate } from '../db/migrate.js';
import { createPool, withTransaction } from '../db/transaction.js';
import type { Ledger } from './ledger.js';
import type { ShardContext } from './shard-context.js';
import { initSlotState, LOCKS, readControl } from './topology.js';

/**
 * Online slot moves, the way Redis Cluster migrates slots (docs/scaling.md): the range is marked
 * importing on the target and migrating on the source; every account id of the range is handed over
 * one at a time under its lock (copied to the target and committed there, then deleted from the
 * source and marked moved, in one source transaction that held the id's lock throughout); when the
 * source has none left it lets go of the range, the target takes it, and the map gets a new version.
 * The move's state lives in shard 0's slot_moves: a mover killed at any point is resumed by running
 * the same `slots move` (or `slots resume`) again.
 */

/** A move the operator must change something for; nothing was changed. */
export class SlotMoveRefused extends Error {
  override readonly name = 'SlotMoveRefused';
}

export interface MoveRow {
  id: number;
  fromSlot: number;
  toSlot: number;
  source: number;
  target: number;
  state: 'running' | 'done';
  phase: 'marking' | 'copying' | 'finishing' | 'done';
  movedIds: number;
  remaining: number | null;
  startedAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

type DbMove = { id: string; from_slot: number; to_slot: number; source: number; target: number; state: MoveRow['state']; phase: MoveRow['phase']; moved_ids: number; remaining: number | null; started_at: Date; updated_at: Date; finished_at: Date | null };

function moveRow(r: DbMove): MoveRow {
  return {
    id: Number(r.id), fromSlot: r.from_slot, toSlot: r.to_slot, source: r.source, target: r.target, state: r.state, phase: r.phase,
    movedIds: r.moved_ids, remaining: r.remaining, startedAt: r.started_at.toISOString(), updatedAt: r.updated_at.toISOString(), finishedAt: r.finished_at?.toISOString() ?? null,
  };
}

export interface MoveOptions {
  /** Account ids handed over per batch (the cut lock `verify` waits on is held per batch). */
  batchSize?: number;
  log?: (line: string) => void;
  /** Test hook: called after an id was committed on the target, before the source lets go of it. */
  afterTargetCommit?: (movedSoFar: number) => void | Promise<void>;
}

/** Account ids of the range still on the source (accounts, holds, idempotency records: any of them). */
const UNMOVED = `
  SELECT id FROM (
    SELECT id FROM accounts WHERE kind = 'customer' AND ledger_slot(id) BETWEEN $1::int AND $2::int
    UNION SELECT account_id FROM holds WHERE ledger_slot(account_id) BETWEEN $1::int AND $2::int
    UNION SELECT account_id FROM idempotency_keys WHERE account_id IS NOT NULL AND ledger_slot(account_id) BETWEEN $1::int AND $2::int
  ) ids WHERE NOT EXISTS (SELECT 1 FROM slot_moved_ids m WHERE m.account_id = ids.id AND m.direction = 'out')
  ORDER BY id COLLATE "C" LIMIT $3::int`;

/** The journal rows an account id's history consists of: its legs and the other legs of the same entries. */
const ENTRIES_OF = `
  SELECT j.* FROM journal j
  WHERE j.hold_key IN (SELECT key FROM holds WHERE account_id = $1::text)
     OR (j.hold_key IS NULL AND j.entry_id IN (SELECT entry_id FROM journal WHERE account_id = $1::text AND hold_key IS NULL))`;

const MOVE_COLUMNS = 'id, from_slot, to_slot, source, target, state, phase, moved_ids, remaining, started_at, updated_at, finished_at';

/** Starts moving slots from..to to `target` (or resumes the same move, if it is running). */
export async function moveSlots(ledger: Ledger, range: { from: number; to: number }, target: number, options: MoveOptions = {}): Promise<MoveRow> {
  await ledger.topology();
  await ledger.refreshMap();
  const control = ledger.shards[0]!;
  if (!Number.isInteger(target) || target < 0 || target >= ledger.shards.length) {
    throw new SlotMoveRefused(`shard ${target} is not registered (shards 0-${ledger.shards.length - 1}; add one with \`transfer shards add URL\`)`);
  }
  await reachable(ledger, target);
  const { rows: running } = await control.pool.query<DbMove>(
    `SELECT ${MOVE_COLUMNS} FROM slot_moves WHERE state = 'running' AND int4range(from_slot, to_slot, '[]') && int4range($1::int, $2::int, '[]')`,
    [range.from, range.to],
  );
  const same = running.find((m) => m.from_slot === range.from && m.to_slot === range.to && m.target === target);
  if (same && running.length === 1) {
    options.log?.(`move #${same.id} of slots ${range.from}-${range.to} to shard ${target} is unfinished: resuming it`);
    return runMove(ledger, moveRow(same), options);
  }
  if (running.length > 0) {
    throw new SlotMoveRefused(`slots ${range.from}-${range.to} overlap move #${running[0]!.id} (slots ${running[0]!.from_slot}-${running[0]!.to_slot} to shard ${running[0]!.target}), still running: finish it first (\`transfer slots resume ${running[0]!.id}\`)`);
  }
  const owners = ownersOf(ledger.slotMap, range.from, range.to);
  if (owners.length !== 1) throw new SlotMoveRefused(`slots ${range.from}-${range.to} are on shards ${owners.join(', ')}: move each shard's part on its own`);
  const source = owners[0]!;
  if (source === target) {
    // Run again after it finished (the mover's answer was lost): the same move, done.
    const { rows: [done] } = await control.pool.query<DbMove>(
      `SELECT ${MOVE_COLUMNS} FROM slot_moves WHERE state = 'done' AND from_slot = $1::int AND to_slot = $2::int AND target = $3::int ORDER BY id DESC LIMIT 1`,
      [range.from, range.to, target],
    );
    if (done) return moveRow(done);
    throw new SlotMoveRefused(`slots ${range.from}-${range.to} are already on shard ${target}`);
  }
  await reachable(ledger, source);
  let row: DbMove;
  try {
    const inserted = await control.pool.query<DbMove>(
      `INSERT INTO slot_moves (from_slot, to_slot, source, target) VALUES ($1::int, $2::int, $3::int, $4::int) RETURNING ${MOVE_COLUMNS}`,
      [range.from, range.to, source, target],
    );
    row = inserted.rows[0]!;
  } catch (error) {
    if ((error as { code?: string }).code === '23P01') throw new SlotMoveRefused(`slots ${range.from}-${range.to} overlap a move that started at the same moment: run \`transfer slots status\``);
    throw error;
  }
  options.log?.(`move #${row.id}: slots ${range.from}-${range.to} from shard ${source} to shard ${target}`);
  return runMove(ledger, moveRow(row), options);
}

/** Resumes one unfinished move, or every one. */
export async function resumeMoves(ledger: Ledger, id: number | undefined, options: MoveOptions = {}): Promise<MoveRow[]> {
  await ledger.topology();
  const { rows } = await ledger.shards[0]!.pool.query<DbMove>(
    `SELECT ${MOVE_COLUMNS} FROM slot_moves WHERE state = 'running' AND ($1::bigint IS NULL OR id = $1::bigint) ORDER BY id`,
    [id ?? null],
  );
  if (id !== undefined && rows.length === 0) throw new SlotMoveRefused(`move #${id} is not running (see \`transfer slots status\`)`);
  const done: MoveRow[] = [];
  for (const row of rows) done.push(await runMove(ledger, moveRow(row), options));
  return done;
}

async function reachable(ledger: Ledger, shard: number): Promise<ShardContext> {
  try {
    const ctx = await ledger.shardNumber(shard);
    await ctx.pool.query('SELECT 1 FROM slot_state LIMIT 1');
    return ctx;
  } catch (error) {
    throw new SlotMoveRefused(`shard ${shard} is unreachable or not the shard it is registered as: ${(error as Error).message}`);
  }
}

async function runMove(ledger: Ledger, move: MoveRow, options: MoveOptions): Promise<MoveRow> {
  const log = options.log ?? (() => undefined);
  const control = ledger.shards[0]!;
  const [src, tgt] = [await reachable(ledger, move.source), await reachable(ledger, move.target)];
  const lock = await control.pool.connect();
  let broken: Error | undefined;
  try {
    const { rows: [got] } = await lock.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::int, $2::int) AS ok', [LOCKS.move, move.id]);
    if (!got!.ok) throw new SlotMoveRefused(`move #${move.id} is being run by another process right now`);
    const setPhase = (phase: MoveRow['phase']) =>
      control.pool.query(`UPDATE slot_moves SET phase = $2::text, updated_at = now() WHERE id = $1::bigint AND state = 'running'`, [move.id, phase]);
    if (move.phase === 'marking') {
      await mark(tgt, move, 'absent', 'importing', move.source);
      await mark(src, move, 'owned', 'migrating', move.target);
      await setPhase('copying');
      log(`move #${move.id}: slots ${move.fromSlot}-${move.toSlot} migrating on shard ${move.source}, importing on shard ${move.target}`);
    }
    if (move.phase !== 'done') {
      for (;;) {
        await copyAll(lock, control, src, tgt, move, options);
        await setPhase('finishing');
        if (await closeSource(src, move)) break;
      }
      await openTarget(tgt, move);
      await publishMap(ledger, control, move);
      log(`move #${move.id}: done, slots ${move.fromSlot}-${move.toSlot} on shard ${move.target}`);
    }
    await ledger.refreshMap();
    const { rows: [row] } = await control.pool.query<DbMove>(`SELECT ${MOVE_COLUMNS} FROM slot_moves WHERE id = $1::bigint`, [move.id]);
    return moveRow(row!);
  } catch (error) {
    if (!(error instanceof SlotMoveRefused)) broken = error as Error;
    throw error;
  } finally {
    await lock.query('SELECT pg_advisory_unlock_all()').catch((e: Error) => (broken ??= e));
    lock.release(broken);
  }
}

/**
 * One side's slots enter the move: the target's from absent to importing, then the source's from
 * owned to migrating. Under the slot rows' locks, so the source's change waits for the steps in flight
 * on these slots (they hold key-share locks on the rows). The rows are locked in slot order, the order
 * a batch of steps takes its key-share locks in, so a move and a batch never wait on each other in a
 * cycle. Idempotent: a resumed move finds it done.
 */
async function mark(ctx: ShardContext, move: MoveRow, from: 'absent' | 'owned', to: 'importing' | 'migrating', peer: number): Promise<void> {
  await withTransaction(ctx.pool, async (client) => {
    await client.query('SELECT 1 FROM slot_state WHERE slot BETWEEN $1::int AND $2::int ORDER BY slot FOR UPDATE', [move.fromSlot, move.toSlot]);
    await client.query(
      `UPDATE slot_state SET state = $5::text, peer = $3::int, move_id = $4::bigint WHERE slot BETWEEN $1::int AND $2::int AND state = $6::text`,
      [move.fromSlot, move.toSlot, peer, move.id, to, from],
    );
    await expectStates(client, move, to, `shard ${ctx.shard}`);
  });
}

async function expectStates(client: pg.PoolClient, move: MoveRow, state: string, where: string): Promise<void> {
  const { rows } = await client.query<{ slot: number; state: string; move_id: string | null }>(
    `SELECT slot, state, move_id FROM slot_state WHERE slot BETWEEN $1::int AND $2::int AND NOT (state = $3::text AND move_id = $4::bigint) ORDER BY slot LIMIT 1`,
    [move.fromSlot, move.toSlot, state, move.id],
  );
  const n = (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM slot_state WHERE slot BETWEEN $1::int AND $2::int', [move.fromSlot, move.toSlot])).rows[0]!.n;
  if (n !== move.toSlot - move.fromSlot + 1) throw new Error(`${where} has no slot table for slots ${move.fromSlot}-${move.toSlot} (was it initialised?)`);
  if (rows[0]) throw new Error(`${where}: slot ${rows[0].slot} is ${rows[0].state}${rows[0].move_id ? ` (move #${rows[0].move_id})` : ''}, expected ${state} for move #${move.id}`);
}

async function copyAll(lock: pg.PoolClient, control: ShardContext, src: ShardContext, tgt: ShardContext, move: MoveRow, options: MoveOptions): Promise<void> {
  const batch = Math.max(1, options.batchSize ?? 50);
  for (;;) {
    const { rows } = await src.pool.query<{ id: string }>(UNMOVED, [move.fromSlot, move.toSlot, batch]);
    if (rows.length === 0) break;
    // verify opens its snapshots while nobody holds this exclusively: it sees each id on one side.
    await lock.query('SELECT pg_advisory_lock($1::int, 0)', [LOCKS.cut]);
    let n = 0;
    try {
      for (const { id } of rows) {
        if (await handOver(src, tgt, move, id, options, move.movedIds + n)) n++;
      }
    } finally {
      await lock.query('SELECT pg_advisory_unlock($1::int, 0)', [LOCKS.cut]);
    }
    move.movedIds += n;
    const { rows: [left] } = await src.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM (${UNMOVED}) x`, [move.fromSlot, move.toSlot, 1_000_000]);
    await control.pool.query(`UPDATE slot_moves SET moved_ids = moved_ids + $2::int, remaining = $3::int, updated_at = now() WHERE id = $1::bigint`, [move.id, n, left!.n]);
    options.log?.(`move #${move.id}: ${move.movedIds} account ids handed over, ${left!.n} left`);
  }
}

/**
 * Hands one account id over. The source transaction takes the id's advisory lock (every step on the
 * id takes it too while the slot migrates), its holds and its account row, and keeps them until it
 * commits; meanwhile the copy is committed on the target (replacing any copy a crashed attempt left
 * there, which nothing can have used: the source never said the id had moved). Then the source
 * deletes the id's rows and marks it moved, and commits: from that instant steps on the id answer
 * MOVED here and run on the target. A crash before that commit leaves the source as it was.
 */
async function handOver(src: ShardContext, tgt: ShardContext, move: MoveRow, id: string, options: MoveOptions, movedSoFar: number): Promise<boolean> {
  const handed = await withTransaction(src.pool, async (s) => {
    await s.query(`SELECT set_config('ledger.slot_move', 'on', true), pg_advisory_xact_lock($1::int, hashtext($2::text))`, [LOCKS.account, id]);
    const { rows: already } = await s.query(`SELECT 1 FROM slot_moved_ids WHERE account_id = $1::text AND direction = 'out'`, [id]);
    if (already.length > 0) return false;
    const holds = (await s.query<{ row: unknown }>('SELECT to_jsonb(h) AS row FROM holds h WHERE account_id = $1::text ORDER BY key FOR UPDATE', [id])).rows.map((r) => r.row);
    const accounts = (await s.query<{ row: { currency: string } }>(`SELECT to_jsonb(a) AS row FROM accounts a WHERE id = $1::text AND kind = 'customer' FOR UPDATE`, [id])).rows.map((r) => r.row);
    const journal = (await s.query<{ row: { id: string; currency: string } }>(`SELECT to_jsonb(j) AS row FROM (${ENTRIES_OF}) j ORDER BY j.id`, [id])).rows.map((r) => r.row);
    const keys = (await s.query<{ row: unknown }>('SELECT to_jsonb(k) AS row FROM idempotency_keys k WHERE account_id = $1::text', [id])).rows.map((r) => r.row);
    const currencies = [...new Set([...accounts, ...journal].map((r) => r.currency))];

    await withTransaction(tgt.pool, async (t) => {
      await t.query(`SELECT set_config('ledger.slot_move', 'on', true)`);
      await forget(t, id);
      for (const currency of currencies) {
        await t.query(
          `INSERT INTO accounts (id, kind, currency, currency_exponent)
           VALUES ('sys:external:' || $1::text, 'external', $1::char(3), $2::smallint), ('sys:clearing:' || $1::text, 'clearing', $1::char(3), $2::smallint),
                  ('sys:suspense:' || $1::text, 'suspense', $1::char(3), $2::smallint)
           ON CONFLICT (id) DO NOTHING`,
          [currency, currencyExponent(currency)],
        );
      }
      await t.query('INSERT INTO accounts SELECT * FROM jsonb_populate_recordset(NULL::accounts, $1::jsonb)', [JSON.stringify(accounts)]);
      await t.query('INSERT INTO holds SELECT * FROM jsonb_populate_recordset(NULL::holds, $1::jsonb)', [JSON.stringify(holds)]);
      await t.query(
        `INSERT INTO journal (entry_id, transfer_id, hold_key, account_id, amount, currency, kind, created_at)
         SELECT entry_id, transfer_id, hold_key, account_id, amount, currency, kind, created_at
         FROM jsonb_populate_recordset(NULL::journal, $1::jsonb) ORDER BY id`,
        [JSON.stringify(journal)],
      );
      try {
        await t.query('INSERT INTO idempotency_keys SELECT * FROM jsonb_populate_recordset(NULL::idempotency_keys, $1::jsonb)', [JSON.stringify(keys)]);
      } catch (error) {
        if ((error as { code?: string }).code === '23505') {
          throw new Error(`account ${id}: one of its idempotency keys is also used on shard ${move.target} (${(error as { detail?: string }).detail ?? ''}); keys of deposits and withdrawals chosen by callers are per shard and cannot be merged: move stopped, nothing of this account moved`, { cause: error });
        }
        throw error;
      }
      await t.query(
        `INSERT INTO slot_moved_ids (account_id, direction, peer, move_id, confirmed) VALUES ($1::text, 'in', $2::int, $3::bigint, false)`,
        [id, move.source, move.id],
      );
    });
    await options.afterTargetCommit?.(movedSoFar);

    await s.query('DELETE FROM journal WHERE id = ANY($1::bigint[])', [journal.map((j) => j.id)]);
    await s.query('DELETE FROM holds WHERE account_id = $1::text', [id]);
    await s.query('DELETE FROM idempotency_keys WHERE account_id = $1::text', [id]);
    await s.query(`DELETE FROM accounts WHERE id = $1::text AND kind = 'customer'`, [id]);
    await s.query(`INSERT INTO slot_moved_ids (account_id, direction, peer, move_id) VALUES ($1::text, 'out', $2::int, $3::bigint)`, [id, move.target, move.id]);
    return true;
  });
  if (handed) await tgt.pool.query(`UPDATE slot_moved_ids SET confirmed = true WHERE account_id = $1::text AND direction = 'in'`, [id]);
  return handed;
}

/** Deletes what a crashed attempt copied of an id to the target (it was never used there). */
async function forget(t: pg.PoolClient, id: string): Promise<void> {
  const { rows } = await t.query<{ id: string }>(`SELECT j.id FROM (${ENTRIES_OF}) j`, [id]);
  if (rows.length > 0) await t.query('DELETE FROM journal WHERE id = ANY($1::bigint[])', [rows.map((r) => r.id)]);
  await t.query('DELETE FROM holds WHERE account_id = $1::text', [id]);
  await t.query('DELETE FROM idempotency_keys WHERE account_id = $1::text', [id]);
  await t.query(`DELETE FROM accounts WHERE id = $1::text AND kind = 'customer'`, [id]);
  await t.query('DELETE FROM slot_moved_ids WHERE account_id = $1::text', [id]);
}

/**
 * The source lets go of the range once no id of it is left: under the slot rows' locks (no step in
 * flight, none starting), so an id created at the last moment is found and handed over first.
 */
async function closeSource(src: ShardContext, move: MoveRow): Promise<boolean> {
  return withTransaction(src.pool, async (client) => {
    await client.query('SELECT 1 FROM slot_state WHERE slot BETWEEN $1::int AND $2::int ORDER BY slot FOR UPDATE', [move.fromSlot, move.toSlot]);
    const { rows } = await client.query(UNMOVED, [move.fromSlot, move.toSlot, 1]);
    if (rows.length > 0) return false;
    await client.query(
      `UPDATE slot_state SET state = 'absent', peer = $3::int, move_id = NULL WHERE slot BETWEEN $1::int AND $2::int AND state = 'migrating' AND move_id = $4::bigint`,
      [move.fromSlot, move.toSlot, move.target, move.id],
    );
    await client.query(`DELETE FROM slot_moved_ids WHERE move_id = $1::bigint AND direction = 'out'`, [move.id]);
    return true;
  });
}

async function openTarget(tgt: ShardContext, move: MoveRow): Promise<void> {
  await withTransaction(tgt.pool, async (client) => {
    await client.query(
      `UPDATE slot_state SET state = 'owned', peer = NULL, move_id = NULL WHERE slot BETWEEN $1::int AND $2::int AND state = 'importing' AND move_id = $3::bigint`,
      [move.fromSlot, move.toSlot, move.id],
    );
    await client.query(`DELETE FROM slot_moved_ids WHERE move_id = $1::bigint AND direction = 'in'`, [move.id]);
  });
}

/** The map's next version, with the range on the target; the move is done. */
async function publishMap(ledger: Ledger, control: ShardContext, move: MoveRow): Promise<void> {
  await withTransaction(control.pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1::int, 0)', [LOCKS.control]);
    const { rows: [m] } = await client.query<{ state: string }>('SELECT state FROM slot_moves WHERE id = $1::bigint FOR UPDATE', [move.id]);
    if (m?.state === 'done') return;
    const current = await readControl(client);
    const next = assignRange(current.slotMap, move.fromSlot, move.toSlot, move.target);
    parseSlotMap(formatSlotMap(next), current.shards.length);
    await client.query('UPDATE ledger_control SET map_version = map_version + 1, slot_map = $1::text, updated_at = now()', [formatSlotMap(next)]);
    await client.query(`UPDATE slot_moves SET state = 'done', phase = 'done', remaining = 0, finished_at = now(), updated_at = now() WHERE id = $1::bigint`, [move.id]);
  });
  await ledger.refreshMap();
}

export interface SlotStatus {
  version: number;
  map: SlotRange[];
  shards: { shard: number; url: string; ranges: { from: number; to: number; state: string; peer: number | null }[] }[];
  moves: MoveRow[];
}

/** The map, each shard's view of its slots (all but plain `absent`), and the latest moves. */
export async function slotStatus(ledger: Ledger): Promise<SlotStatus> {
  await ledger.checkIdentity();
  await ledger.refreshMap();
  const shards = await Promise.all(ledger.shards.map(async (ctx) => {
    const { rows } = await ctx.pool.query<{ from: number; to: number; state: string; peer: number | null }>(
      `SELECT min(slot) AS "from", max(slot) AS "to", state, peer FROM (
         SELECT slot, state, peer, slot - row_number() OVER (PARTITION BY state, peer ORDER BY slot) AS grp FROM slot_state) x
       WHERE state <> 'absent' GROUP BY state, peer, grp ORDER BY 1`,
    );
    return { shard: ctx.shard, url: redact(ledger.urls[ctx.shard]), ranges: rows };
  }));
  const { rows } = await ledger.shards[0]!.pool.query<DbMove>(`SELECT ${MOVE_COLUMNS} FROM slot_moves ORDER BY id DESC LIMIT 20`);
  return { version: ledger.mapVersion, map: [...ledger.slotMap], shards, moves: rows.map(moveRow) };
}

function redact(url: string | undefined): string {
  if (!url) return '';
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return '(unparsable url)';
  }
}

/**
 * Registers a new, empty shard: reachable, not a shard of this or another cluster, migrated, given
 * the next shard number, serving no slot until a move gives it some.
 */
export async function addShard(ledger: Ledger, url: string): Promise<{ shard: number; created: boolean }> {
  await ledger.checkIdentity();
  await ledger.refreshMap();
  const control = ledger.shards[0]!;
  const known = ledger.urls.indexOf(url);
  if (known >= 0) return { shard: known, created: false };
  const pool = createPool(url, { max: 2, acquireTimeoutMs: 5_000 });
  pool.on('error', () => undefined);
  try {
    try {
      await pool.query('SELECT 1');
    } catch (error) {
      throw new SlotMoveRefused(`the new shard at ${redact(url)} is unreachable: ${(error as Error).message}`);
    }
    const { cluster_id: clusterId, hash } = (await control.pool.query<{ cluster_id: string; hash: string }>(
      'SELECT (SELECT cluster_id FROM ledger_control)::text AS cluster_id, (SELECT slot_map_hash FROM shard_identity) AS hash',
    )).rows[0]!;
    const shard = ledger.shards.length;
    const { rows: [has] } = await pool.query<{ t: string | null }>(`SELECT to_regclass('shard_identity')::text AS t`);
    if (has?.t) {
      const { rows: [id] } = await pool.query<{ shard: number; cluster_id: string | null }>('SELECT shard, cluster_id::text AS cluster_id FROM shard_identity');
      if (id && !(id.shard === shard && id.cluster_id === clusterId)) {
        throw new SlotMoveRefused(`the database at ${redact(url)} already is shard ${id.shard} of ${id.cluster_id === clusterId ? 'this cluster' : id.cluster_id ? `cluster ${id.cluster_id}` : 'another deployment'}: refusing to register it as shard ${shard}`);
      }
      const { rows: [used] } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM accounts');
      if (!id && used!.n > 0) throw new SlotMoveRefused(`the database at ${redact(url)} already holds ${used!.n} accounts: a new shard must be empty`);
    }
    await migrate(pool);
    await withTransaction(pool, async (client) => {
      await client.query(
        `INSERT INTO shard_identity (shard, slot_map_hash, cluster_id) VALUES ($1::int, $2::text, $3::uuid) ON CONFLICT (only_row) DO NOTHING`,
        [shard, hash, clusterId],
      );
    });
    await initSlotState({ shard, pool, offsetMs: () => 0 }, (await readControl(control.pool)).slotMap);
    await withTransaction(control.pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1::int, 0)', [LOCKS.control]);
      const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM ledger_shards');
      if (rows[0]!.n !== shard) throw new SlotMoveRefused(`another shard was registered meanwhile (now ${rows[0]!.n}): run the command again`);
      await client.query('INSERT INTO ledger_shards (shard, url) VALUES ($1::int, $2::text)', [shard, url]);
    });
  } finally {
    await pool.end();
  }
  await ledger.refreshMap();
  return { shard: ledger.shards.length - 1, created: true };
}
