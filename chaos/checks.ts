import type { Client } from '@temporalio/client';
import type { Ledger } from '../src/ledger/ledger.js';
import type { Findings } from './findings.js';
import type { Plan, TransferKind } from './plan.js';
import type { TransferRecord } from './workload.js';

/**
 * The end-of-run proof. Each check compares two independent accounts of the truth: the workload's
 * own books (the plan's deposits, what each transfer asked for), Temporal's outcomes, and the ledger
 * rows on both shards. Any disagreement is a violation.
 */
const REFUSED_KINDS: Partial<Record<TransferKind, string>> = {
  'insufficient': 'INSUFFICIENT_FUNDS',
  'unknown-account': 'ACCOUNT_NOT_FOUND',
  'frozen-account': 'ACCOUNT_FROZEN',
  'currency-mismatch': 'CURRENCY_MISMATCH',
};

interface LedgerTrail {
  entries: Record<string, number>;
  net: Map<string, bigint>;
}

export async function checkRun(plan: Plan, records: TransferRecord[], ledger: Ledger, client: Client, taskQueue: string, f: Findings): Promise<void> {
  checkOutcomes(records, f);
  await checkRuns(records, client, taskQueue, f);
  await checkLedger(plan, records, ledger, f);
}

/** The ledger against the plan's deposits and Temporal's outcomes, transfer by transfer and account by account. */
export async function checkLedger(plan: Plan, records: TransferRecord[], ledger: Ledger, f: Findings): Promise<void> {
  const report = await ledger.verify();
  for (const v of report.violations) f.violation({ check: `verify:${v.check}`, ...(v.transfer ? { transfer: v.transfer } : {}), ...(v.account ? { account: v.account } : {}), message: v.message });
  for (const [currency, total] of Object.entries(plan.totals)) {
    const t = report.totals.find((x) => x.currency === currency);
    const held = t ? BigInt(t.customers) + BigInt(t.clearing) + BigInt(t.suspense) : 0n;
    if (held !== total) f.violation({ check: 'total_conserved', message: `${currency}: customers ${t?.customers} + clearing ${t?.clearing} + suspense ${t?.suspense} = ${held}, but ${total} was deposited` });
    if (t && BigInt(t.clearing) !== 0n) f.violation({ check: 'clearing_empty', message: `${currency}: ${t.clearing} still in clearing after every transfer ended` });
    // No account is ever closed here, so no refund has a reason to land in suspense.
    if (t && BigInt(t.suspense) !== 0n) f.violation({ check: 'suspense_empty', message: `${currency}: ${t.suspense} in suspense although no account was closed` });
    if (t && BigInt(t.external) !== -total) f.violation({ check: 'external_matches_deposits', message: `${currency}: external ${t.external}, deposits ${total}` });
  }

  // Every customer-account journal leg and every pending hold, by transfer, from both shards.
  const trails = new Map<string, LedgerTrail>();
  const pending = new Map<string, number>();
  const holdStates = new Map<string, { debit: string; credit: string }>();
  for (const shard of ledger.shards) {
    const legs = await shard.pool.query<{ transfer_id: string; kind: string; account_id: string; entries: string; net: string }>(
      `SELECT transfer_id, kind, account_id, count(DISTINCT entry_id)::text AS entries, sum(amount)::text AS net
       FROM journal WHERE transfer_id IS NOT NULL AND account_id NOT LIKE 'sys:%' GROUP BY 1, 2, 3`);
    for (const row of legs.rows) {
      const trail = trails.get(row.transfer_id) ?? { entries: {}, net: new Map<string, bigint>() };
      trail.entries[row.kind] = (trail.entries[row.kind] ?? 0) + Number(row.entries);
      trail.net.set(row.account_id, (trail.net.get(row.account_id) ?? 0n) + BigInt(row.net));
      trails.set(row.transfer_id, trail);
    }
    const holds = await shard.pool.query<{ transfer_id: string; side: 'debit' | 'credit'; state: string }>(`SELECT transfer_id, side, state FROM holds`);
    for (const row of holds.rows) {
      if (row.state === 'pending') pending.set(row.transfer_id, (pending.get(row.transfer_id) ?? 0) + 1);
      const sides = holdStates.get(row.transfer_id) ?? { debit: 'none', credit: 'none' };
      sides[row.side] = row.state;
      holdStates.set(row.transfer_id, sides);
    }
  }

  const known = new Set(records.map((r) => r.spec.id));
  for (const id of trails.keys()) if (!known.has(id)) f.violation({ check: 'unknown_transfer_in_journal', transfer: id, message: 'journal rows for a transfer the workload never started' });

  const expected = new Map(plan.accounts.map((a) => [a.id, a.initial]));
  for (const r of records) {
    const id = r.spec.id;
    if (pending.has(id)) f.violation({ check: 'hold_left_pending', transfer: id, message: `${pending.get(id)} hold(s) still pending after the transfer ended ${r.result?.status ?? '(not ended)'}` });
    if (!r.result) continue;
    const trail = trails.get(id) ?? { entries: {}, net: new Map<string, bigint>() };
    const debits = trail.entries['transfer_debit'] ?? 0;
    const credits = trail.entries['transfer_credit'] ?? 0;
    const refunds = trail.entries['refund'] ?? 0;
    if (debits > 1) f.violation({ check: 'debited_twice', transfer: id, message: `${debits} debit entries` });
    if (credits > 1) f.violation({ check: 'credited_twice', transfer: id, message: `${credits} credit entries` });
    if (refunds > 1) f.violation({ check: 'refunded_twice', transfer: id, message: `${refunds} refund entries` });
    const { from, to } = r.result;
    const amount = BigInt(r.result.amount || '0');
    for (const account of trail.net.keys()) {
      if (account !== from && account !== to) f.violation({ check: 'foreign_account_touched', transfer: id, account, message: `the transfer moved money on ${account}, which is neither ${from} nor ${to}` });
    }
    // How the result says each side ended (posted, voided, expired, refunded, none) is what the ledger holds.
    const reported = (r.result as { sides?: { debit: string; credit: string } }).sides;
    if (reported) {
      const held = holdStates.get(id) ?? { debit: 'none', credit: 'none' };
      const ledgerSides = { debit: refunds > 0 ? 'refunded' : held.debit, credit: held.credit };
      if (reported.debit !== ledgerSides.debit || reported.credit !== ledgerSides.credit) {
        f.violation({ check: 'sides_match_ledger', transfer: id, message: `result says debit ${reported.debit} / credit ${reported.credit}, the ledger has ${ledgerSides.debit} / ${ledgerSides.credit}` });
      }
    }
    const netFrom = trail.net.get(from) ?? 0n;
    const netTo = trail.net.get(to) ?? 0n;
    if (r.result.status === 'COMPLETED') {
      if (debits !== 1 || credits !== 1 || refunds !== 0 || netFrom !== -amount || netTo !== amount) {
        f.violation({ check: 'completed_matches_ledger', transfer: id, message: `COMPLETED for ${amount}, but the ledger has ${debits} debit / ${credits} credit / ${refunds} refund entries, ${from} ${netFrom}, ${to} ${netTo}` });
      }
      expected.set(from, (expected.get(from) ?? 0n) - amount);
      expected.set(to, (expected.get(to) ?? 0n) + amount);
    } else if (credits !== 0 || debits !== refunds || netFrom !== 0n || netTo !== 0n) {
      f.violation({ check: 'not_completed_nets_to_zero', transfer: id, message: `${r.result.status} (${r.result.reason}), but the ledger has ${debits} debit / ${credits} credit / ${refunds} refund entries, ${from} ${netFrom}, ${to} ${netTo}` });
    }
  }

  // Row for row: each account ends where the plan's deposits and the completed transfers put it.
  for (const account of await ledger.listAccounts()) {
    const want = expected.get(account.id);
    if (want === undefined) {
      f.violation({ check: 'unexpected_account', account: account.id, message: 'an account the plan never opened' });
      continue;
    }
    if (BigInt(account.posted) !== want) f.violation({ check: 'balance_matches_outcomes', account: account.id, message: `posted ${account.posted}, but the deposits and the COMPLETED transfers give ${want}` });
    if (account.pendingDebits !== '0' || account.pendingCredits !== '0') f.violation({ check: 'nothing_pending', account: account.id, message: `pending debits ${account.pendingDebits}, pending credits ${account.pendingCredits}` });
  }
}

