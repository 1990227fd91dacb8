import fc from 'fast-check';
import { RefusalError } from '../../src/domain/errors.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import type { EntryResult, HoldResult, HoldState, HoldView, SweepResult, VoidResult } from '../../src/ledger/types.js';
import { accountOnShard, type TestClock } from '../support/ledger.js';

/**
 * Scenario generator, concurrent executor and outcome model for test/ledger/properties.test.ts.
 * A scenario is a set of transfer "lanes" (each a saga-like worker with duplicates, racing or early
 * compensations and crashes), account operations (deposits, withdrawals, freezes) and clock ticks
 * with sweepers, all started at once. The model is derived from what each call answered.
 */

export const CURRENCY = 'USD';
export type Side = 'debit' | 'credit';
/** The seven step keys of src/domain/transfer.ts stepKey, plus a second refund under another key (a rival worker). */
export type Step = 'reserve-debit' | 'reserve-credit' | 'post-debit' | 'post-credit' | 'void-debit' | 'void-credit' | 'refund-debit' | 'refund-debit-2';
/** An out-of-order compensation: void issued before its reservation, racing it, or racing the post. */
export type Rogue = 'none' | 'before-reserve' | 'with-reserve' | 'with-post';
const FORWARD: Step[] = ['reserve-debit', 'reserve-credit', 'post-debit', 'post-credit'];
const STEPS: Step[] = [...FORWARD, 'void-debit', 'void-credit', 'refund-debit', 'refund-debit-2'];
export const sideOf = (step: string): Side => (step.includes('debit') ? 'debit' : 'credit');

export interface TransferPlan {
  from: number;
  to: number;
  amount: number;
  ttlMs: number;
  goal: number; // forward steps attempted: 4 runs to completion, fewer means the saga aborts and compensates
  crashAfter: number; // forward step after which the worker vanishes without compensating (-1: never)
  rogue: Record<Side, Rogue>;
  copies: number[]; // per step (STEPS order): how many identical calls are issued at once
  conflict: boolean; // also issue reserve-debit under the same key with another counterparty (a reused key)
  rivalRefund: boolean; // a second worker refunds the same debit under its own key, concurrently
  retries: number[]; // late re-issues of steps already issued (indexes into them)
  strayPosts: boolean; // after an abort, post both holds anyway: must be refused or replayed
  delayMs: number;
}
export interface AccountOp { kind: 'deposit' | 'withdraw' | 'freeze'; account: number; amount: number; copies: number; conflict: boolean; delayMs: number; holdMs: number }
export interface Tick { delayMs: number; advanceMs: number; sweepers: number; batch: number }
export interface Scenario {
  funding: number[];
  transfers: TransferPlan[];
  accountOps: AccountOp[];
  ticks: Tick[];
  /** Expiry race: every lane waits after reserving; then the clock jumps and sweepers race the posts. */
  gate?: Omit<Tick, 'delayMs'>;
}

const rogueArb = fc.oneof({ weight: 4, arbitrary: fc.constant<Rogue>('none') }, fc.constantFrom<Rogue>('before-reserve', 'with-reserve', 'with-post'));
const oneIn = (n: number) => fc.nat(n - 1).map((x) => x === 0);
const copiesArb = fc.oneof({ weight: 3, arbitrary: fc.constant(1) }, { weight: 2, arbitrary: fc.integer({ min: 2, max: 3 }) });

export function transferArb(o: { ttlMs: fc.Arbitrary<number>; goal: fc.Arbitrary<number>; rogue?: fc.Arbitrary<Rogue> }): fc.Arbitrary<TransferPlan> {
  return fc.record({
    from: fc.nat(3), hop: fc.integer({ min: 1, max: 3 }), ttlMs: o.ttlMs, goal: o.goal, delayMs: fc.nat(12),
    // Mostly affordable amounts; one in six is likely above the available balance.
    amount: fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 1, max: 2_500 }) }, { weight: 1, arbitrary: fc.integer({ min: 2_500, max: 60_000 }) }),
    crashAfter: fc.oneof({ weight: 5, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.nat(3) }),
    rogue: fc.record({ debit: o.rogue ?? rogueArb, credit: o.rogue ?? rogueArb }),
    copies: fc.array(copiesArb, { minLength: STEPS.length, maxLength: STEPS.length }),
    conflict: oneIn(8), rivalRefund: oneIn(4), strayPosts: oneIn(4), retries: fc.array(fc.nat(9), { maxLength: 2 }),
  }).map(({ hop, ...p }) => ({ ...p, to: (p.from + hop) % 4 }));
}

