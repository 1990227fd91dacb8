import { ACCOUNT_STATUSES, assertAccountId, type AccountStatus } from '../domain/accounts.js';
import { Refusal } from '../domain/codes.js';
import { RefusalError } from '../domain/errors.js';
import { assertIdempotencyKey, assertOneOf } from '../domain/input.js';
import { assertCurrency, parseMinorUnits } from '../domain/money.js';
import { assertTransferId } from '../domain/transfer.js';
import { shardOf, type SlotRange } from '../domain/slots.js';
import { migrate } from '../db/migrate.js';
import { classifyDbError, createPool } from '../db/transaction.js';
import * as accounts from './account-ops.js';
import * as holds from './hold-ops.js';
import type { ShardContext } from './shard-context.js';
import { sweepExpired } from './sweeper.js';
import type { AccountView, EntryResult, HoldResult, HoldSide, HoldView, PostingView, SweepResult, VoidResult } from './types.js';
import { verifyShards, type VerifyReport } from './verify.js';
import { HOLD_COLUMNS, holdView, POSTING_COLUMNS, postingView, type HoldRow, type PostingRow } from './views.js';

export interface LedgerOptions {
  shardUrls: readonly string[];
  slotMap: readonly SlotRange[];
  clock?: () => Date;
  poolSize?: number;
}

/**
 * The ledger of record across shards. Every operation validates its input first (bad input changes
 * nothing), then runs as one short transaction on exactly one shard, chosen by the account's slot.
 */
export class Ledger {
  constructor(
    readonly shards: ShardContext[],
    readonly slotMap: readonly SlotRange[],
  ) {}

  static connect(options: LedgerOptions): Ledger {
    const clock = options.clock ?? (() => new Date());
    const shards = options.shardUrls.map((url, shard) => ({ shard, pool: createPool(url, options.poolSize), clock }));
    return new Ledger(shards, options.slotMap);
  }

  async migrate(): Promise<void> {
    for (const shard of this.shards) await migrate(shard.pool);
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
    return accounts.openAccount(this.shardFor(input.id), { id: input.id, currency: input.currency, overdraftLimit: overdraft });
  }

  async getAccount(id: string): Promise<AccountView> {
    const account = await classified(accounts.getAccount(this.shardFor(id), id));
    if (!account) throw new RefusalError(Refusal.ACCOUNT_NOT_FOUND, `account ${id} does not exist`, { account: id });
    return account;
  }

  async listAccounts(options: { includeSystem?: boolean } = {}): Promise<AccountView[]> {
    const all = await classified(Promise.all(this.shards.map((s) => accounts.listAccounts(s, options.includeSystem))));
    return all.flat().sort((a, b) => a.id.localeCompare(b.id));
  }

  async deposit(input: { key: string; accountId: string; amount: unknown; currency: string }): Promise<EntryResult> {
    return accounts.deposit(this.shardFor(input.accountId), this.movement(input));
  }

  async withdraw(input: { key: string; accountId: string; amount: unknown; currency: string }): Promise<EntryResult> {
    return accounts.withdraw(this.shardFor(input.accountId), this.movement(input));
  }

  async setStatus(id: string, status: AccountStatus): Promise<AccountView> {
    assertOneOf(status, ACCOUNT_STATUSES, 'status');
    return accounts.setStatus(this.shardFor(id), id, status);
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
    assertCurrency(input.currency);
    const amount = parseMinorUnits(input.amount);
    if (!Number.isSafeInteger(input.ttlMs) || input.ttlMs <= 0) {
      throw new RefusalError(Refusal.INVALID_INPUT, `hold ttl must be a positive number of milliseconds`);
    }
    return holds.reserve(this.shardFor(input.accountId), { ...input, amount });
  }

  async post(input: { key: string; holdKey: string; accountId: string }): Promise<EntryResult> {
    assertKey(input.key);
    assertIdempotencyKey(input.holdKey, 'hold key');
    return holds.post(this.shardFor(input.accountId), input);
  }

  async void(input: { key: string; holdKey: string; accountId: string }): Promise<VoidResult> {
    assertKey(input.key);
    assertIdempotencyKey(input.holdKey, 'hold key');
    return holds.voidHold(this.shardFor(input.accountId), input);
  }

  async refund(input: { key: string; holdKey: string; accountId: string }): Promise<EntryResult> {
    assertKey(input.key);
    assertIdempotencyKey(input.holdKey, 'hold key');
    return holds.refund(this.shardFor(input.accountId), input);
  }

  async sweepExpired(batchSize?: number): Promise<SweepResult[]> {
    return Promise.all(this.shards.map((s) => sweepExpired(s, batchSize)));
  }

  async verify(): Promise<VerifyReport> {
    return classified(verifyShards(this.shards));
  }

  /** Everything a transfer left in the ledger, on every shard. */
  async transferRecords(transferId: string): Promise<{ holds: HoldView[]; postings: PostingView[] }> {
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
 * Keys reach PostgreSQL as text: NUL would fail the statement and a lone surrogate would be stored
 * as U+FFFD, merging two different keys into one; both are refused here (src/domain/input.ts).
 */
function assertKey(key: unknown): asserts key is string {
  assertIdempotencyKey(key);
}
