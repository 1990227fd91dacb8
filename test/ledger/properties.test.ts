import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SweepResult, VoidResult } from '../../src/ledger/types.js';
import type { VerifyReport, Violation } from '../../src/ledger/verify.js';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import {
  accountOpArb, CURRENCY, expectFrom, fundingArb, Recorder, runScenario, setupWorld, sideOf, sweep, transferArb,
  type Expected, type Rec, type Scenario, type World,
} from './model.js';

/**
 * Property-based tests against real PostgreSQL with two shards. Each fast-check run opens its own
 * accounts and keys under a fresh prefix, runs a generated scenario concurrently (duplicates,
 * reordered compensations, crashes, expiries with racing sweepers, refusals, deposits, withdrawals,
 * freezes), then checks the ledger against a model derived from what every call answered, settles
 * (expire everything, refund stranded debits) and checks again.
 *
 * Reproduce a failure with the seed (and path) fast-check prints: PROPERTY_SEED=<seed> [PROPERTY_PATH=<path>
 * -t '<property name>'] [PROPERTY_RUNS=<n>] npx vitest run test/ledger/properties.test.ts. The generated
 * plan replays exactly; the interleaving of concurrent calls does not. PROPERTY_SHRINK=1 shrinks a
 * counterexample (off by default: every run is real I/O). PROPERTY_STATS=1 adds an outcome histogram.
 */
const SEED = Number(process.env.PROPERTY_SEED ?? 20_250_611);
const RUNS = Number(process.env.PROPERTY_RUNS ?? 40);
const params = {
  seed: SEED,
  endOnFailure: process.env.PROPERTY_SHRINK !== '1',
  ...(process.env.PROPERTY_PATH ? { path: process.env.PROPERTY_PATH } : {}),
};
const counts = { operations: 0, verifies: 0, runs: 0 };
/** How often each call ended in each way: is the generator reaching the races? (PROPERTY_STATS=1) */
const stats = new Map<string, number>();
function tally(tag: string, records: Rec[]): void {
  for (const r of records) {
    const swept = r.kind === 'sweep' && r.ok ? (r.result as SweepResult[]).some((x) => x.expired.length > 0) : false;
    const how = !r.ok ? r.code ?? 'THREW' : r.kind.startsWith('void') ? (r.result as VoidResult).outcome
      : r.kind === 'sweep' ? (swept ? 'expired some' : 'expired none') : (r.result as { replayed?: boolean }).replayed ? 'replayed' : 'ok';
    stats.set(`${tag} ${r.kind} ${how}`, (stats.get(`${tag} ${r.kind} ${how}`) ?? 0) + 1);
  }
}

afterAll(() => {
  const histogram = process.env.PROPERTY_STATS === '1' ? `\n${[...stats].sort().map(([k, n]) => `  ${k}: ${n}`).join('\n')}` : '';
  console.log(`[properties] seed=${SEED} runs=${counts.runs} ledger operations=${counts.operations} (plus ${counts.verifies} verify calls)${histogram}`);
});

const ALLOWED: Record<Rec['kind'], string[]> = {
  open: [], freeze: [], unfreeze: [], sweep: [],
  deposit: ['ACCOUNT_FROZEN', 'IDEMPOTENCY_KEY_REUSED'],
  withdraw: ['INSUFFICIENT_FUNDS', 'ACCOUNT_FROZEN', 'IDEMPOTENCY_KEY_REUSED'],
  'reserve-debit': ['INSUFFICIENT_FUNDS', 'ACCOUNT_FROZEN', 'FENCED', 'IDEMPOTENCY_KEY_REUSED'],
  'reserve-credit': ['ACCOUNT_FROZEN', 'FENCED'],
  'post-debit': ['HOLD_VOIDED', 'HOLD_EXPIRED', 'HOLD_NOT_FOUND'],
  'post-credit': ['HOLD_VOIDED', 'HOLD_EXPIRED', 'HOLD_NOT_FOUND'],
  'void-debit': ['HOLD_POSTED'],
  'void-credit': ['HOLD_POSTED'],
  // Refunds are only issued for debits known to be posted; a rival refund under another key may win.
  'refund-debit': ['ALREADY_REFUNDED'],
  'refund-debit-2': ['ALREADY_REFUNDED'],
};

