import type pg from 'pg';
import { withClient } from '../db/transaction.js';
import { dbNow, type ShardContext } from './shard-context.js';
import { SHARD_CHECKS, type Row, type Violation } from './verify-checks.js';

export type { Violation } from './verify-checks.js';

/**
 * The ledger's proof of itself. Each shard is read in one REPEATABLE READ snapshot, so a check never
 * compares two moments of a shard that is busy (no false alarm under load); rows are streamed
 * through cursors, so memory stays bounded whatever the ledger's size. Every violation is named
 * precisely (shard, account, transfer, hold, amount) so an operator can act on it.
 */

export interface CurrencyTotals {
  currency: string;
  customers: string;
  clearing: string;
  /** Owed to customers whose accounts closed before a refund arrived. */
  suspense: string;
  /** Negative: what entered minus what left, seen from outside. */
  external: string;
  entered: string;
  left: string;
}

export interface VerifyOptions {
  /**
   * A transfer whose debit is posted but neither credited nor refunded is in transit while it holds
   * a pending hold or moved within this window; older, it is money stuck in clearing (a violation).
   */
  transitGraceMs?: number;
  /** A pending hold past its expiry for longer than this means no sweeper is running. */
  expiryGraceMs?: number;
  /** Rows fetched per cursor round trip (memory stays bounded by this times the shards). */
  batchSize?: number;
}

export interface VerifyReport {
  ok: boolean;
  checkedAt: string;
  shards: { shard: number; accounts: number; frozen: number; closed: number; holds: number; pendingHolds: number; postings: number }[];
  totals: CurrencyTotals[];
  violations: Violation[];
  /** Not violations, but for an operator to see: money in flight and money in suspense. */
  attention: {
    inTransit: { transfers: number; oldestMs: number };
    suspense: { shard: number; currency: string; amount: string }[];
  };
}

const DEFAULTS: Required<VerifyOptions> = { transitGraceMs: 60 * 60_000, expiryGraceMs: 5 * 60_000, batchSize: 2_000 };

/** Per transfer and currency on one shard: clearing legs, posted debit holds, anything pending. */
const TRANSFER_FLOWS = `
  SELECT transfer_id, currency, sum(clearing)::text AS clearing, sum(debit_posted)::text AS debit_posted,
         bool_or(pending) AS pending, max(at) AS last_at
  FROM (
    SELECT transfer_id, currency, amount AS clearing, 0::bigint AS debit_posted, false AS pending, created_at AS at
      FROM journal WHERE transfer_id IS NOT NULL AND account_id LIKE 'sys:clearing:%'
    UNION ALL
    SELECT transfer_id, currency, 0::bigint, CASE WHEN side = 'debit' AND state = 'posted' THEN amount ELSE 0 END,
           state = 'pending', coalesce(resolved_at, created_at)
      FROM holds
  ) flows %WHERE% GROUP BY transfer_id, currency ORDER BY transfer_id COLLATE "C", currency COLLATE "C"`;

/** One row of TRANSFER_FLOWS as node-postgres returns it. */
type FlowRow = Row & { pending: boolean; last_at: Date };

interface Flow { transfer: string; currency: string; clearing: bigint; debitPosted: bigint; pending: boolean; lastAt: number }

function flowOf(r: FlowRow): Flow {
  return { transfer: r.transfer_id!, currency: r.currency!, clearing: BigInt(r.clearing!), debitPosted: BigInt(r.debit_posted!), pending: r.pending, lastAt: new Date(r.last_at).getTime() };
}

function add(a: Flow | undefined, b: Flow): Flow {
  if (!a) return { ...b };
  return { ...a, clearing: a.clearing + b.clearing, debitPosted: a.debitPosted + b.debitPosted, pending: a.pending || b.pending, lastAt: Math.max(a.lastAt, b.lastAt) };
}

type Verdict = 'settled' | 'in_transit' | 'stuck' | 'inconsistent';

/**
 * Clearing legs per transfer: +debit when the debit posts, −amount when the credit posts or the
 * debit is refunded. So the net is 0 (settled or nothing moved) or exactly the posted debit (in
 * transit); anything else means a credit without its debit, or a leg twice.
 */
function judge(flow: Flow, checkedAt: number, graceMs: number): Verdict {
  if (flow.clearing === 0n) return 'settled';
  if (flow.clearing === flow.debitPosted && flow.debitPosted > 0n) {
    return flow.pending || checkedAt - flow.lastAt < graceMs ? 'in_transit' : 'stuck';
  }
  return 'inconsistent';
}

/** Taken while snapshots are opened (slot moves wait meanwhile); returns its release. */
export type Cut = () => Promise<() => Promise<void>>;

/**
 * Opens one REPEATABLE READ READ ONLY transaction per shard, all at once, for `fn`. With a cut, the
 * snapshots are all taken while it is held: no account is handed between shards in between.
 */
