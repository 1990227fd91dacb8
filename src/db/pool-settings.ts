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