/** No call failed with anything but an expected refusal, and reused keys / frozen accounts were deliberate. */
function callProblems(records: Rec[]): string[] {
  const reused = new Set(records.filter((r) => r.variant === 'conflict').map((r) => r.key));
  const frozen = new Set(records.filter((r) => r.kind === 'freeze').map((r) => r.account));
  const out: string[] = [];
  for (const r of records) {
    const what = `${r.kind}(${r.key || r.account || ''})`;
    if (r.unexpected) out.push(`${what} threw ${(r.unexpected as Error)?.stack ?? String(r.unexpected)}`);
    else if (!r.ok && !ALLOWED[r.kind].includes(r.code!)) out.push(`${what} refused with unexpected ${r.code}`);
    else if (r.code === 'IDEMPOTENCY_KEY_REUSED' && !reused.has(r.key)) out.push(`${what}: IDEMPOTENCY_KEY_REUSED for a key never reused`);
    else if (r.code === 'ACCOUNT_FROZEN' && !frozen.has(r.account)) out.push(`${what}: ACCOUNT_FROZEN on an account never frozen`);
  }
  return out;
}

/** Refusals and compensation outcomes agree with the final state of the hold they were about. */
function consistencyProblems(records: Rec[], exp: Expected): string[] {
  const out: string[] = [];
  const state = (r: Rec) => exp.holds.get(`${r.transfer}:reserve-${sideOf(r.kind)}`)?.state ?? 'absent';
  const nullCompensated = new Set(records.filter((r) => r.kind.startsWith('void') && r.ok && (r.result as VoidResult).outcome === 'null_compensation').map((r) => `${r.transfer}:${sideOf(r.kind)}`));
  const implied: Record<string, string> = { HOLD_POSTED: 'posted', HOLD_VOIDED: 'voided', HOLD_EXPIRED: 'expired', HOLD_NOT_FOUND: 'absent', FENCED: 'absent',
    voided: 'voided', already_voided: 'voided', already_expired: 'expired', null_compensation: 'absent', nothing_reserved: 'absent' };
  for (const r of records) {
    if (!r.transfer) continue;
    const said = r.ok ? (r.kind.startsWith('void') ? (r.result as VoidResult).outcome : undefined) : r.code;
    const want = said && implied[said];
    if (want && state(r) !== want) out.push(`${r.kind}(${r.key}) answered ${said} but the hold ended ${state(r)}`);
    if (r.code === 'ALREADY_REFUNDED' && !records.some((o) => o.ok && o.transfer === r.transfer && o.kind.startsWith('refund') && o.key !== r.key)) {
      out.push(`${r.key} ALREADY_REFUNDED but no other refund of ${r.transfer} succeeded`);
    }
    if (r.code === 'FENCED' && !nullCompensated.has(`${r.transfer}:${sideOf(r.kind)}`)) out.push(`${r.key} FENCED without a null compensation`);
  }
  return out;
}

const canonical = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x);

/** Same key issued several times: one application at most, and every answer equal to the first. */
function duplicateProblems(records: Rec[]): string[] {
  const out: string[] = [];
  const byKey = new Map<string, Rec[]>();
  for (const r of records) if (r.key) byKey.set(r.key, [...(byKey.get(r.key) ?? []), r]);
  for (const [key, recs] of byKey) {
    const outcome = (r: Rec) => (r.ok ? `ok ${canonical({ ...(r.result as object), replayed: undefined })}` : r.code!);
    const variants = new Map<string, Set<string>>();
    for (const r of recs) variants.set(r.variant, (variants.get(r.variant) ?? new Set()).add(outcome(r)));
    for (const [variant, seen] of variants) if (seen.size > 1) out.push(`${key} (${variant}) answered differently: ${[...seen].join(' | ')}`);
    const owners = [...variants].filter(([, seen]) => [...seen].some((o) => o !== 'IDEMPOTENCY_KEY_REUSED' && o !== 'FENCED'));
    if (owners.length > 1) out.push(`${key}: two different requests both took effect`);
    const applied = recs.filter((r) => r.ok && (r.result as { replayed?: boolean }).replayed === false).length;
    if (applied > 1 || (applied === 0 && recs.some((r) => r.ok))) out.push(`${key} applied ${applied} times`);
  }
  return out;
}

