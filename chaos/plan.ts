import { evenSlotMap, shardOf } from '../src/domain/slots.js';
import { Rng } from './rng.js';

/**
 * Everything a chaos run will do, derived from its seed alone: the accounts, every transfer (with
 * what the client does around it) and the fault schedule. Faults are placed by workload progress
 * (the n-th transfer started), not by wall time, so a seed replays the same plan on any machine.
 */

export const FAULT_KINDS = [
  'worker-kill', // kill -9 of one worker process mid-work, restarted after a pause
  'stack-kill', // kill -9 of PostgreSQL (postmaster and backends), Temporal and every worker at once
  'pg-restart', // PostgreSQL immediate shutdown (SIGQUIT) or kill -9, started again on the same data
  'temporal-restart', // kill -9 of the Temporal dev server, started again on its SQLite file
  'lost-responses', // a worker whose steps commit and then fail before answering, for a while
  'workers-down', // every worker down for longer than a hold lives
  'clock-skew', // a worker whose clock is minutes off, for a while
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultSpec {
  index: number;
  kind: FaultKind;
  /** Injected when this many transfers have been started. */
  afterStarts: number;
  /** Which worker (for faults on one worker). */
  worker: number;
  /** How long the target stays down or faulty, in ms. */
  durationMs: number;
  /** pg-restart: SIGQUIT (immediate shutdown) or SIGKILL; clock-skew: the skew in ms. */
  variant: string;
}

export interface AccountSpec {
  id: string;
  currency: 'USD' | 'EUR';
  shard: number;
  initial: bigint;
  frozen: boolean;
  /** Funds the approval-sized transfers. */
  whale: boolean;
}

/** What the client does with a transfer, and which outcomes are then allowed. */
export type TransferKind =
  | 'normal'
  | 'cancel' // a cancel update soon after the start
  | 'duplicate' // several concurrent starts of one id with the same parameters
  | 'duplicate-changed' // as above, plus a start of the same id with another amount
  | 'approve' // above the approval threshold, approved after a while
  | 'approval-cancel' // above the threshold, cancelled while it waits
  | 'approval-timeout' // above the threshold, never approved: cancelled by the workflow's timer
  | 'insufficient' // more than all the money there is
  | 'unknown-account'
  | 'frozen-account'
  | 'currency-mismatch';

export interface TransferSpec {
  index: number;
  id: string;
  kind: TransferKind;
  from: string;
  to: string;
  amount: bigint;
  currency: string;
  /** cancel / approve: delay before the client acts; duplicate: number of concurrent starts. */
  delayMs: number;
  copies: number;
}

export interface Plan {
  seed: number;
  accounts: AccountSpec[];
  transfers: TransferSpec[];
  faults: FaultSpec[];
  /** Minor units at or above which a transfer waits for approval (USD and EUR alike). */
  approvalThreshold: bigint;
  totals: Record<string, bigint>;
}

export interface PlanOptions {
  seed: number;
  transfers: number;
  accounts: number;
  faults: number;
  kinds: readonly FaultKind[];
  workers: number;
  holdTtlMs: number;
  /** Longest window of a lost-responses or clock-skew fault (a restarted worker needs a few s to poll). */
  faultWindowMs: number;
}

export const MAX_AMOUNT = 2n ** 63n - 1n;
const SLOT_MAP = evenSlotMap(2);

export function makePlan(o: PlanOptions): Plan {
  const approvalThreshold = 100_000_000n; // 1,000,000.00
  const accounts = makeAccounts(new Rng(o.seed, 'accounts'), o.accounts);
  const totals: Record<string, bigint> = {};
  for (const a of accounts) totals[a.currency] = (totals[a.currency] ?? 0n) + a.initial;
  const transfers = makeTransfers(new Rng(o.seed, 'workload'), o, accounts, approvalThreshold, totals);
  const faults = makeFaults(new Rng(o.seed, 'faults'), o);
  return { seed: o.seed, accounts, transfers, faults, approvalThreshold, totals };
}

function makeAccounts(rng: Rng, count: number): AccountSpec[] {
  const n = Math.max(count, 8);
  const accounts: AccountSpec[] = [];
  for (let i = 0; i < n; i++) {
    const id = `acct-${String(i).padStart(4, '0')}`;
    // A few EUR accounts (currency mismatch, EUR transfers), two frozen ones, two whales.
    const currency = i % 8 === 7 ? 'EUR' : 'USD';
    const frozen = i === 5 || i === 6;
    const whale = i < 2;
    const initial = whale ? rng.bigint(10n ** 13n, 10n ** 14n) : rng.bigint(1n, 5_000_000n) * (rng.chance(0.1) ? 1000n : 1n);
    accounts.push({ id, currency, shard: shardOf(id, SLOT_MAP), initial, frozen, whale });
  }
  for (const shard of [0, 1]) {
    if (!accounts.some((a) => a.shard === shard && a.currency === 'USD' && !a.frozen)) throw new Error(`no active USD account on shard ${shard}; use more accounts`);
  }
  return accounts;
}

function makeTransfers(rng: Rng, o: PlanOptions, accounts: AccountSpec[], threshold: bigint, totals: Record<string, bigint>): TransferSpec[] {
  const active = accounts.filter((a) => !a.frozen);
  const usd = active.filter((a) => a.currency === 'USD');
  const eur = active.filter((a) => a.currency === 'EUR');
  const whales = usd.filter((a) => a.whale);
  const frozen = accounts.filter((a) => a.frozen);
  const pair = (pool: AccountSpec[]) => {
    const from = rng.pick(pool);
    let to = rng.pick(pool);
    while (to.id === from.id) to = rng.pick(pool);
    return [from, to] as const;
  };
  const everyday = (from: AccountSpec) => rng.weighted<() => bigint>([
    [10, () => 1n], // the smallest amount there is
    [60, () => rng.bigint(1n, 10_000n)],
    [25, () => rng.bigint(1n, from.initial > 1n ? from.initial / 20n + 1n : 1n)],
    [5, () => rng.bigint(1n, from.initial * 2n + 1n)], // may well be refused for insufficient funds
  ])();
  const transfers: TransferSpec[] = [];
  for (let index = 0; index < o.transfers; index++) {
    const kind = rng.weighted<TransferKind>([
      [62, 'normal'], [5, 'cancel'], [5, 'duplicate'], [2, 'duplicate-changed'],
      [4, 'approve'], [1.5, 'approval-cancel'], [1.5, 'approval-timeout'],
      [5, 'insufficient'], [5, 'unknown-account'], [5, 'frozen-account'], [4, 'currency-mismatch'],
    ]);
    const id = `t${o.seed}-${String(index).padStart(5, '0')}`;
    let [from, to] = pair(eur.length > 1 && rng.chance(0.1) ? eur : usd);
    let fromId = from.id;
    let toId = to.id;
    let amount = everyday(from);
    let delayMs = 0;
    let copies = 1;
    switch (kind) {
      case 'cancel':
        delayMs = rng.int(0, 3000); // early ones are accepted, late ones (debit posting) rejected
        break;
      case 'duplicate':
      case 'duplicate-changed':
        copies = rng.int(2, 4);
        break;
      case 'approve':
      case 'approval-cancel':
      case 'approval-timeout':
        from = rng.pick(whales);
        fromId = from.id;
        to = rng.pick(usd.filter((a) => a.id !== from.id));
        toId = to.id;
        amount = rng.bigint(threshold, threshold * 20n);
        delayMs = rng.int(200, 3000);
        break;
      case 'insufficient':
        amount = rng.chance(0.5) ? MAX_AMOUNT : rng.bigint(totals[from.currency]! + 1n, MAX_AMOUNT);
        break;
      case 'unknown-account':
        if (rng.chance(0.5)) fromId = `ghost-${index}`;
        else toId = `ghost-${index}`;
        break;
      case 'frozen-account':
        if (rng.chance(0.5)) fromId = rng.pick(frozen).id;
        else toId = rng.pick(frozen).id;
        break;
      case 'currency-mismatch':
        from = rng.pick(usd);
        fromId = from.id;
        toId = rng.pick(eur).id;
        break;
      default:
        break;
    }
    // A refused transfer must be refused because of what it tests, not because it asked for too much.
    if (['unknown-account', 'frozen-account', 'currency-mismatch'].includes(kind)) amount = rng.bigint(1n, 100n);
    const currency = kind === 'currency-mismatch' ? 'USD' : from.currency;
    transfers.push({ index, id, kind, from: fromId, to: toId, amount, currency, delayMs, copies });
  }
  return transfers;
}

function makeFaults(rng: Rng, o: PlanOptions): FaultSpec[] {
  const faults: FaultSpec[] = [];
  if (o.kinds.length === 0 || o.faults === 0) return faults;
  // Rounds of every kind once, each round in its own seeded order: all kinds get the same share.
  const order: FaultKind[] = [];
  while (order.length < o.faults) order.push(...o.kinds.map((k) => [rng.float(), k] as const).sort((a, b) => a[0] - b[0]).map(([, k]) => k));
  const span = o.transfers / (o.faults + 1);
  for (let index = 0; index < o.faults; index++) {
    const kind = order[index]!;
    const afterStarts = Math.min(o.transfers - 1, Math.floor(span * (index + 1) + rng.float() * span * 0.5));
    const worker = rng.int(0, o.workers - 1);
    let durationMs = rng.int(200, 3000);
    let variant = '';
    if (kind === 'pg-restart') variant = rng.chance(0.5) ? 'SIGQUIT' : 'SIGKILL';
    if (kind === 'workers-down') durationMs = o.holdTtlMs + rng.int(1000, 4000);
    if (kind === 'lost-responses' || kind === 'clock-skew') durationMs = rng.int(Math.floor(o.faultWindowMs / 2), o.faultWindowMs);
    if (kind === 'clock-skew') variant = String((rng.chance(0.5) ? 1 : -1) * rng.int(5, 15) * 60_000);
    faults.push({ index, kind, afterStarts, worker, durationMs, variant });
  }
  return faults.sort((a, b) => a.afterStarts - b.afterStarts || a.index - b.index);
}
