import type { ShardContext } from './shard-context.js';

/**
 * The ledger's proof of itself. Every check is a query whose non-empty answer is a violation, named
 * precisely (shard, account, transfer, hold, amount) so an operator can act on it.
 */
export interface Violation {
  check: string;
  shard?: number;
  account?: string;
  transfer?: string;
  hold?: string;
  entry?: string;
  currency?: string;
  amount?: string;
  message: string;
}

export interface CurrencyTotals {
  currency: string;
  customers: string;
  clearing: string;
  /** Negative: what entered minus what left, seen from outside. */
  external: string;
  entered: string;
  left: string;
}

export interface VerifyReport {
  ok: boolean;
  checkedAt: string;
  shards: { shard: number; accounts: number; holds: number; pendingHolds: number; postings: number }[];
  totals: CurrencyTotals[];
  violations: Violation[];
}

type Row = Record<string, string>;

const SHARD_CHECKS: { check: string; sql: string; describe: (r: Row) => Omit<Violation, 'check' | 'shard'> }[] = [
  {
    check: 'balance_matches_journal',
    sql: `SELECT a.id, a.currency, a.posted::text AS posted, coalesce(j.total, 0)::text AS journal
          FROM accounts a LEFT JOIN (SELECT account_id, sum(amount) AS total FROM journal GROUP BY account_id) j ON j.account_id = a.id
          WHERE a.kind = 'customer' AND a.posted <> coalesce(j.total, 0)`,
    describe: (r) => ({ account: r.id, currency: r.currency, amount: r.posted, message: `posted balance ${r.posted} but journal sums to ${r.journal}` }),
  },
  {
    check: 'pending_matches_holds',
    sql: `SELECT a.id, a.currency, a.pending_debits::text AS pd, a.pending_credits::text AS pc,
                 coalesce(h.d, 0)::text AS hd, coalesce(h.c, 0)::text AS hc
          FROM accounts a LEFT JOIN (
            SELECT account_id, sum(amount) FILTER (WHERE side = 'debit') AS d, sum(amount) FILTER (WHERE side = 'credit') AS c
            FROM holds WHERE state = 'pending' GROUP BY account_id) h ON h.account_id = a.id
          WHERE a.pending_debits <> coalesce(h.d, 0) OR a.pending_credits <> coalesce(h.c, 0)`,
    describe: (r) => ({ account: r.id, currency: r.currency, message: `pending debits/credits ${r.pd}/${r.pc} but pending holds sum to ${r.hd}/${r.hc}` }),
  },
  {
    check: 'available_not_negative',
    sql: `SELECT id, currency, (posted - pending_debits + overdraft_limit)::text AS available FROM accounts
          WHERE kind = 'customer' AND posted - pending_debits + overdraft_limit < 0`,
    describe: (r) => ({ account: r.id, currency: r.currency, amount: r.available, message: `available balance ${r.available} is negative` }),
  },
  {
    check: 'entry_balanced',
    sql: `SELECT entry_id, currency, sum(amount)::text AS imbalance FROM journal GROUP BY entry_id, currency HAVING sum(amount) <> 0`,
    describe: (r) => ({ entry: r.entry_id, currency: r.currency, amount: r.imbalance, message: `journal entry is unbalanced by ${r.imbalance}` }),
  },
  {
    check: 'hold_pending_past_expiry',
    sql: `SELECT key, transfer_id, account_id, amount::text AS amount, currency, expires_at::text AS expires_at FROM holds
          WHERE state = 'pending' AND expires_at < $1::timestamptz`,
    describe: (r) => ({ hold: r.key, transfer: r.transfer_id, account: r.account_id, amount: r.amount, currency: r.currency, message: `hold still pending after its expiry ${r.expires_at}` }),
  },
  {
    check: 'posted_hold_has_postings',
    sql: `SELECT h.key, h.transfer_id, h.account_id, h.amount::text AS amount, h.currency FROM holds h
          WHERE h.state = 'posted' AND (SELECT coalesce(sum(abs(j.amount)), 0) FROM journal j
            WHERE j.hold_key = h.key AND j.account_id = h.account_id AND j.kind IN ('transfer_debit', 'transfer_credit')) <> h.amount`,
    describe: (r) => ({ hold: r.key, transfer: r.transfer_id, account: r.account_id, amount: r.amount, currency: r.currency, message: 'posted hold without matching postings' }),
  },
  {
    check: 'postings_have_posted_hold',
    sql: `SELECT j.entry_id, j.transfer_id, j.hold_key, j.account_id, j.amount::text AS amount, j.currency FROM journal j
          LEFT JOIN holds h ON h.key = j.hold_key
          WHERE j.kind IN ('transfer_debit', 'transfer_credit', 'refund') AND (h.key IS NULL OR h.state <> 'posted')`,
    describe: (r) => ({ entry: r.entry_id, transfer: r.transfer_id, hold: r.hold_key, account: r.account_id, amount: r.amount, currency: r.currency, message: 'transfer posting whose hold is not posted' }),
  },
];

