import { ACCOUNT_STATUSES, assertAccountId, type AccountStatus } from '../domain/accounts.js';
import { Refusal } from '../domain/codes.js';
import { RefusalError } from '../domain/errors.js';
import { assertIdempotencyKey, assertOneOf } from '../domain/input.js';
import { assertCurrency, parseMinorUnits } from '../domain/money.js';
import { assertTransferId } from '../domain/transfer.js';
import { shardOf, type SlotRange } from '../domain/slots.js';
import { migrate } from '../db/migrate.js';
import { classifyDbError, createPool, DEFAULT_POOL_SETTINGS, withTransaction, type PoolSettings } from '../db/transaction.js';
import type { BatchSettings } from '../db/pool-settings.js';
import { TransientError } from '../domain/errors.js';
import { checkShardIdentity, ShardIdentityError, slotMapHash } from './identity.js';
import { initSlotState, isMoved, LOCKS, readControl, seedControl, type ControlState } from './topology.js';
import { releaseSuspense, suspenseBalances, type SuspenseBalance } from './suspense-ops.js';
import * as accounts from './account-ops.js';
import * as holds from './hold-ops.js';
import type { ShardContext } from './shard-context.js';
import { StepBatcher } from './step-batcher.js';
import { sweepExpired } from './sweeper.js';
import type { AccountView, EntryResult, HoldResult, HoldSide, HoldView, PostingView, SweepResult, VoidResult } from './types.js';
import { verifyShards, type VerifyOptions, type VerifyReport } from './verify.js';
import { HOLD_COLUMNS, holdView, POSTING_COLUMNS, postingView, type HoldRow, type PostingRow } from './views.js';

export interface LedgerOptions {
  shardUrls: readonly string[];
  slotMap: readonly SlotRange[];
  /** Test hook: moves the database's clock forward by this many ms (hold expiry without waiting). */
  clockOffsetMs?: () => number;
  /** Connections per shard (shorthand for `pool.max`). */
  poolSize?: number;
  pool?: PoolSettings;
  /** Concurrent steps of a shard grouped into one transaction (default: up to 32 steps, 2 calls in flight; max 1: off). */
  batch?: BatchSettings;
}

/**
 * Idempotency keys and transfer ids: printable ASCII without spaces or "/", so a key can be logged,
 * typed and embedded in an entry id unambiguously; at most 200 characters.
 */
const KEY = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$/;

/**
 * The ledger of record across shards. Every operation validates its input first (bad input changes
 * nothing), then runs as one short transaction on exactly one shard, chosen by the account's slot.
 */
export class Ledger {
  private readonly identities = new Map<number, Promise<void>>();
  private readonly mapHash: string;
  private topologyLoaded?: Promise<void>;
  private refreshing?: Promise<void>;
  private lastRefresh = 0;
  /** The slot map's version in the control table when it was last read (0: not read yet). */
  mapVersion = 0;
  clusterId?: string;
  /** Every shard's URL: the seed's from configuration, the others from the registry. */
  readonly urls: string[];

  constructor(
    readonly shards: ShardContext[],
    public slotMap: readonly SlotRange[],
    urls: readonly string[] = [],
    private readonly makeShard: (shard: number, url: string) => ShardContext = () => { throw new Error('this ledger cannot open shards it was not given'); },
  ) {
    this.mapHash = slotMapHash(slotMap, shards.length);
    this.urls = [...urls];
  }

  static connect(options: LedgerOptions): Ledger {
    const offsetMs = options.clockOffsetMs ?? (() => 0);
    const settings = { ...(options.poolSize ? { max: options.poolSize } : {}), ...options.pool };
    const make = (shard: number, url: string): ShardContext => {
      const pool = createPool(url, settings);
      return { shard, pool, offsetMs, steps: new StepBatcher(pool, options.batch, settings.max ?? DEFAULT_POOL_SETTINGS.max) };
    };
    const shards = options.shardUrls.map((url, shard) => make(shard, url));
    return new Ledger(shards, options.slotMap, options.shardUrls, make);
  }

  async migrate(): Promise<void> {
    for (const shard of this.shards) await migrate(shard.pool);
  }

  /** Every shard is the database it was given as (checked once per shard, before its first operation). */
  async checkIdentity(): Promise<void> {
    await this.topology();
    await Promise.all(this.shards.map((s) => this.ready(s)));
  }

