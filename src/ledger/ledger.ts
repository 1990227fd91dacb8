import { ACCOUNT_STATUSES, assertAccountId, type AccountStatus } from '../domain/accounts.js';
import { Refusal } from '../domain/codes.js';
import { RefusalError } from '../domain/errors.js';
import { assertIdempotencyKey, assertOneOf } from '../domain/input.js';
import { assertCurrency, parseMinorUnits } from '../domain/money.js';
import { assertTransferId } from '../domain/transfer.js';
import { shardOf, type SlotRange } from '../domain/slots.js';
import { migrate } from '../db/migrate.js';
import { classifyDbError, createPool, type PoolSettings } from '../db/transaction.js';
import { checkShardIdentity, slotMapHash } from './identity.js';
import { releaseSuspense, suspenseBalances, type SuspenseBalance } from './suspense-ops.js';
import * as accounts from './account-ops.js';
import * as holds from './hold-ops.js';
import type { ShardContext } from './shard-context.js';
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

  constructor(
    readonly shards: ShardContext[],
    readonly slotMap: readonly SlotRange[],
    private readonly urls: readonly string[] = [],
  ) {
    this.mapHash = slotMapHash(slotMap, shards.length);
  }

  static connect(options: LedgerOptions): Ledger {
    const offsetMs = options.clockOffsetMs ?? (() => 0);
    const settings = { ...(options.poolSize ? { max: options.poolSize } : {}), ...options.pool };
    const shards = options.shardUrls.map((url, shard) => ({ shard, pool: createPool(url, settings), offsetMs }));
    return new Ledger(shards, options.slotMap, options.shardUrls);
  }

  async migrate(): Promise<void> {
    for (const shard of this.shards) await migrate(shard.pool);
  }

  /** Every shard is the database it was given as (checked once per shard, before its first operation). */
  async checkIdentity(): Promise<void> {
    await Promise.all(this.shards.map((s) => this.ready(s)));
  }

  private ready(ctx: ShardContext): Promise<void> {
    let check = this.identities.get(ctx.shard);
    if (!check) {
      const where = redactUrl(this.urls[ctx.shard]) ?? `#${ctx.shard}`;
      check = classified(checkShardIdentity(ctx, this.mapHash, where));
      // A fault while checking is retried by the next call; only a completed check is remembered.
      check.catch(() => this.identities.delete(ctx.shard));
      this.identities.set(ctx.shard, check);
    }
    return check;
  }

  /** The shard of an account, once its identity is known to be right. */
  private async shard(accountId: string): Promise<ShardContext> {
    const ctx = this.shardFor(accountId);
    await this.ready(ctx);
    return ctx;
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.pool.end()));
  }

  shardFor(accountId: string): ShardContext {
    assertAccountId(accountId);
    return this.shards[shardOf(accountId, this.slotMap)]!;
  }

  async openAccount(input: { id: string; currency: string; overdraftLimit?: bigint | string | number }) {
    assertAccountId(input.id);
    assertCurrency(input.currency);
    const overdraft = input.overdraftLimit === undefined || input.overdraftLimit === 0 || input.overdraftLimit === '0'
      ? 0n : parseMinorUnits(input.overdraftLimit, 'overdraft limit');
    return accounts.openAccount(await this.shard(input.id), { id: input.id, currency: input.currency, overdraftLimit: overdraft });
  }

  async getAccount(id: string): Promise<AccountView> {
    const account = await classified(this.shard(id).then((ctx) => accounts.getAccount(ctx, id)));
    if (!account) throw new RefusalError(Refusal.ACCOUNT_NOT_FOUND, `account ${id} does not exist`, { account: id });
    return account;
  }

  async listAccounts(options: { includeSystem?: boolean } = {}): Promise<AccountView[]> {
    await this.checkIdentity();
    const all = await classified(Promise.all(this.shards.map((s) => accounts.listAccounts(s, options.includeSystem))));
    return all.flat().sort((a, b) => a.id.localeCompare(b.id));
  }

  async deposit(input: { key: string; accountId: string; amount: unknown; currency: string }): Promise<EntryResult> {
    const movement = this.movement(input);
    return accounts.deposit(await this.shard(input.accountId), movement);
  }

  async withdraw(input: { key: string; accountId: string; amount: unknown; currency: string }): Promise<EntryResult> {
    const movement = this.movement(input);
    return accounts.withdraw(await this.shard(input.accountId), movement);
  }

  async setStatus(id: string, status: AccountStatus): Promise<AccountView> {
    assertOneOf(status, ACCOUNT_STATUSES, 'status');
    return accounts.setStatus(await this.shard(id), id, status);
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
    return holds.reserve(await this.shard(input.accountId), { ...input, amount });
  }

  async post(input: HoldCall): Promise<EntryResult> {
    return holds.post(await this.holdShard(input), input);
  }

  async void(input: HoldCall): Promise<VoidResult> {
    return holds.voidHold(await this.holdShard(input), input);
  }

  async refund(input: HoldCall): Promise<EntryResult> {
    return holds.refund(await this.holdShard(input), input);
  }

  async sweepExpired(batchSize?: number): Promise<SweepResult[]> {
    await this.checkIdentity();
    return Promise.all(this.shards.map((s) => sweepExpired(s, batchSize)));
  }

  async verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    await this.checkIdentity();
    return classified(verifyShards(this.shards, options));
  }

  /** Money refunded after its account closed, per shard and currency. */
  async suspenseBalances(): Promise<SuspenseBalance[]> {
    await this.checkIdentity();
    return (await classified(Promise.all(this.shards.map((s) => suspenseBalances(s))))).flat();
  }

  /** Pays suspense out into an open account (on the shard given, or the account's) or out of the ledger. */
  async releaseSuspense(input: { key: string; shard?: number; currency: string; amount: unknown; accountId?: string }): Promise<EntryResult> {
    assertKey(input.key);
    assertCurrency(input.currency);
    const amount = parseMinorUnits(input.amount);
    let ctx: ShardContext;
    if (input.accountId !== undefined) {
      ctx = await this.shard(input.accountId);
      if (input.shard !== undefined && input.shard !== ctx.shard) {
        throw new RefusalError(Refusal.INVALID_INPUT, `account ${input.accountId} is on shard ${ctx.shard}, not ${input.shard}: suspense is paid out within its shard`);
      }
    } else {
      const found = input.shard === undefined ? undefined : this.shards[input.shard];
      if (!found) throw new RefusalError(Refusal.INVALID_INPUT, `name the shard (0-${this.shards.length - 1}) or an account to pay suspense into`);
      ctx = found;
      await this.ready(ctx);
    }
    return releaseSuspense(ctx, { key: input.key, currency: input.currency, amount, ...(input.accountId ? { accountId: input.accountId } : {}) });
  }

  private async holdShard(input: HoldCall): Promise<ShardContext> {
    assertKey(input.key);
    assertKey(input.holdKey, 'hold key');
    if (input.transferId !== undefined) assertTransferId(input.transferId);
    return this.shard(input.accountId);
  }

  /** Everything a transfer left in the ledger, on every shard. */
  async transferRecords(transferId: string): Promise<{ holds: HoldView[]; postings: PostingView[] }> {
    await this.checkIdentity();
    const perShard = await classified(Promise.all(
      this.shards.map(async (s) => {
        const h = await s.pool.query<HoldRow>(`SELECT ${HOLD_COLUMNS} FROM holds WHERE transfer_id = $1::text ORDER BY created_at, key`, [transferId]);
        const p = await s.pool.query<PostingRow>(`SELECT ${POSTING_COLUMNS} FROM journal WHERE transfer_id = $1::text ORDER BY id`, [transferId]);
        return { holds: h.rows.map((r) => holdView(r, s.shard)), postings: p.rows.map((r) => postingView(r, s.shard)) };
      }),
    ));
    return {
      holds: perShard.flatMap((s) => s.holds).sort((a, b) => a.createdAt.localeCompare(b.createdAt)),
      postings: perShard.flatMap((s) => s.postings).sort((a, b) => a.createdAt.localeCompare(b.createdAt)),
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