export const accountOpArb: fc.Arbitrary<AccountOp> = fc.record({
  kind: fc.constantFrom<AccountOp['kind']>('deposit', 'deposit', 'withdraw', 'withdraw', 'freeze'),
  account: fc.nat(3), amount: fc.integer({ min: 1, max: 6_000 }), copies: copiesArb, conflict: oneIn(6), delayMs: fc.nat(25), holdMs: fc.nat(15),
});

export const fundingArb = fc.array(fc.constantFrom(0, 2_000, 10_000, 10_000, 30_000), { minLength: 4, maxLength: 4 });

export interface Rec {
  kind: Step | 'open' | 'deposit' | 'withdraw' | 'freeze' | 'unfreeze' | 'sweep';
  key: string; // '' for calls without an idempotency key
  variant: 'main' | 'conflict';
  transfer?: string;
  account?: string;
  amount?: number;
  ok: boolean;
  result?: unknown;
  code?: string; // the RefusalError's code
  unexpected?: unknown; // anything else thrown
}

/** Every ledger call goes through here: its answer (or refusal code) is kept for the model. */
export class Recorder {
  readonly records: Rec[] = [];
  async call(meta: Omit<Rec, 'ok'>, fn: () => Promise<unknown>): Promise<Rec> {
    const rec: Rec = { ...meta, ok: false };
    this.records.push(rec);
    await fn().then(
      (result) => Object.assign(rec, { ok: true, result }),
      (error: unknown) => Object.assign(rec, error instanceof RefusalError ? { code: error.code } : { unexpected: error }),
    );
    return rec;
  }
}

export interface World { ledger: Ledger; clock: TestClock; prefix: string; accounts: string[]; rec: Recorder }

const sleep = (ms: number) => (ms > 0 ? new Promise<void>((r) => setTimeout(r, ms)) : Promise.resolve());

/** Two accounts per shard (the last one with an overdraft), funded by deposits. */
export async function setupWorld(ledger: Ledger, clock: TestClock, prefix: string, funding: number[], rec: Recorder): Promise<World> {
  const accounts = ['a', 'b', 'c', 'd'].map((name, i) => accountOnShard(ledger, i < 2 ? 0 : 1, `${prefix}-${name}`));
  const w: World = { ledger, clock, prefix, accounts, rec };
  await Promise.all(accounts.map((id, i) => rec.call({ kind: 'open', key: '', variant: 'main', account: id }, () =>
    ledger.openAccount({ id, currency: CURRENCY, overdraftLimit: i === 3 ? 1_000 : 0 }))));
  await Promise.all(funding.map((amount, i) => amount <= 0 ? Promise.resolve() : rec.call({ kind: 'deposit', key: `${prefix}-fund${i}`, variant: 'main', account: accounts[i]!, amount }, () =>
    ledger.deposit({ key: `${prefix}-fund${i}`, accountId: accounts[i]!, amount: String(amount), currency: CURRENCY }))));
  return w;
}

export const transferId = (w: World, i: number) => `${w.prefix}-t${i}`;

function stepCall(w: World, t: string, p: TransferPlan, step: Step, variant: Rec['variant']): Promise<Rec> {
  const side = sideOf(step);
  const [from, to] = [w.accounts[p.from]!, w.accounts[p.to]!];
  const account = side === 'debit' ? from : to;
  const key = `${t}:${step}`;
  const hold = { key, holdKey: `${t}:reserve-${side}`, accountId: account };
  const l = w.ledger;
  const fn = step.startsWith('reserve')
    ? () => l.reserve({ key, transferId: t, accountId: account, side, amount: String(p.amount), currency: CURRENCY, ttlMs: p.ttlMs,
      counterparty: `${side === 'debit' ? to : from}${variant === 'conflict' ? '-elsewhere' : ''}` })
    : step.startsWith('post') ? () => l.post(hold) : step.startsWith('void') ? () => l.void(hold) : () => l.refund(hold);
  return w.rec.call({ kind: step, key, variant, transfer: t, account }, fn);
}

/** Called once per lane; resolves when every lane has called it (see Scenario.gate). */
type Gate = () => Promise<void>;