  /**
   * The slot map and the shard registry from shard 0's control tables, read once before the first
   * operation (seeded from this process's configuration if the cluster has none yet), and again
   * whenever a shard answers MOVED.
   */
  topology(): Promise<void> {
    if (!this.topologyLoaded) {
      this.topologyLoaded = classified((async () => {
        const control = this.shards[0]!;
        await this.ready(control, false);
        await seedControl(control.pool, this.slotMap, this.urls);
        await this.applyControl(await readControl(control.pool));
      })());
      this.topologyLoaded.catch(() => (this.topologyLoaded = undefined));
    }
    return this.topologyLoaded;
  }

  /** Reads the map again (at most every 200 ms however many redirects ask for it). */
  refreshMap(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    const wait = Math.max(0, this.lastRefresh + 200 - Date.now());
    this.refreshing = (async () => {
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      try {
        await this.applyControl(await classified(readControl(this.shards[0]!.pool)));
      } finally {
        this.lastRefresh = Date.now();
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private async applyControl(control: ControlState): Promise<void> {
    if (this.clusterId && control.clusterId !== this.clusterId) throw new ShardIdentityError(`shard 0's control table belongs to another cluster (${control.clusterId}, was ${this.clusterId})`);
    this.clusterId = control.clusterId;
    for (const { shard, url } of control.shards) {
      if (this.shards[shard]) continue;
      this.urls[shard] = url;
      this.shards[shard] = this.makeShard(shard, url);
    }
    if (control.version >= this.mapVersion) {
      this.slotMap = control.slotMap;
      this.mapVersion = control.version;
    }
  }

  /** A shard by number, once its identity is known to be right. */
  async shardNumber(shard: number): Promise<ShardContext> {
    await this.topology();
    let ctx = this.shards[shard];
    if (!ctx) {
      await this.refreshMap();
      ctx = this.shards[shard];
    }
    if (!ctx) throw new RefusalError(Refusal.INVALID_INPUT, `shard ${shard} is not registered (shards 0-${this.shards.length - 1})`);
    await this.ready(ctx);
    return ctx;
  }

  private ready(ctx: ShardContext, withSlots = true): Promise<void> {
    let check = this.identities.get(ctx.shard);
    if (!check) {
      const where = redactUrl(this.urls[ctx.shard]) ?? `#${ctx.shard}`;
      check = classified(checkShardIdentity(ctx, this.mapHash, where));
      // A fault while checking is retried by the next call; only a completed check is remembered.
      check.catch(() => this.identities.delete(ctx.shard));
      this.identities.set(ctx.shard, check);
    }
    if (!withSlots) return check;
    return check.then(() => this.slotsReady(ctx));
  }

  private readonly slotStates = new Map<number, Promise<void>>();

  private slotsReady(ctx: ShardContext): Promise<void> {
    let init = this.slotStates.get(ctx.shard);
    if (!init) {
      init = classified(this.topology().then(() => initSlotState(ctx, this.slotMap)));
      init.catch(() => this.slotStates.delete(ctx.shard));
      this.slotStates.set(ctx.shard, init);
    }
    return init;
  }

  /** The shard of an account, once its identity is known to be right. */
  private async shard(accountId: string): Promise<ShardContext> {
    assertAccountId(accountId);
    await this.topology();
    const ctx = this.shardFor(accountId);
    await this.ready(ctx);
    return ctx;
  }

  /**
   * Runs `fn` on the account's shard; a MOVED answer (the slot moved, or is moving and this account
   * already went) sends it to the shard named, and has the map read again. Nothing was done where
   * MOVED was answered, so following it can neither lose nor repeat a step.
   */
  private async routed<T>(accountId: string, fn: (ctx: ShardContext) => Promise<T>): Promise<T> {
    let ctx = await this.shard(accountId);
    for (let hop = 1; ; hop++) {
      try {
        return await fn(ctx);
      } catch (error) {
        if (!isMoved(error)) throw error;
        this.redirects++;
        this.refreshMap().catch(() => undefined);
        // Between the two halves of a slot's hand-over both shards may point at each other for a moment.
        if (hop >= 12) throw new TransientError(`account ${accountId}: slot ${error.slot} is being handed over (redirected ${hop} times); retry`, 'MOVED');
        if (hop > 2) await new Promise((r) => setTimeout(r, Math.min(500, 20 * hop * hop)));
        ctx = await this.shardNumber(error.shard);
      }
    }
  }

  /** MOVED answers followed since this ledger was opened. */
  redirects = 0;

  /** The shards known now (the registry's, once the topology was read). */
  private async allShards(): Promise<ShardContext[]> {
    await this.checkIdentity();
    return this.shards;
  }

  async close(): Promise<void> {
    await this.refreshing?.catch(() => undefined);
    await Promise.all(this.shards.map((s) => s.pool.end()));
  }

  shardFor(accountId: string): ShardContext {
    assertAccountId(accountId);
    const ctx = this.shards[shardOf(accountId, this.slotMap)];
    if (!ctx) throw new TransientError(`the slot map names shard ${shardOf(accountId, this.slotMap)}, which this process has not opened yet`);
    return ctx;
  }

  async openAccount(input: { id: string; currency: string; overdraftLimit?: bigint | string | number }) {
    assertAccountId(input.id);
    assertCurrency(input.currency);
    const overdraft = input.overdraftLimit === undefined || input.overdraftLimit === 0 || input.overdraftLimit === '0'
      ? 0n : parseMinorUnits(input.overdraftLimit, 'overdraft limit');
    return this.routed(input.id, (ctx) => accounts.openAccount(ctx, { id: input.id, currency: input.currency, overdraftLimit: overdraft }));
  }

  async getAccount(id: string): Promise<AccountView> {
    const account = await classified(this.routed(id, (ctx) => accounts.getAccount(ctx, id)));
    if (!account) throw new RefusalError(Refusal.ACCOUNT_NOT_FOUND, `account ${id} does not exist`, { account: id });
    return account;
  }

  async listAccounts(options: { includeSystem?: boolean } = {}): Promise<AccountView[]> {
    const all = await classified(Promise.all((await this.allShards()).map((s) => accounts.listAccounts(s, options.includeSystem))));
    // An account seen on two shards was being handed over between the two reads: the newer copy counts.
    const byId = new Map<string, AccountView>();
    for (const a of all.flat()) {
      const key = a.kind === 'customer' ? a.id : `${a.id}@${a.shard}`;
      if (!byId.has(key)) byId.set(key, a);
    }
    return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  async deposit(input: { key: string; accountId: string; amount: unknown; currency: string }): Promise<EntryResult> {
    const movement = this.movement(input);
    return this.routed(input.accountId, (ctx) => accounts.deposit(ctx, movement));
  }

  async withdraw(input: { key: string; accountId: string; amount: unknown; currency: string }): Promise<EntryResult> {
    const movement = this.movement(input);
    return this.routed(input.accountId, (ctx) => accounts.withdraw(ctx, movement));
  }

  async setStatus(id: string, status: AccountStatus): Promise<AccountView> {
    assertOneOf(status, ACCOUNT_STATUSES, 'status');
    return this.routed(id, (ctx) => accounts.setStatus(ctx, id, status));
  }

  async reserve(input: {
    key: string;
    transferId: string;
    accountId: string;
    side: HoldSide;
    amount: unknown;
    currency: string;
    ttlMs: number;
    counterparty?: string;
  }): Promise<HoldResult> {
    assertKey(input.key);
    assertTransferId(input.transferId);
    assertOneOf(input.side, ['debit', 'credit'] as const, 'side');
    if (input.counterparty !== undefined) assertAccountId(input.counterparty, 'counterparty');
    assertAccountId(input.accountId);
    assertCurrency(input.currency);
    const amount = parseMinorUnits(input.amount);
    if (!Number.isSafeInteger(input.ttlMs) || input.ttlMs <= 0) {
      throw new RefusalError(Refusal.INVALID_INPUT, `hold ttl must be a positive number of milliseconds`);
    }
    // A hold's key is its transfer's: no reservation can take (or fence) the key of another transfer.
    if (!input.key.startsWith(`${input.transferId}:`)) {
      throw new RefusalError(Refusal.INVALID_INPUT, `hold key ${input.key} does not belong to transfer ${input.transferId} (expected "${input.transferId}:…")`);
    }
    return this.routed(input.accountId, (ctx) => holds.reserve(ctx, { ...input, amount }));
  }

  async post(input: HoldCall): Promise<EntryResult> {
    this.checkHoldCall(input);
    return this.routed(input.accountId, (ctx) => holds.post(ctx, input));
  }

  async void(input: HoldCall): Promise<VoidResult> {
    this.checkHoldCall(input);
    return this.routed(input.accountId, (ctx) => holds.voidHold(ctx, input));
  }

  async refund(input: HoldCall): Promise<EntryResult> {
    this.checkHoldCall(input);
    return this.routed(input.accountId, (ctx) => holds.refund(ctx, input));
  }

  async sweepExpired(batchSize?: number): Promise<SweepResult[]> {
    return Promise.all((await this.allShards()).map((s) => sweepExpired(s, batchSize)));
  }

  /**
   * The invariant check over every shard. Its snapshots are opened while no slot move is handing an
   * account over (a shared lock the mover takes exclusively around each batch), so an account being
   * moved is counted once, on one side of its hand-over.
   */
  async verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    const shards = await this.allShards();
    return classified(verifyShards(shards, options, () => this.cut()));
  }

  /** The shared side of the mover's cut lock, on shard 0; returns its release. */
  private async cut(): Promise<() => Promise<void>> {
    const client = await this.shards[0]!.pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock_shared($1::int, 0)', [LOCKS.cut]);
    } catch (error) {
      client.release(error as Error);
      throw error;
    }
    return async () => {
      try {
        await client.query('SELECT pg_advisory_unlock_shared($1::int, 0)', [LOCKS.cut]);
        client.release();
      } catch (error) {
        client.release(error as Error);
      }
    };
  }

  /** Money refunded after its account closed, per shard and currency. */
  async suspenseBalances(): Promise<SuspenseBalance[]> {
    return (await classified(Promise.all((await this.allShards()).map((s) => suspenseBalances(s))))).flat();
  }

  /** Pays suspense out into an open account (on the shard given, or the account's) or out of the ledger. */
  async releaseSuspense(input: { key: string; shard?: number; currency: string; amount: unknown; accountId?: string }): Promise<EntryResult> {
    assertKey(input.key);
    assertCurrency(input.currency);
    const amount = parseMinorUnits(input.amount);
    const release = { key: input.key, currency: input.currency, amount, ...(input.accountId ? { accountId: input.accountId } : {}) };
    if (input.accountId !== undefined) {
      return this.routed(input.accountId, (ctx) => {
        if (input.shard !== undefined && input.shard !== ctx.shard) {
          throw new RefusalError(Refusal.INVALID_INPUT, `account ${input.accountId} is on shard ${ctx.shard}, not ${input.shard}: suspense is paid out within its shard`);
        }
        return releaseSuspense(ctx, release);
      });
    }
    await this.topology();
    const found = input.shard === undefined ? undefined : this.shards[input.shard];
    if (!found) throw new RefusalError(Refusal.INVALID_INPUT, `name the shard (0-${this.shards.length - 1}) or an account to pay suspense into`);
    await this.ready(found);
    return releaseSuspense(found, release);
  }

  private checkHoldCall(input: HoldCall): void {
    assertKey(input.key);
    assertKey(input.holdKey, 'hold key');
    if (input.transferId !== undefined) assertTransferId(input.transferId);
    assertAccountId(input.accountId);
  }

  /** Everything a transfer left in the ledger, on every shard. */
  async transferRecords(transferId: string): Promise<{ holds: HoldView[]; postings: PostingView[] }> {
    const perShard = await classified(Promise.all(
      (await this.allShards()).map(async (s) => {
        const h = await s.pool.query<HoldRow>(`SELECT ${HOLD_COLUMNS} FROM holds WHERE transfer_id = $1::text ORDER BY created_at, key`, [transferId]);
        const p = await s.pool.query<PostingRow>(`SELECT ${POSTING_COLUMNS} FROM journal WHERE transfer_id = $1::text ORDER BY id`, [transferId]);
        return { holds: h.rows.map((r) => holdView(r, s.shard)), postings: p.rows.map((r) => postingView(r, s.shard)) };
      }),
    ));
    // A hold or posting seen on two shards was being handed over between the two reads: once.
    const once = <T>(items: T[], key: (x: T) => string) => [...new Map(items.map((x) => [key(x), x] as const)).values()];
    return {
      holds: once(perShard.flatMap((s) => s.holds), (h) => h.key).sort((a, b) => a.createdAt.localeCompare(b.createdAt)),
      postings: once(perShard.flatMap((s) => s.postings), (p) => `${p.entryId}/${p.holdKey ?? ''}/${p.accountId}/${p.kind}`).sort((a, b) => a.createdAt.localeCompare(b.createdAt)),
    };
  }

  /**
   * What a deposit or withdrawal key was first used for, on every shard: keys are unique per shard,
   * so a caller reusing a key for an account on another shard would not be stopped by the barrier.
   * Read-only; for answering "this key was used for something else" (the HTTP API's 422).
   */
  async movementRecords(key: string): Promise<{ shard: number; operation: string; state: string; account?: string; amount?: string; currency?: string }[]> {
    assertKey(key);
    await this.checkIdentity();
    const perShard = await classified(Promise.all(this.shards.map(async (s) => {
      const { rows } = await s.pool.query<{ operation: string; state: string; outcome: { postings?: { accountId: string; amount: string; currency: string }[] } }>(
        `SELECT operation, state, outcome FROM idempotency_keys WHERE scope = 'movement' AND key = $1::text`, [key]);
      return rows.map((r) => {
        const leg = r.outcome?.postings?.find((p) => !p.accountId.startsWith('sys:'));
        return { shard: s.shard, operation: r.operation, state: r.state, ...(leg ? { account: leg.accountId, amount: leg.amount.replace(/^-/, ''), currency: leg.currency } : {}) };
      });
    })));
    return perShard.flat();
  }

  /**
   * Claims `slot` (an API Idempotency-Key with its namespace) for `owner` until now + leaseMs, in
   * shard 0's api_key_claims: shared by every process on this ledger. False while another owner's
   * claim has not expired; an expired claim (its process died) is taken over.
   */
  async claimKey(slot: string, owner: string, leaseMs: number): Promise<boolean> {
    await this.topology();
    const { rowCount } = await classified(this.shards[0]!.pool.query(
      `INSERT INTO api_key_claims (slot, owner, expires_at) VALUES ($1::text, $2::text, now() + $3::int * interval '1 millisecond')
       ON CONFLICT (slot) DO UPDATE SET owner = excluded.owner, claimed_at = now(), expires_at = excluded.expires_at
       WHERE api_key_claims.expires_at <= now()`, [slot, owner, Math.ceil(leaseMs)]));
    return rowCount === 1;
  }

  /** Extends `owner`'s claim on `slot`; false when it is no longer this owner's (it expired and was taken). */
  async renewKeyClaim(slot: string, owner: string, leaseMs: number): Promise<boolean> {
    const { rowCount } = await classified(this.shards[0]!.pool.query(
      `UPDATE api_key_claims SET expires_at = now() + $3::int * interval '1 millisecond' WHERE slot = $1::text AND owner = $2::text`, [slot, owner, Math.ceil(leaseMs)]));
    return rowCount === 1;
  }

  /** Ends `owner`'s claim on `slot`, and clears claims of processes that died more than an hour ago. */
  async releaseKeyClaim(slot: string, owner: string): Promise<void> {
    await classified(this.shards[0]!.pool.query(
      `DELETE FROM api_key_claims WHERE (slot = $1::text AND owner = $2::text) OR expires_at < now() - interval '1 hour'`, [slot, owner]));
  }

  private movement(input: { key: string; accountId: string; amount: unknown; currency: string }) {
    assertKey(input.key);
    assertCurrency(input.currency);
    assertAccountId(input.accountId);
    return { key: input.key, accountId: input.accountId, amount: parseMinorUnits(input.amount), currency: input.currency };
  }
}

/** Reads run outside withTransaction; their faults get the same transient/other classification. */
async function classified<T>(read: Promise<T>): Promise<T> {
  try {
    return await read;
  } catch (error) {
    throw classifyDbError(error);
  }
}

/**
 * Keys reach PostgreSQL as text and name journal entries: printable ASCII without spaces or "/"
 * (NUL would fail the statement, a lone surrogate would be stored as U+FFFD and merge two keys).
 */
function assertKey(key: unknown, what = 'idempotency key'): asserts key is string {
  assertIdempotencyKey(key, what);
  if (!KEY.test(key)) {
    throw new RefusalError(Refusal.INVALID_INPUT, `${what} ${JSON.stringify(key.slice(0, 60))} is invalid: 1-200 characters of letters, digits and "_.:-", starting with a letter or digit`);
  }
}

/** A post, void or refund: the hold, its account and (from the saga) its transfer. */
export interface HoldCall {
  key: string;
  holdKey: string;
  accountId: string;
  transferId?: string;
}

function redactUrl(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url);
    u.password = '';
    return `${u.host}${u.pathname}`;
  } catch {
    return undefined;
  }
}