async function withSnapshots<T>(shards: readonly ShardContext[], fn: (clients: pg.PoolClient[]) => Promise<T>, cut?: Cut): Promise<T> {
  const release = cut ? await cut() : undefined;
  let released = false;
  const done = async () => {
    if (!released && release) await release();
    released = true;
  };
  try {
    return await openSnapshots(shards, async (clients) => {
      await done();
      return fn(clients);
    });
  } finally {
    await done();
  }
}

async function openSnapshots<T>(shards: readonly ShardContext[], fn: (clients: pg.PoolClient[]) => Promise<T>, held: pg.PoolClient[] = []): Promise<T> {
  if (held.length === shards.length) return fn(held);
  return withClient(shards[held.length]!.pool, async (client) => {
    // The snapshot is taken by the first statement, not by BEGIN: both in one round trip, so the
    // shards' snapshots are as close together as before. Each shard's snapshot waits, idle, while
    // the shards before it are checked: the pool's idle-in-transaction limit (meant for stalled
    // clients) must not end it on a large ledger, so this read-only transaction lifts it.
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL idle_in_transaction_session_timeout = 0; SELECT 1');
    try {
      return await openSnapshots(shards, fn, [...held, client]);
    } finally {
      await client.query('COMMIT').catch(() => undefined);
    }
  });
}

/** A cursor's rows in batches: one shard's sorted stream for the merge below. */
async function* rowsOf(client: pg.PoolClient, name: string, sql: string, batch: number): AsyncGenerator<FlowRow> {
  await client.query(`DECLARE ${name} NO SCROLL CURSOR FOR ${sql}`);
  for (;;) {
    const { rows } = await client.query(`FETCH ${batch} FROM ${name}`);
    if (rows.length === 0) break;
    yield* rows;
  }
  await client.query(`CLOSE ${name}`);
}

/** Merges the shards' sorted flow streams, summing each transfer's flows across shards. */
async function* mergedFlows(streams: AsyncGenerator<FlowRow>[]): AsyncGenerator<Flow> {
  const heads = await Promise.all(streams.map(async (s) => (await s.next()).value as FlowRow | undefined));
  const key = (f: Flow) => `${f.transfer}\u0000${f.currency}`;
  for (;;) {
    const current = heads.map((h) => (h ? flowOf(h) : undefined));
    const keys = current.filter((f): f is Flow => !!f).map(key);
    if (keys.length === 0) return;
    const smallest = keys.reduce((a, b) => (b < a ? b : a));
    let total: Flow | undefined;
    for (let i = 0; i < streams.length; i++) {
      if (current[i] && key(current[i]!) === smallest) {
        total = add(total, current[i]!);
        heads[i] = (await streams[i]!.next()).value as FlowRow | undefined;
      }
    }
    yield total!;
  }
}