/** One transfer as a saga-like worker: forward steps, then (on abort) compensations in reverse. */
async function lane(w: World, i: number, p: TransferPlan, gate?: Gate): Promise<void> {
  const t = transferId(w, i);
  const issued: Step[] = [];
  const go = async (step: Step, variant: Rec['variant'] = 'main'): Promise<Rec> => {
    if (!issued.includes(step)) issued.push(step);
    const n = variant === 'main' ? p.copies[STEPS.indexOf(step)] ?? 1 : 1;
    const recs = await Promise.all(Array.from({ length: n }, () => stepCall(w, t, p, step, variant)));
    return recs[0]!;
  };
  let arrived = !gate;
  const arrive = async () => {
    if (arrived) return;
    arrived = true;
    await gate!();
  };
  const body = async (): Promise<void> => {
    await sleep(p.delayMs);
    const stack: Side[] = [];
    let aborted = p.goal < 4;
    for (let s = 0; s < p.goal; s++) {
      const step = FORWARD[s]!;
      const side = sideOf(step);
      const rogue = p.rogue[side];
      if (s === 2) await arrive();
      if (s < 2 && rogue === 'before-reserve') await go(`void-${side}`);
      const racing: Promise<Rec>[] = [];
      if ((s < 2 && rogue === 'with-reserve') || (s >= 2 && rogue === 'with-post')) racing.push(go(`void-${side}`));
      if (s === 0 && p.conflict) racing.push(go(step, 'conflict'));
      const [main] = await Promise.all([go(step), ...racing]);
      if (main!.unexpected) return;
      if (main!.ok && s < 2) stack.push(side); // a refused reservation wrote nothing: the saga drops its compensation
      // Refused, or a compensation already ran for this side: the saga unwinds.
      if (!main!.ok || (s < 2 && rogue !== 'none' && rogue !== 'with-post')) {
        aborted = true;
        break;
      }
      if (p.crashAfter === s) return; // the worker vanished: holds wait for the sweeper, clearing for settlement
    }
    await arrive();
    if (!aborted) return;
    for (const side of [...stack].reverse()) {
      const voided = await go(`void-${side}`);
      if (side === 'debit' && voided.code === 'HOLD_POSTED') await Promise.all([go('refund-debit'), ...(p.rivalRefund ? [go('refund-debit-2')] : [])]);
    }
    if (p.strayPosts) await Promise.all([go('post-debit'), go('post-credit')]);
  };
  try {
    await body();
  } finally {
    await arrive();
  }
  for (const r of p.retries) if (issued.length > 0) await go(issued[r % issued.length]!);
}

async function accountOp(w: World, j: number, op: AccountOp): Promise<void> {
  await sleep(op.delayMs);
  const id = w.accounts[op.account]!;
  if (op.kind === 'freeze') {
    await w.rec.call({ kind: 'freeze', key: '', variant: 'main', account: id }, () => w.ledger.setStatus(id, 'frozen'));
    await sleep(op.holdMs);
    await w.rec.call({ kind: 'unfreeze', key: '', variant: 'main', account: id }, () => w.ledger.setStatus(id, 'active'));
    return;
  }
  const kind = op.kind;
  const key = `${w.prefix}-${kind}${j}`;
  const call = (variant: Rec['variant'], amount: number) =>
    w.rec.call({ kind, key, variant, account: id, amount }, () => w.ledger[kind]({ key, accountId: id, amount: String(amount), currency: CURRENCY }));
  await Promise.all([...Array.from({ length: op.copies }, () => call('main', op.amount)), ...(op.conflict ? [call('conflict', op.amount + 1)] : [])]);
}

export function sweep(w: World, sweepers: number, batch?: number): Promise<Rec[]> {
  return Promise.all(Array.from({ length: sweepers }, () => w.rec.call({ kind: 'sweep', key: '', variant: 'main' }, () => w.ledger.sweepExpired(batch))));
}

/** Starts everything at once and waits for all of it. No call throws: answers land in the recorder. */
export async function runScenario(w: World, s: Scenario): Promise<void> {
  const background: Promise<unknown>[] = [];
  let gate: Gate | undefined;
  if (s.gate) {
    const { advanceMs, sweepers, batch } = s.gate;
    let count = 0;
    let open!: () => void;
    const opened = new Promise<void>((r) => (open = r));
    gate = async () => {
      if (++count === s.transfers.length) {
        w.clock.advance(advanceMs);
        background.push(sweep(w, sweepers, batch));
        open();
      }
      await opened;
    };
  }
  await Promise.all([
    ...s.transfers.map((p, i) => lane(w, i, p, gate)),
    ...s.accountOps.map((op, j) => accountOp(w, j, op)),
    ...s.ticks.map(async (tick) => {
      await sleep(tick.delayMs);
      w.clock.advance(tick.advanceMs);
      await sweep(w, tick.sweepers, tick.batch);
    }),
  ]);
  await Promise.all(background);
}