async function rows<T>(t: TestLedger, sql: string, args: unknown[]): Promise<T[]> {
  const all = await Promise.all(t.ledger.shards.map((s) => s.pool.query(sql, args)));
  return all.flatMap((r) => r.rows as T[]);
}

async function verify(t: TestLedger): Promise<VerifyReport> {
  counts.verifies++;
  // No grace: a hold past expiry or money in clearing with nothing pending is reported at once.
  return t.ledger.verify({ expiryGraceMs: 0, transitGraceMs: 0 });
}

interface Totals { customers: bigint; clearing: bigint; entered: bigint; left: bigint }
function totals(report: VerifyReport): Totals {
  const row = report.totals.find((r) => r.currency === CURRENCY);
  return { customers: BigInt(row?.customers ?? 0), clearing: BigInt(row?.clearing ?? 0), entered: BigInt(row?.entered ?? 0), left: BigInt(row?.left ?? 0) };
}

/** Holds, journal legs, balances and totals in the database are exactly what the answers imply. */
async function checkState(t: TestLedger, w: World, exp: Expected, base: Totals, report: VerifyReport): Promise<void> {
  const like = `${w.prefix}-%`;
  const dbHolds = await rows<{ key: string; state: string; resolved_by: string | null }>(t, 'SELECT key, state, resolved_by FROM holds WHERE key LIKE $1', [like]);
  expect(dbHolds.map((h) => `${h.key} ${h.state} ${h.resolved_by}`).sort(), 'hold states').toEqual(
    [...exp.holds.values()].map((h) => `${h.hold.key} ${h.state} ${h.resolvedBy}`).sort());
  expect(await rows(t, `SELECT key, state, resolved_at, expires_at FROM holds WHERE key LIKE $1
    AND ((state = 'posted' AND resolved_at >= expires_at) OR (state = 'expired' AND resolved_at < expires_at))`, [like]), 'posted after expiry / expired early').toEqual([]);
  const legs = await rows<{ entry_id: string; account_id: string; amount: string }>(t,
    `SELECT entry_id, account_id, amount::text AS amount FROM journal WHERE entry_id LIKE $1 AND account_id NOT LIKE 'sys:%'`, [like]);
  expect(legs.map((l) => `${l.entry_id}|${l.account_id}|${l.amount}`).sort(), 'journal legs').toEqual(exp.legs);

  const accounts = await t.ledger.listAccounts();
  expect(accounts.filter((a) => BigInt(a.available) < 0n), 'accounts with negative available').toEqual([]);
  const sums = await rows<{ account_id: string; total: string }>(t,
    'SELECT account_id, sum(amount)::text AS total FROM journal WHERE account_id = ANY($1::text[]) GROUP BY account_id', [w.accounts]);
  const pending = (id: string, side: string) => [...exp.holds.values()]
    .filter((h) => h.state === 'pending' && h.hold.accountId === id && h.hold.side === side).reduce((s, h) => s + BigInt(h.hold.amount), 0n);
  const actual = accounts.filter((a) => w.accounts.includes(a.id)).map((a) => ({
    id: a.id, posted: a.posted, journal: sums.find((s) => s.account_id === a.id)?.total ?? '0', pendingDebits: a.pendingDebits, pendingCredits: a.pendingCredits,
  }));
  expect(actual, 'balances').toEqual(w.accounts.map((id) => {
    const posted = `${exp.posted.get(id) ?? 0n}`;
    return { id, posted, journal: posted, pendingDebits: `${pending(id, 'debit')}`, pendingCredits: `${pending(id, 'credit')}` };
  }));

  const now = totals(report);
  expect(now.customers + now.clearing, 'customers + clearing = deposits − withdrawals (whole ledger)').toBe(now.entered - now.left);
  const inTransit = [...exp.net.values()].reduce((s, n) => s + n, 0n);
  expect({ held: now.customers + now.clearing - base.customers - base.clearing, clearing: now.clearing - base.clearing, entered: now.entered - base.entered, left: now.left - base.left }, 'totals')
    .toEqual({ held: exp.deposits - exp.withdrawals, clearing: inTransit, entered: exp.deposits, left: exp.withdrawals });
}

