/** The per-shard checks of `verify`: each query's rows are violations (none, in a sound ledger). */

export type Row = Record<string, string>;

export const SHARD_CHECKS: { check: string; sql: string; describe: (r: Row) => Omit<Violation, 'check' | 'shard'> }[] = [
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
          WHERE state = 'pending' AND expires_at < $1::timestamptz - $2::bigint * interval '1 millisecond'`,
    describe: (r) => ({ hold: r.key, transfer: r.transfer_id, account: r.account_id, amount: r.amount, currency: r.currency, message: `hold still pending after its expiry ${r.expires_at} (is a sweeper running?)` }),
  },
  {
    check: 'closed_account_empty',
    sql: `SELECT a.id, a.currency, a.posted::text AS posted, a.pending_debits::text AS pd, a.pending_credits::text AS pc,
                 (SELECT count(*) FROM holds h WHERE h.account_id = a.id AND h.state = 'pending')::text AS pending
          FROM accounts a WHERE a.status = 'closed' AND (a.posted <> 0 OR a.pending_debits <> 0 OR a.pending_credits <> 0
            OR EXISTS (SELECT 1 FROM holds h WHERE h.account_id = a.id AND h.state = 'pending'))`,
    describe: (r) => ({ account: r.id, currency: r.currency, amount: r.posted, message: `closed account holds ${r.posted} posted, ${r.pd}/${r.pc} pending, ${r.pending} pending hold(s)` }),
  },
  {
    check: 'closed_account_untouched',
    sql: `SELECT a.id, a.currency, j.entry_id, j.amount::text AS amount FROM accounts a JOIN journal j ON j.account_id = a.id
          WHERE a.status = 'closed' AND j.created_at > a.updated_at`,
    describe: (r) => ({ account: r.id, currency: r.currency, entry: r.entry_id, amount: r.amount, message: 'posting on an account after it was closed' }),
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
