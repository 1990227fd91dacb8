import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker, WorkerOptions } from '@temporalio/worker';
import type { TransferActivities } from '../../activities/index.js';
import type { TransferPolicy } from '../../src/domain/transfer.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import type { Logger } from '../../src/observability/logger.js';
import type { TransferMetrics } from '../../src/observability/metrics.js';
import { createTransferWorker } from '../../src/worker.js';
import { createTestLedger, type TestLedger } from './ledger.js';

/**
 * Connects to the run's shared time-skipping test server. The SDK only offers time skipping on a
 * server it spawns itself; the server is started once per run by the global setup, so this reaches
 * the same construction path with an existing address.
 */
export async function connectTimeSkipping(): Promise<TestWorkflowEnvironment> {
  const create = (TestWorkflowEnvironment as unknown as { create(opts: unknown): Promise<TestWorkflowEnvironment> }).create.bind(TestWorkflowEnvironment);
  return create({ server: { type: 'existing' }, address: inject('timeSkippingAddress'), namespace: 'default', supportsTimeSkipping: true });
}

export async function connectDevServer(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createFromExistingServer({ address: inject('devServerAddress'), namespace: 'default' });
}

/**
 * Time skipping is global to the test server: two files skipping time at once would fire each
 * other's timers early. Files that use it hold this PostgreSQL advisory lock for their duration.
 */
export async function lockTimeSkipping(): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: inject('pgUrl') });
  await client.connect();
  await client.query('SELECT pg_advisory_lock(7233002)');
  return async () => {
    await client.query('SELECT pg_advisory_unlock(7233002)').catch(() => undefined);
    await client.end();
  };
}

export const testPolicy = (overrides: Partial<TransferPolicy> = {}) => (): TransferPolicy => ({
  approvalThreshold: null,
  approvalTimeoutMs: 24 * 60 * 60_000,
  holdTtlMs: 15 * 60_000,
  ...overrides,
});

export function uniqueTaskQueue(): string {
  return `tq-${randomUUID()}`;
}

export async function createTestWorker(
  env: TestWorkflowEnvironment,
  ledger: Ledger,
  options: { taskQueue: string; policy?: () => TransferPolicy; wrap?: (a: TransferActivities) => TransferActivities; overrides?: Partial<WorkerOptions>; metrics?: TransferMetrics; logger?: Logger },
): Promise<Worker> {
  return createTransferWorker({
    connection: env.nativeConnection,
    namespace: 'default',
    taskQueue: options.taskQueue,
    ledger,
    policy: options.policy ?? testPolicy(),
    workflowBundle: { codePath: inject('workflowBundle') },
    ...(options.wrap ? { wrapActivities: options.wrap } : {}),
    ...(options.metrics ? { metrics: options.metrics } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    overrides: { shutdownGraceTime: '1s', ...options.overrides },
  });
}

/** A latch a fault-injected activity can wait on, released by the test. */
export class Latch {
  private release!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.release = resolve));
  private arrive!: () => void;
  /** Resolves when an activity reached the latch. */
  readonly reached = new Promise<void>((resolve) => (this.arrive = resolve));
  async wait(): Promise<void> {
    this.arrive();
    await this.opened;
  }
  open(): void {
    this.release();
  }
}

/**
 * Registers the usual hooks of a time-skipping test file: hold the time-skipping lock, clone a
 * ledger, connect; undo all of it afterwards. `bind` receives what the tests use.
 */
export function useTimeSkipping(bind: (t: TestLedger, env: TestWorkflowEnvironment) => void): void {
  let unlock: (() => Promise<void>) | undefined;
  let t: TestLedger | undefined;
  let env: TestWorkflowEnvironment | undefined;
  beforeAll(async () => {
    unlock = await lockTimeSkipping();
    t = await createTestLedger();
    env = await connectTimeSkipping();
    bind(t, env);
  });
  afterAll(async () => {
    await env?.teardown();
    await t?.drop();
    await unlock?.();
  });
}

/** The same for files that run on the shared dev server (no lock: it keeps real time). */
export function useDevServer(bind: (t: TestLedger, env: TestWorkflowEnvironment) => void): void {
  let t: TestLedger | undefined;
  let env: TestWorkflowEnvironment | undefined;
  beforeAll(async () => {
    t = await createTestLedger();
    env = await connectDevServer();
    bind(t, env);
  });
  afterAll(async () => {
    await env?.teardown();
    await t?.drop();
  });
}

/** A logger that keeps every line (level, fields, message) for a test to read. */
export function capturingLogger(): { logger: Logger; lines: { level: string; fields: Record<string, unknown>; msg: string }[] } {
  const lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) => void lines.push({ level, fields, msg });
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') } as unknown as Logger };
}