/** What the workload asked for and what Temporal says happened must fit together. */
export function checkOutcomes(records: TransferRecord[], f: Findings): void {
  for (const r of records) {
    const { spec, result } = r;
    if (r.closedAs) f.violation({ check: 'workflow_closed_abnormally', transfer: spec.id, message: r.closedAs });
    if (!result) {
      if (!r.closedAs) f.violation({ check: 'transfer_not_terminal', transfer: spec.id, message: `${spec.kind} transfer did not end within the time limit` });
      continue;
    }
    f.count(`outcome ${result.status}`);
    if (result.status !== 'COMPLETED') f.count(`reason ${result.status}: ${result.reason ?? '-'}`);
    const amounts = spec.kind === 'duplicate-changed' ? [spec.amount, spec.amount + 1n] : [spec.amount];
    if (result.from !== spec.from || result.to !== spec.to || result.currency !== spec.currency || !amounts.includes(BigInt(result.amount || '-1'))) {
      f.violation({ check: 'result_matches_request', transfer: spec.id, message: `asked ${spec.amount} ${spec.currency} ${spec.from}->${spec.to}, result says ${result.amount} ${result.currency} ${result.from}->${result.to}` });
    }
    const refusal = REFUSED_KINDS[spec.kind];
    if (refusal) {
      if (result.status === 'COMPLETED') f.violation({ check: 'refusal_completed', transfer: spec.id, message: `a ${spec.kind} transfer COMPLETED` });
      f.count(result.reason === refusal ? 'refused as expected' : `refused for another reason (${spec.kind}: ${result.reason})`);
    }
    if (r.cancel === 'accepted' && result.status === 'COMPLETED') f.violation({ check: 'cancelled_transfer_completed', transfer: spec.id, message: 'the cancel update was accepted, yet the transfer COMPLETED' });
    if (spec.kind === 'approval-cancel' && r.cancel === 'accepted' && result.status !== 'CANCELLED') {
      f.violation({ check: 'approval_cancel_outcome', transfer: spec.id, message: `cancelled while awaiting approval, but ended ${result.status} (${result.reason})` });
    }
    if (spec.kind === 'approval-timeout' && (result.status !== 'CANCELLED' || result.reason !== 'APPROVAL_TIMEOUT')) {
      f.violation({ check: 'approval_timeout_outcome', transfer: spec.id, message: `never approved, but ended ${result.status} (${result.reason})` });
    }
    if (r.lateCancel && r.cancel === 'accepted') f.violation({ check: 'late_cancel_accepted', transfer: spec.id, message: `a cancel sent after the transfer ended ${result.status} was accepted` });
    if (r.cancel) f.count(`cancel ${r.lateCancel ? 'after the end ' : ''}${r.cancel}`);
    if (r.changedStart) f.count(`changed duplicate ${r.changedStart}`);
    if (result.reason === 'HOLD_EXPIRED' || result.message?.includes('expired')) f.count('ended on an expired hold');
  }
}

/** One transfer id, one workflow run: concurrent duplicate starts must all land on the same run. */
async function checkRuns(records: TransferRecord[], client: Client, taskQueue: string, f: Findings): Promise<void> {
  const runs = new Map<string, number>();
  for await (const wf of client.workflow.list({ query: `TaskQueue = '${taskQueue}'` })) runs.set(wf.workflowId, (runs.get(wf.workflowId) ?? 0) + 1);
  for (const r of records) {
    const n = runs.get(r.spec.id) ?? 0;
    if (n !== 1) f.violation({ check: 'one_run_per_transfer', transfer: r.spec.id, message: `${n} workflow runs (${r.spec.kind}, ${r.spec.copies} concurrent start(s))` });
  }
  if (runs.size !== records.length) f.violation({ check: 'one_run_per_transfer', message: `${runs.size} workflow ids on the task queue for ${records.length} transfers` });
}
