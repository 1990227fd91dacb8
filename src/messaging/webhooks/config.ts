/**
 * Dispatcher settings. Defaults follow the Standard Webhooks / Svix practice; every duration is
 * configurable so tests run the whole schedule in milliseconds.
 *
 *   WEBHOOK_RETRY_SCHEDULE_MS   comma-separated delays before attempts 2, 3, …
 *   WEBHOOK_TIMEOUT_MS          a 2xx must arrive within this (default 15 s)
 *   WEBHOOK_RETENTION_MS        delivered deliveries are pruned after this (default 7 days)
 *   WEBHOOK_CONCURRENCY         sending lanes (default 8)
 *   WEBHOOK_POLL_MS             idle poll interval (default 500 ms)
 */
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/**
 * Delays before attempt 2, 3, …: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then daily twice. With the
 * first attempt at once that is 9 attempts over about 2 days 18 h; after the last the delivery is dead.
 */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [5 * SECOND, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 5 * HOUR, 10 * HOUR, 24 * HOUR, 24 * HOUR];

export interface DispatcherSettings {
  retryScheduleMs: readonly number[];
  /** ± this fraction of each delay, so endpoints that failed together do not retry together. */
  jitter: number;
  timeoutMs: number;
  /** A claimed delivery is invisible for timeoutMs + leaseMarginMs; a dispatcher that died mid-send frees it then. */
  leaseMarginMs: number;
  /** Retry-After is honoured up to this (a receiver cannot park a delivery for a year). */
  maxRetryAfterMs: number;
  retentionMs: number;
  pruneEveryMs: number;
  concurrency: number;
  batchSize: number;
  fanOutPageSize: number;
  pollMs: number;
}

export const DEFAULT_SETTINGS: DispatcherSettings = {
  retryScheduleMs: DEFAULT_RETRY_SCHEDULE_MS,
  jitter: 0.2,
  timeoutMs: 15 * SECOND,
  leaseMarginMs: 30 * SECOND,
  maxRetryAfterMs: 24 * HOUR,
  retentionMs: 7 * 24 * HOUR,
  pruneEveryMs: 5 * MINUTE,
  // Measured on 2 cores: 8 lanes of 50 beat 16 (the process is CPU-bound; more lanes only queue).
  concurrency: 8,
  batchSize: 50,
  fanOutPageSize: 500,
  pollMs: 500,
};

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer (got ${value})`);
  return n;
}

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): DispatcherSettings {
  const schedule = env.WEBHOOK_RETRY_SCHEDULE_MS
    ? env.WEBHOOK_RETRY_SCHEDULE_MS.split(',').map((d) => positiveInt('WEBHOOK_RETRY_SCHEDULE_MS', d.trim(), 0))
    : DEFAULT_RETRY_SCHEDULE_MS;
  return {
    ...DEFAULT_SETTINGS,
    retryScheduleMs: schedule,
    timeoutMs: positiveInt('WEBHOOK_TIMEOUT_MS', env.WEBHOOK_TIMEOUT_MS, DEFAULT_SETTINGS.timeoutMs),
    retentionMs: positiveInt('WEBHOOK_RETENTION_MS', env.WEBHOOK_RETENTION_MS, DEFAULT_SETTINGS.retentionMs),
    concurrency: Math.max(1, positiveInt('WEBHOOK_CONCURRENCY', env.WEBHOOK_CONCURRENCY, DEFAULT_SETTINGS.concurrency)),
    pollMs: positiveInt('WEBHOOK_POLL_MS', env.WEBHOOK_POLL_MS, DEFAULT_SETTINGS.pollMs),
  };
}

/**
 * When the next attempt is due after `attempts` failed ones, or undefined when the schedule is
 * exhausted (dead letter). A Retry-After longer than the schedule's delay wins, up to a cap.
 */
export function nextDelayMs(settings: DispatcherSettings, attempts: number, retryAfterMs?: number, random: () => number = Math.random): number | undefined {
  const base = settings.retryScheduleMs[attempts - 1];
  if (base === undefined) return undefined;
  const jittered = Math.round(base * (1 - settings.jitter + 2 * settings.jitter * random()));
  if (retryAfterMs === undefined) return jittered;
  return Math.max(jittered, Math.min(retryAfterMs, settings.maxRetryAfterMs));
}

/** Retry-After is either delay-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * SECOND;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