export async function verifyShards(shards: readonly ShardContext[]): Promise<VerifyReport> {
  const checkedAt = new Date(Math.max(...shards.map((s) => s.clock().getTime())));
  const violations: Violation[] = [];
  const summaries: VerifyReport['shards'] = [];
  const totals = new Map<string, { customers: bigint; clearing: bigint; external: bigint; entered: bigint; left: bigint }>();
  const clearingByTransfer = new Map<string, bigint>();
  const pendingTransfers = new Set<string>();

  for (const ctx of shards) {
    for (const { check, sql, describe } of SHARD_CHECKS) {
      const { rows } = await ctx.pool.query<Row>(sql, sql.includes('$1') ? [checkedAt] : []);
      for (const row of rows) violations.push({ check, shard: ctx.shard, ...describe(row) });
    }
    const counts = await ctx.pool.query<Row>(`SELECT
        (SELECT count(*) FROM accounts WHERE kind = 'customer')::text AS accounts,
        (SELECT count(*) FROM holds)::text AS holds,
        (SELECT count(*) FROM holds WHERE state = 'pending')::text AS pending,
        (SELECT count(*) FROM journal)::text AS postings`);
    const c = counts.rows[0]!;
    summaries.push({ shard: ctx.shard, accounts: Number(c.accounts), holds: Number(c.holds), pendingHolds: Number(c.pending), postings: Number(c.postings) });

    const sums = await ctx.pool.query<Row>(`SELECT a.currency, a.kind, coalesce(sum(j.amount), 0)::text AS total,
          coalesce(sum(-j.amount) FILTER (WHERE j.kind = 'deposit'), 0)::text AS entered,
          coalesce(sum(j.amount) FILTER (WHERE j.kind = 'withdrawal'), 0)::text AS left
        FROM journal j JOIN accounts a ON a.id = j.account_id GROUP BY a.currency, a.kind`);
    for (const row of sums.rows) {
      const t = totals.get(row.currency!) ?? { customers: 0n, clearing: 0n, external: 0n, entered: 0n, left: 0n };
      const total = BigInt(row.total!);
      if (row.kind === 'customer') t.customers += total;
      else if (row.kind === 'clearing') t.clearing += total;
      else {
        t.external += total;
        t.entered += BigInt(row.entered!);
        t.left += BigInt(row.left!);
      }
      totals.set(row.currency!, t);
    }

    const clearing = await ctx.pool.query<Row>(`SELECT transfer_id, currency, sum(amount)::text AS net FROM journal
        WHERE account_id LIKE 'sys:clearing:%' AND transfer_id IS NOT NULL GROUP BY transfer_id, currency`);
    for (const row of clearing.rows) {
      const id = `${row.transfer_id}\u0000${row.currency}`;
      clearingByTransfer.set(id, (clearingByTransfer.get(id) ?? 0n) + BigInt(row.net!));
    }
    const pending = await ctx.pool.query<Row>(`SELECT DISTINCT transfer_id FROM holds WHERE state = 'pending'`);
    for (const row of pending.rows) pendingTransfers.add(row.transfer_id!);
  }

  // Across shards: money in transit must reach zero once a transfer holds nothing pending.
  for (const [id, net] of clearingByTransfer) {
    const [transfer, currency] = id.split('\u0000') as [string, string];
    if (net !== 0n && !pendingTransfers.has(transfer)) {
      violations.push({ check: 'clearing_nets_to_zero', transfer, currency, amount: net.toString(), message: `${net} left in clearing with nothing pending` });
    }
  }
  const totalRows: CurrencyTotals[] = [];
  for (const [currency, t] of [...totals].sort(([a], [b]) => a.localeCompare(b))) {
    if (t.customers + t.clearing + t.external !== 0n) {
      violations.push({ check: 'money_conserved', currency, amount: (t.customers + t.clearing + t.external).toString(), message: 'balances do not add up to what entered minus what left' });
    }
    if (t.entered - t.left !== -t.external) {
      violations.push({ check: 'external_explains_flows', currency, message: `external balance ${t.external} does not equal deposits ${t.entered} minus withdrawals ${t.left}` });
    }
    totalRows.push({ currency, customers: `${t.customers}`, clearing: `${t.clearing}`, external: `${t.external}`, entered: `${t.entered}`, left: `${t.left}` });
  }
  return { ok: violations.length === 0, checkedAt: checkedAt.toISOString(), shards: summaries, totals: totalRows, violations };
}
