import type pg from 'pg';
import { DEFAULT_BATCH_SETTINGS, MAX_BATCH_STEPS, type BatchSettings } from '../db/pool-settings.js';
import { retryOnDeadlock, withClient } from '../db/transaction.js';
import { compareLockOrder } from '../domain/slots.js';

/** One argument of a step function: its value and the SQL type it is cast to. */
export interface StepArg {
  value: unknown;
  type: string;
}

/**
 * The step functions ledger_batch (migrations/007_step_batches.sql) may call, and where each takes
 * the account it locks among its arguments. The idempotency key is always the third.
 */
const ACCOUNT_ARG: Readonly<Record<string, number>> = {
  ledger_reserve: 5,
  ledger_post: 5,
  ledger_void: 5,
  ledger_refund: 5,
  ledger_move: 5,
  ledger_release_suspense: 6,
};
const KEY_ARG = 2;

/** One step as its own statement, so its own transaction: `SELECT fn($1::type, …)` on a pooled connection. */
export async function callStep<A>(pool: pg.Pool, fn: string, args: readonly StepArg[]): Promise<A> {
  const placeholders = args.map((arg, i) => `$${i + 1}::${arg.type}`).join(', ');
  const { rows } = await withClient(pool, (client) =>
    client.query<{ answer: A }>(`SELECT ${fn}(${placeholders}) AS answer`, args.map((arg) => arg.value)),
  );
  return rows[0]!.answer;
}

/**
 * A step alone, run again when PostgreSQL aborted it to break a deadlock (40P01). Alone, a step
 * locks its key, its hold and its account in that order and cannot deadlock with another step alone;
 * a batch holds an account across its steps and can, with a step racing one of them on the same
 * hold or key. The aborted step changed nothing, so it runs again (the batch it waited for has
 * committed or failed by then), instead of handing its caller a fault it would not have met
 * without batching.
 */
export function callAlone<A>(pool: pg.Pool, fn: string, args: readonly StepArg[]): Promise<A> {
  return retryOnDeadlock(() => callStep<A>(pool, fn, args));
}

interface Queued {
  fn: string;
  args: readonly StepArg[];
  account: string | null;
  key: string;
  resolve: (answer: unknown) => void;
  reject: (error: unknown) => void;
}

/** What a shard's batcher has sent since it was made. */
export interface BatchStats {
  /** Steps sent alone. */
  singles: number;
  /** ledger_batch calls that committed, and the steps in them. */
  batches: number;
  batchedSteps: number;
  /** ledger_batch calls that failed as a whole, their steps then sent alone. */
  fallbacks: number;
}

/**
 * Client-side group commit for one shard. At most `inFlight` step calls are in flight at once; a
 * step that arrives while fewer are goes out at once, alone, exactly as without batching (one
 * statement, one round trip). Steps that arrive while all are busy wait, and as each call returns,
 * the waiting ones (up to `max`) go out together as one `SELECT ledger_batch(…)`: one transaction,
 * one commit. A batch's steps are sorted by the account they lock (slot, then id, then key), so
 * every batch takes its row locks in the same order.
 *
 * A batch that fails as a whole (a deadlock, a lock or statement timeout, one step raising, a lost
 * connection) committed nothing: each of its steps is sent again alone, so each caller gets the
 * answer or the classified error it would have got without batching. If the connection broke after
 * the batch's commit, the reruns replay the committed outcomes under their idempotency keys.
 */
export class StepBatcher {
  readonly max: number;
  readonly inFlight: number;
  readonly stats: BatchStats = { singles: 0, batches: 0, batchedSteps: 0, fallbacks: 0 };
  private running = 0;
  private readonly queue: Queued[] = [];
  /** Accounts the calls in flight lock, with how many calls hold each. */
  private readonly busy = new Map<string, number>();
  /** The database has no ledger_batch yet (migration 007 not applied): every step alone from then on. */
  private unsupported = false;

  constructor(private readonly pool: pg.Pool, settings: BatchSettings = {}, poolMax?: number) {
    const max = settings.max ?? DEFAULT_BATCH_SETTINGS.max;
    const inFlight = settings.inFlight ?? DEFAULT_BATCH_SETTINGS.inFlight;
    if (!Number.isSafeInteger(max) || max < 1 || max > MAX_BATCH_STEPS) throw new Error(`batch max must be an integer from 1 to ${MAX_BATCH_STEPS} (got ${max})`);
    if (!Number.isSafeInteger(inFlight) || inFlight < 1) throw new Error(`batch inFlight must be a positive integer (got ${inFlight})`);
    this.max = max;
    // More calls in flight than the pool has connections would only wait for one.
    this.inFlight = poolMax !== undefined && poolMax >= 1 ? Math.min(inFlight, poolMax) : inFlight;
  }