function violationsOf(report: VerifyReport, prefix: string): string[] {
  const ours = (v: Violation) => {
    const ids = [v.transfer, v.hold, v.account, v.entry].filter((x): x is string => x !== undefined);
    return ids.length === 0 || ids.some((x) => x.startsWith(`${prefix}-`));
  };
  return report.violations.filter(ours).map((v) => `${v.check} ${v.hold ?? v.transfer ?? v.account ?? v.entry ?? v.currency} ${v.amount ?? ''}`).sort();
}

const pendingTransfers = (exp: Expected) => new Set([...exp.holds.values()].filter((h) => h.state === 'pending').map((h) => h.hold.transferId));

async function checkScenario(t: TestLedger, prefix: string, s: Scenario): Promise<void> {
  const rec = new Recorder();
  try {
    const base = totals(await verify(t));
    const w = await setupWorld(t.ledger, t.clock, prefix, s.funding, rec);
    await runScenario(w, s);
    expect(callProblems(rec.records), 'calls').toEqual([]);
    let exp = expectFrom(rec.records, prefix);
    expect([...exp.problems, ...consistencyProblems(rec.records, exp)], 'model').toEqual([]);

    // Before settlement: verify names exactly the holds past expiry and the transfers stranded in clearing.
    let report = await verify(t);
    const checkedAt = Date.parse(report.checkedAt);
    const stillPending = pendingTransfers(exp);
    // verify reads each shard in its own snapshot, a moment apart, and stamps checkedAt after them: a
    // hold that expired in that moment may or may not be reported. Only those few are left out.
    const borderline = new Set([...exp.holds.values()].filter((h) => h.state === 'pending' && Math.abs(Date.parse(h.hold.expiresAt) - checkedAt) < 2_000)
      .map((h) => `hold_pending_past_expiry ${h.hold.key} ${h.hold.amount}`));
    expect(violationsOf(report, prefix).filter((v) => !borderline.has(v)), 'verify before settlement').toEqual([
      ...[...exp.holds.values()].filter((h) => h.state === 'pending' && Date.parse(h.hold.expiresAt) < checkedAt)
        .map((h) => `hold_pending_past_expiry ${h.hold.key} ${h.hold.amount}`).filter((v) => !borderline.has(v)),
      ...[...exp.net].filter(([tr, n]) => n !== 0n && !stillPending.has(tr)).map(([tr, n]) => `clearing_stuck ${tr} ${n}`),
    ].sort());
    await checkState(t, w, exp, base, report);

    // Settle 1: move the clock past every expiry and sweep (two sweepers at once).
    t.clock.advance(3 * 3_600_000);
    while ((await sweep(w, 2, 50)).some((r) => r.ok && (r.result as SweepResult[]).some((s) => s.expired.length > 0)));
    exp = expectFrom(rec.records, prefix);
    expect([...exp.problems, ...consistencyProblems(rec.records, exp)], 'model after sweep').toEqual([]);
    expect([...exp.holds.values()].filter((h) => h.state === 'pending'), 'holds pending after the sweep').toEqual([]);
    const refunded = new Set(rec.records.filter((r) => r.kind.startsWith('refund') && r.ok).map((r) => r.transfer));
    const stranded = [...exp.holds.values()]
      .filter((h) => h.hold.side === 'debit' && h.state === 'posted' && !refunded.has(h.hold.transferId)
        && exp.holds.get(`${h.hold.transferId}:reserve-credit`)?.state !== 'posted')
      .map((h) => h.hold);
    report = await verify(t);
    expect(violationsOf(report, prefix), 'verify after the sweep: exactly the debits posted without their credit')
      .toEqual(stranded.map((h) => `clearing_stuck ${h.transferId} ${h.amount}`).sort());

    // Settle 2: refund every stranded debit (each refund issued twice, same key).
    await Promise.all(stranded.flatMap((h) => [0, 1].map(() =>
      rec.call({ kind: 'refund-debit', key: `${h.transferId}:refund-debit`, variant: 'main', transfer: h.transferId, account: h.accountId },
        () => t.ledger.refund({ key: `${h.transferId}:refund-debit`, holdKey: h.key, accountId: h.accountId })))));
    expect(callProblems(rec.records), 'calls incl. settlement').toEqual([]);
    exp = expectFrom(rec.records, prefix);
    expect([...exp.problems, ...consistencyProblems(rec.records, exp)], 'model after refunds').toEqual([]);
    expect([...exp.net].filter(([, n]) => n !== 0n), 'money left in clearing').toEqual([]);
    report = await verify(t);
    expect(report.violations, 'verify after settlement').toEqual([]);
    await checkState(t, w, exp, base, report);
    expect(duplicateProblems(rec.records), 'duplicates').toEqual([]);
  } finally {
    counts.operations += rec.records.length;
    counts.runs++;
    tally(prefix.slice(0, 2), rec.records);
  }
}

