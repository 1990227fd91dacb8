import { evenSlotMap, parseSlotMap, type SlotRange } from './domain/slots.js';
import type { TransferPolicy } from './domain/transfer.js';
import { parseMinorUnits } from './domain/money.js';
import { DEFAULT_TASK_QUEUE } from '../workflows/names.js';
import { DEFAULT_BATCH_SETTINGS, DEFAULT_POOL_SETTINGS, MAX_BATCH_STEPS, type BatchSettings, type PoolSettings } from './db/pool-settings.js';

/**
 * Configuration comes from the environment only (12-factor): the same variables drive the embedded
 * stack, docker-compose and a production deployment.
 *
 *   LEDGER_SHARD_URLS   comma-separated PostgreSQL URLs, index = shard number
 *   DATABASE_URL        a single shard (used when LEDGER_SHARD_URLS is unset)
 *   LEDGER_SLOT_MAP     "0-8191:0,8192-16383:1" (default: even split over the shards)
 *   TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE, TEMPORAL_API_KEY,
 *   TEMPORAL_TLS_CERT / TEMPORAL_TLS_KEY / TEMPORAL_TLS_CA (paths)
 *   TRANSFER_APPROVAL_THRESHOLD  minor units (e.g. "1000000" or "USD:1000000,JPY:100000000"); unset: never
 *   TRANSFER_APPROVAL_TIMEOUT_MS default 24 h
 *   TRANSFER_HOLD_TTL_MS         default 15 min
 *   TRANSFER_APPROVERS           comma-separated names allowed to approve (unset: anyone but the requester)
 *   LOG_LEVEL, METRICS_PORT (0 disables), METRICS_HOST
 */
export interface LedgerConfig {
  shardUrls: string[];
  slotMap: SlotRange[];
}

export interface TemporalConfig {
  address: string;
  namespace: string;
  taskQueue: string;
  apiKey?: string;
  tls?: { cert?: string; key?: string; ca?: string };
}

export function ledgerConfig(env: NodeJS.ProcessEnv = process.env): LedgerConfig | undefined {
  const list = env.LEDGER_SHARD_URLS ?? env.DATABASE_URL;
  if (!list) return undefined;
  const shardUrls = list.split(',').map((u) => u.trim()).filter(Boolean);
  const slotMap = env.LEDGER_SLOT_MAP ? parseSlotMap(env.LEDGER_SLOT_MAP, shardUrls.length) : evenSlotMap(shardUrls.length);
  return { shardUrls, slotMap };
}

export function temporalConfig(env: NodeJS.ProcessEnv = process.env): TemporalConfig {
  const tls = env.TEMPORAL_TLS_CERT || env.TEMPORAL_TLS_CA
    ? { ...(env.TEMPORAL_TLS_CERT ? { cert: env.TEMPORAL_TLS_CERT } : {}), ...(env.TEMPORAL_TLS_KEY ? { key: env.TEMPORAL_TLS_KEY } : {}), ...(env.TEMPORAL_TLS_CA ? { ca: env.TEMPORAL_TLS_CA } : {}) }
    : undefined;
  return {
    address: env.TEMPORAL_ADDRESS ?? 'localhost:7233',
    namespace: env.TEMPORAL_NAMESPACE ?? 'default',
    taskQueue: env.TEMPORAL_TASK_QUEUE ?? DEFAULT_TASK_QUEUE,
    ...(env.TEMPORAL_API_KEY ? { apiKey: env.TEMPORAL_API_KEY } : {}),
    ...(tls ? { tls } : {}),
  };
}

export const DEFAULT_HOLD_TTL_MS = 15 * 60_000;
export const DEFAULT_APPROVAL_TIMEOUT_MS = 24 * 60 * 60_000;