  /** Steps waiting for a call to return. */
  get waiting(): number {
    return this.queue.length;
  }

  /** The step function's answer, from a call of its own or from a batch. */
  run<A>(fn: string, args: readonly StepArg[]): Promise<A> {
    const accountArg = ACCOUNT_ARG[fn];
    if (accountArg === undefined || this.max <= 1 || this.unsupported) {
      this.stats.singles++;
      return callAlone<A>(this.pool, fn, args);
    }
    const value = args[accountArg]?.value;
    const account = typeof value === 'string' ? value : null;
    // A step whose account a call in flight holds waits for it (it would only wait on the row lock
    // inside PostgreSQL, holding a connection and a lane); the other lane serves other accounts.
    if (this.running < this.inFlight && !this.isBusy(account)) {
      this.stats.singles++;
      return this.track(callAlone<A>(this.pool, fn, args), [account]);
    }
    return new Promise<A>((resolve, reject) => {
      this.queue.push({
        fn,
        args,
        account,
        key: String(args[KEY_ARG]?.value),
        resolve: resolve as (answer: unknown) => void,
        reject,
      });
    });
  }

  private isBusy(account: string | null): boolean {
    return account !== null && this.busy.has(account);
  }

  private track<T>(call: Promise<T>, accounts: readonly (string | null)[]): Promise<T> {
    this.running++;
    const held = [...new Set(accounts.filter((a): a is string => a !== null))];
    for (const a of held) this.busy.set(a, (this.busy.get(a) ?? 0) + 1);
    const done = () => {
      this.running--;
      for (const a of held) {
        const n = (this.busy.get(a) ?? 1) - 1;
        if (n > 0) this.busy.set(a, n);
        else this.busy.delete(a);
      }
      this.drain();
    };
    call.then(done, done);
    return call;
  }

  /**
   * Sends what waits, as long as calls are free: each call takes up to `max` waiting steps, in
   * arrival order, skipping those whose account a call in flight holds (they go out once it returns).
   */
  private drain(): void {
    while (this.running < this.inFlight && this.queue.length > 0) {
      const picked: Queued[] = [];
      const kept: Queued[] = [];
      for (const q of this.queue) (picked.length < this.max && !this.isBusy(q.account) ? picked : kept).push(q);
      if (picked.length === 0) return;
      this.queue.splice(0, this.queue.length, ...kept);
      void this.track(this.send(picked), picked.map((q) => q.account));
    }
  }

  /** Settles every step it is given; never rejects. */
  private async send(steps: Queued[]): Promise<void> {
    if (steps.length === 1 || this.unsupported) {
      this.stats.singles += steps.length;
      await Promise.all(steps.map((s) => callAlone(this.pool, s.fn, s.args).then(s.resolve, s.reject)));
      return;
    }
    steps.sort(byLockOrder);
    let answers: unknown;
    try {
      const body = JSON.stringify(
        steps.map((s) => ({ fn: s.fn, args: s.args.map((arg) => arg.value ?? null) })),
        (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value),
      );
      const { rows } = await withClient(this.pool, (client) => client.query<{ answers: unknown }>('SELECT ledger_batch($1::jsonb) AS answers', [body]));
      answers = rows[0]?.answers;
      if (!Array.isArray(answers) || answers.length !== steps.length) {
        throw new Error(`ledger_batch answered ${Array.isArray(answers) ? answers.length : typeof answers} for ${steps.length} steps`);
      }
    } catch (error) {
      if (undefinedFunction(error)) this.unsupported = true;
      this.stats.fallbacks++;
      this.stats.singles += steps.length;
      this.alone(steps);
      return;
    }
    this.stats.batches++;
    this.stats.batchedSteps += steps.length;
    steps.forEach((s, i) => s.resolve((answers as unknown[])[i]));
  }

  /** After a failed batch: each step its own call, at once, outside the in-flight count (as without batching). */
  private alone(steps: readonly Queued[]): void {
    for (const s of steps) callAlone(this.pool, s.fn, s.args).then(s.resolve, s.reject);
  }
}

function byLockOrder(a: Queued, b: Queued): number {
  if (a.account !== b.account) {
    if (a.account === null) return 1;
    if (b.account === null) return -1;
    return compareLockOrder(a.account, b.account);
  }
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** 42883: the function does not exist (a database migrated before ledger_batch). */
function undefinedFunction(error: unknown): boolean {
  const e = error as { code?: string; cause?: { code?: string } } | undefined;
  return e?.code === '42883' || e?.cause?.code === '42883';
}