export async function verifyShards(shards: readonly ShardContext[], options: VerifyOptions = {}, cut?: Cut): Promise<VerifyReport> {
  const grace = { ...DEFAULTS, ...options };
  const violations: Violation[] = [];
  const summaries: VerifyReport['shards'] = [];
  const totals = new Map<string, { customers: bigint; clearing: bigint; suspense: bigint; external: bigint; entered: bigint; left: bigint }>();
  const suspense: VerifyReport['attention']['suspense'] = [];
  const suspicious: Flow[] = [];
  const inTransit = { transfers: 0, oldestMs: 0 };
  let checkedAt = 0;

  await withSnapshots(shards, async (clients) => {
    for (const [i, client] of clients.entries()) {
      const ctx = shards[i]!;
      const { rows: [now] } = await client.query<{ at: Date }>(`SELECT ${dbNow('$1')} AS at`, [ctx.offsetMs()]);
      checkedAt = Math.max(checkedAt, now!.at.getTime());
      for (const { check, sql, describe } of SHARD_CHECKS) {
        const params = sql.includes('$2') ? [now!.at, grace.expiryGraceMs] : sql.includes('$1') ? [now!.at] : [];
        const { rows } = await client.query<Row>(sql, params);
        for (const row of rows) violations.push({ check, shard: ctx.shard, ...describe(row) });
      }
      const { rows: [c] } = await client.query<Row>(`SELECT
          (SELECT count(*) FROM accounts WHERE kind = 'customer')::text AS accounts,
          (SELECT count(*) FROM accounts WHERE kind = 'customer' AND status = 'frozen')::text AS frozen,
          (SELECT count(*) FROM accounts WHERE kind = 'customer' AND status = 'closed')::text AS closed,
          (SELECT count(*) FROM holds)::text AS holds,
          (SELECT count(*) FROM holds WHERE state = 'pending')::text AS pending,
          (SELECT count(*) FROM journal)::text AS postings`);
      summaries.push({ shard: ctx.shard, accounts: Number(c!.accounts), frozen: Number(c!.frozen), closed: Number(c!.closed), holds: Number(c!.holds), pendingHolds: Number(c!.pending), postings: Number(c!.postings) });

      const sums = await client.query<Row>(`SELECT a.currency, a.kind, coalesce(sum(j.amount), 0)::text AS total,
            coalesce(sum(-j.amount) FILTER (WHERE j.kind = 'deposit'), 0)::text AS entered,
            coalesce(sum(j.amount) FILTER (WHERE j.kind IN ('withdrawal', 'suspense_release')), 0)::text AS left
          FROM journal j JOIN accounts a ON a.id = j.account_id GROUP BY a.currency, a.kind`);
      for (const row of sums.rows) {
        const t = totals.get(row.currency!) ?? { customers: 0n, clearing: 0n, suspense: 0n, external: 0n, entered: 0n, left: 0n };
        const total = BigInt(row.total!);
        if (row.kind === 'customer') t.customers += total;
        else if (row.kind === 'clearing') t.clearing += total;
        else if (row.kind === 'suspense') {
          t.suspense += total;
          if (total !== 0n) suspense.push({ shard: ctx.shard, currency: row.currency!, amount: total.toString() });
        } else {
          t.external += total;
          t.entered += BigInt(row.entered!);
          t.left += BigInt(row.left!);
        }
        totals.set(row.currency!, t);
      }
    }
    // Across shards, streamed: each transfer's clearing legs must net to zero or to its posted debit.
    const streams = clients.map((client, i) => rowsOf(client, `flows_${i}`, TRANSFER_FLOWS.replace('%WHERE%', ''), Math.max(1, Math.trunc(grace.batchSize))));
    for await (const flow of mergedFlows(streams)) {
      const verdict = judge(flow, checkedAt, grace.transitGraceMs);
      if (verdict === 'in_transit') {
        inTransit.transfers += 1;
        inTransit.oldestMs = Math.max(inTransit.oldestMs, checkedAt - flow.lastAt);
      } else if (verdict !== 'settled') {
        suspicious.push(flow);
      }
    }
  }, cut);

  // The shards' snapshots are taken one after another, so a transfer that moved in between can look
  // inconsistent (its credit seen, its debit not yet). Read each such transfer again before calling it.
  for (const first of suspicious) {
    const again = await recheck(shards, first.transfer, first.currency, cut);
    const verdict = again ? judge(again, checkedAt, grace.transitGraceMs) : 'settled';
    const flow = again ?? first;
    if (verdict === 'in_transit') inTransit.transfers += 1;
    if (verdict === 'stuck') {
      violations.push({ check: 'clearing_stuck', transfer: flow.transfer, currency: flow.currency, amount: flow.clearing.toString(), message: `${flow.clearing} in clearing for ${Math.round((checkedAt - flow.lastAt) / 1000)} s with nothing pending: debit posted, neither credited nor refunded` });
    }
    if (verdict === 'inconsistent') {
      violations.push({ check: 'clearing_nets_to_zero', transfer: flow.transfer, currency: flow.currency, amount: flow.clearing.toString(), message: `clearing nets to ${flow.clearing} but the posted debit is ${flow.debitPosted}` });
    }
  }

  const totalRows: CurrencyTotals[] = [];
  for (const [currency, t] of [...totals].sort(([a], [b]) => a.localeCompare(b))) {
    const sum = t.customers + t.clearing + t.suspense + t.external;
    if (sum !== 0n) {
      violations.push({ check: 'money_conserved', currency, amount: sum.toString(), message: 'balances do not add up to what entered minus what left' });
    }
    if (t.entered - t.left !== -t.external) {
      violations.push({ check: 'external_explains_flows', currency, message: `external balance ${t.external} does not equal deposits ${t.entered} minus payouts ${t.left}` });
    }
    totalRows.push({ currency, customers: `${t.customers}`, clearing: `${t.clearing}`, suspense: `${t.suspense}`, external: `${t.external}`, entered: `${t.entered}`, left: `${t.left}` });
  }
  return {
    ok: violations.length === 0,
    checkedAt: new Date(checkedAt).toISOString(),
    shards: summaries,
    totals: totalRows,
    violations,
    attention: { inTransit, suspense },
  };
}

async function recheck(shards: readonly ShardContext[], transfer: string, currency: string, cut?: Cut): Promise<Flow | undefined> {
  const sql = TRANSFER_FLOWS.replace('%WHERE%', 'WHERE transfer_id = $1::text AND currency = $2::char(3)');
  return withSnapshots(shards, async (clients) => {
    let total: Flow | undefined;
    for (const client of clients) {
      const { rows } = await client.query<FlowRow>(sql, [transfer, currency]);
      for (const row of rows) total = add(total, flowOf(row));
    }
    return total;
  }, cut);
}