/** Approval threshold per currency: "1000000" applies to all, "USD:1000000,EUR:900000" per currency. */
export function policyFromEnv(env: NodeJS.ProcessEnv = process.env): (currency: string) => TransferPolicy {
  const thresholds = new Map<string, string>();
  let all: string | null = null;
  for (const part of (env.TRANSFER_APPROVAL_THRESHOLD ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const [a, b] = part.split(':');
    if (b === undefined) all = parseMinorUnits(a).toString();
    else thresholds.set(a!, parseMinorUnits(b).toString());
  }
  const approvalTimeoutMs = positive(env.TRANSFER_APPROVAL_TIMEOUT_MS, DEFAULT_APPROVAL_TIMEOUT_MS, 'TRANSFER_APPROVAL_TIMEOUT_MS');
  const holdTtlMs = positive(env.TRANSFER_HOLD_TTL_MS, DEFAULT_HOLD_TTL_MS, 'TRANSFER_HOLD_TTL_MS');
  const approvers = (env.TRANSFER_APPROVERS ?? '').split(',').map((a) => a.trim()).filter(Boolean);
  // The list travels in the policy, recorded in history: replay sees the approvers the run saw.
  return (currency) => ({ approvalThreshold: thresholds.get(currency) ?? all, approvalTimeoutMs, holdTtlMs, ...(approvers.length ? { approvers } : {}) });
}

function positive(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer (got ${value})`);
  return n;
}

/**
 * Activities a worker runs at once (TRANSFER_ACTIVITY_SLOTS, default 20). Each holds one ledger
 * connection on one shard while it runs, so every shard's pool gets that many connections, plus
 * two for the expiry sweeper and reads: a step never waits for a connection its own worker hogs.
 */
export function activitySlotsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  return positive(env.TRANSFER_ACTIVITY_SLOTS, 20, 'TRANSFER_ACTIVITY_SLOTS');
}

/**
 * Threads that run workflow code (TRANSFER_WORKFLOW_THREADS, default 1, the SDK's default). Each
 * thread holds its own copy of the workflow sandbox and runs the activations of the workflows
 * assigned to it; see README "Configuration" for what a second thread bought and costs.
 */
export function workflowThreadsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  return positive(env.TRANSFER_WORKFLOW_THREADS, 1, 'TRANSFER_WORKFLOW_THREADS');
}

/** The Worker options `transfer worker` and `transfer up` take from the environment. */
export function workerTuningFromEnv(env: NodeJS.ProcessEnv = process.env) {
  const slots = activitySlotsFromEnv(env);
  return { maxConcurrentActivityTaskExecutions: slots, maxConcurrentLocalActivityExecutions: slots, workflowThreadPoolSize: workflowThreadsFromEnv(env) };
}

/** Ledger connection settings (timeouts in ms; see README "Configuration"). */
export function poolSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): PoolSettings {
  const d = DEFAULT_POOL_SETTINGS;
  return {
    max: activitySlotsFromEnv(env) + 2,
    acquireTimeoutMs: positive(env.LEDGER_ACQUIRE_TIMEOUT_MS, d.acquireTimeoutMs, 'LEDGER_ACQUIRE_TIMEOUT_MS'),
    statementTimeoutMs: positive(env.LEDGER_STATEMENT_TIMEOUT_MS, d.statementTimeoutMs, 'LEDGER_STATEMENT_TIMEOUT_MS'),
    lockTimeoutMs: positive(env.LEDGER_LOCK_TIMEOUT_MS, d.lockTimeoutMs, 'LEDGER_LOCK_TIMEOUT_MS'),
    idleInTransactionTimeoutMs: positive(env.LEDGER_IDLE_IN_TRANSACTION_TIMEOUT_MS, d.idleInTransactionTimeoutMs, 'LEDGER_IDLE_IN_TRANSACTION_TIMEOUT_MS'),
  };
}

/**
 * Group commit of ledger steps (see README "Configuration"): LEDGER_BATCH_MAX steps at most in one
 * transaction (1 to 64; 1: every step alone), LEDGER_BATCH_IN_FLIGHT step calls per shard at once
 * before steps wait to go out together.
 */
export function batchSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): BatchSettings {
  const max = positive(env.LEDGER_BATCH_MAX, DEFAULT_BATCH_SETTINGS.max, 'LEDGER_BATCH_MAX');
  if (max > MAX_BATCH_STEPS) throw new Error(`LEDGER_BATCH_MAX must be at most ${MAX_BATCH_STEPS} (got ${max})`);
  return { max, inFlight: positive(env.LEDGER_BATCH_IN_FLIGHT, DEFAULT_BATCH_SETTINGS.inFlight, 'LEDGER_BATCH_IN_FLIGHT') };
}