export interface ExpectedHold { hold: HoldView; state: HoldState; resolvedBy: string | null }
export interface Expected {
  holds: Map<string, ExpectedHold>;
  legs: string[]; // customer-account journal legs, `${entry}|${account}|${amount}`, sorted
  posted: Map<string, bigint>;
  deposits: bigint;
  withdrawals: bigint;
  net: Map<string, bigint>; // clearing per transfer: debit posted − refunded − credit posted
  problems: string[];
}

/** What the ledger must look like, derived only from the answers the calls received. */
export function expectFrom(records: Rec[], prefix: string): Expected {
  const problems: string[] = [];
  const holds = new Map<string, ExpectedHold>();
  const evidence = new Map<string, Set<string>>();
  // Sweepers are global: holds of other runs (left by an earlier failing run) are not this model's.
  const note = (hold: string, what: string) => hold.startsWith(`${prefix}-`) && evidence.set(hold, (evidence.get(hold) ?? new Set()).add(what));
  for (const r of records) if (r.ok && r.kind.startsWith('reserve')) {
    const hold = (r.result as HoldResult).hold;
    holds.set(hold.key, { hold, state: 'pending', resolvedBy: null });
  }
  const swept = new Map<string, number>();
  const firstOk = new Map<string, Rec>();
  for (const r of records) {
    if (r.ok && r.key && !firstOk.has(r.key)) firstOk.set(r.key, r);
    const holdKey = `${r.transfer}:reserve-${sideOf(r.kind)}`;
    if (r.kind.startsWith('post') && r.ok) note(holdKey, 'posted');
    if (r.kind.startsWith('post') && r.code === 'HOLD_EXPIRED') note(holdKey, 'expired');
    if (r.kind.startsWith('void') && r.ok && (r.result as VoidResult).outcome === 'voided') note(holdKey, 'voided');
    if (r.kind === 'sweep' && r.ok) for (const s of r.result as SweepResult[]) for (const h of s.expired) {
      swept.set(h.key, (swept.get(h.key) ?? 0) + 1);
      note(h.key, 'swept');
    }
  }
  for (const [key, seen] of evidence) {
    const entry = holds.get(key);
    if (!entry) {
      problems.push(`${key}: ${[...seen]} but no reservation of it succeeded`);
      continue;
    }
    const { transferId: t, side } = entry.hold;
    if (seen.has('posted') && seen.size === 1) Object.assign(entry, { state: 'posted', resolvedBy: `${t}:post-${side}` });
    else if (seen.has('voided') && seen.size === 1) Object.assign(entry, { state: 'voided', resolvedBy: `${t}:void-${side}` });
    else if (!seen.has('posted') && !seen.has('voided')) Object.assign(entry, { state: 'expired', resolvedBy: seen.has('swept') ? 'sweeper' : `${t}:post-${side}` });
    else problems.push(`${key} resolved more than once: ${[...seen].join(' + ')}`);
    if ((swept.get(key) ?? 0) > 1) problems.push(`${key} expired by ${swept.get(key)} sweeps`);
  }
  const [legs, posted, net] = [[] as string[], new Map<string, bigint>(), new Map<string, bigint>()];
  let [deposits, withdrawals] = [0n, 0n];
  const leg = (entry: string, account: string, amount: bigint, result: unknown) => {
    legs.push(`${entry}|${account}|${amount}`);
    posted.set(account, (posted.get(account) ?? 0n) + amount);
    const mine = (result as EntryResult).postings.filter((p) => !p.accountId.startsWith('sys:')).map((p) => `${p.entryId}|${p.accountId}|${p.amount}`);
    if (mine.join() !== `${entry}|${account}|${amount}`) problems.push(`${entry} answered postings ${mine} (expected ${entry}|${account}|${amount})`);
  };
  for (const [key, r] of firstOk) {
    if (r.kind === 'deposit' || r.kind === 'withdraw') {
      const amount = BigInt(r.amount!);
      leg(key, r.account!, r.kind === 'deposit' ? amount : -amount, r.result);
      if (r.kind === 'deposit') deposits += amount;
      else withdrawals += amount;
    } else if (r.kind.startsWith('post') || r.kind.startsWith('refund')) {
      const entry = holds.get(`${r.transfer}:reserve-${sideOf(r.kind)}`);
      if (!entry) continue; // reported above
      const amount = BigInt(entry.hold.amount);
      const signed = r.kind === 'post-debit' ? -amount : amount;
      leg(key, entry.hold.accountId, signed, r.result);
      net.set(r.transfer!, (net.get(r.transfer!) ?? 0n) - signed);
    }
  }
  return { holds, legs: legs.sort(), posted, deposits, withdrawals, net, problems };
}
