// Pool settings without pg itself: config.ts (loaded by every CLI command) reads the defaults.

export interface PoolSettings {
  /** Connections per shard: as many as the activities that may run at once, plus the sweeper's. */
  max?: number;
  /** How long a caller waits for a free connection before the call fails as a transient fault. */
  acquireTimeoutMs?: number;
  /** A statement running longer than this is cancelled (57014) and the step retried. */
  statementTimeoutMs?: number;
  /** Waiting for a row lock longer than this fails fast (55P03, retried) instead of piling up. */
  lockTimeoutMs?: number;
  /** A transaction left open and idle (a stalled or dead client) is ended by the server. */
  idleInTransactionTimeoutMs?: number;
}

export const DEFAULT_POOL_SETTINGS: Required<PoolSettings> = {
  max: 22,
  acquireTimeoutMs: 10_000,
  statementTimeoutMs: 15_000,
  lockTimeoutMs: 5_000,
  idleInTransactionTimeoutMs: 30_000,
};

/**
 * Client-side group commit of ledger steps (src/ledger/step-batcher.ts): per shard, at most
 * `inFlight` step calls at once (never more than the pool's connections); steps arriving while all
 * are busy wait and go out together, up to `max` in one transaction. `max` 1: every step alone.
 */
export interface BatchSettings {
  /** Most steps in one transaction (1 to MAX_BATCH_STEPS; 1 turns batching off). */
  max?: number;
  /** Step calls, single or batched, a shard has in flight before steps queue. */
  inFlight?: number;
}

/**
 * Each step may open one subtransaction (the block that turns a CHECK violation into a refusal);
 * PostgreSQL tracks up to 64 per transaction cheaply, beyond that every snapshot gets slower.
 */
export const MAX_BATCH_STEPS = 64;

/**
 * Two calls in flight per shard: on the bench machine (2 cores, both shards in one PostgreSQL) one
 * batched a little better still, but a lane waiting on a row lock would then hold up every step of
 * the shard in this process; with two, the other lane goes on.
 */
export const DEFAULT_BATCH_SETTINGS: Required<BatchSettings> = { max: 32, inFlight: 2 };