function ledgerProperty(name: string, tag: string, scenarios: fc.Arbitrary<Scenario>, runs = RUNS) {
  describe(name, () => {
    let t: TestLedger;
    beforeAll(async () => {
      t = await createTestLedger(2, { poolSize: 24 });
    });
    afterAll(async () => t?.drop());
    it('keeps the ledger consistent with the model and verify clean after settlement', async () => {
      let run = 0;
      await fc.assert(fc.asyncProperty(scenarios, (s) => checkScenario(t, `${tag}r${run++}`, s)), { ...params, numRuns: runs });
    }, 180_000);
  });
}

const batch = fc.constantFrom(1, 2, 500); // small batches leave due holds for the next sweeper
const goal = fc.oneof({ weight: 4, arbitrary: fc.constant(4) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 3 }) });

ledgerProperty('concurrent transfers with duplicates, reordered compensations, crashes, expiries and refusals', 'sg', fc.record({
  funding: fundingArb,
  transfers: fc.array(transferArb({ ttlMs: fc.constantFrom(60_000, 3_600_000), goal }), { minLength: 2, maxLength: 7 }),
  accountOps: fc.array(accountOpArb, { maxLength: 6 }),
  ticks: fc.array(fc.record({ delayMs: fc.nat(30), advanceMs: fc.constantFrom(0, 20_000, 45_000, 70_000), sweepers: fc.integer({ min: 1, max: 2 }), batch }), { maxLength: 3 }),
}));

ledgerProperty('holds expiring while posts, voids and several sweepers race on them', 'ex', fc.record({
  funding: fundingArb,
  transfers: fc.array(transferArb({
    ttlMs: fc.oneof(fc.constantFrom(30_000, 120_000), fc.integer({ min: 60_000, max: 60_040 })),
    goal: fc.constantFrom(3, 4, 4),
    rogue: fc.constantFrom('none' as const, 'none' as const, 'with-post' as const),
  }), { minLength: 3, maxLength: 8 }),
  accountOps: fc.array(accountOpArb.filter((o) => o.kind !== 'freeze'), { maxLength: 3 }),
  ticks: fc.constant([]),
  gate: fc.record({ advanceMs: fc.constant(60_000), sweepers: fc.integer({ min: 1, max: 3 }), batch }),
}), Math.max(1, Math.round(RUNS * 0.6)));
