import type pg from 'pg';
import type { Logger } from '../../observability/logger.js';
import { DEFAULT_SETTINGS, type DispatcherSettings } from './config.js';
import { claimDue, recordAttempts, pruneDelivered, type ClaimedDelivery } from './deliveries.js';
import { fanOutPage } from './fanout.js';
import { sendWebhook, type SendResult } from './sender.js';

export interface DispatcherOptions {
  messages: pg.Pool;
  /** Position = shard number. */
  shards: pg.Pool[];
  settings?: Partial<DispatcherSettings>;
  logger?: Logger;
  /** Fault injection for tests: runs after a receiver answered, before the answer is recorded. */
  afterSend?: (delivery: ClaimedDelivery, result: SendResult) => Promise<void>;
}

/**
 * Reads every shard's ledger_events into delivery rows (fan-out) and sends due deliveries (lanes),
 * until stopped. Every loop survives database faults: it logs, waits and goes on, since all its
 * state is in PostgreSQL and every step is safe to repeat.
 */
export class WebhookDispatcher {
  readonly settings: DispatcherSettings;
  private stopping = false;
  private loops: Promise<void>[] = [];
  private wakeLanes: (() => void)[] = [];
  private sleeps = new Set<() => void>();

  constructor(private readonly options: DispatcherOptions) {
    this.settings = { ...DEFAULT_SETTINGS, ...options.settings };
  }

  start(): void {
    this.loops.push(this.loop('fan-out', () => this.fanOutAll()));
    for (let i = 0; i < this.settings.concurrency; i++) this.loops.push(this.loop('send', () => this.sendBatch(), true));
    this.loops.push(this.loop('prune', async () => {
      await pruneDelivered(this.options.messages, this.settings.retentionMs);
      await this.sleep(this.settings.pruneEveryMs);
      return true;
    }));
  }

  /** Stops claiming; in-flight attempts finish and are recorded. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const wake of this.sleeps) wake();
    await Promise.allSettled(this.loops);
  }

  /** All shards, page after page until each is drained. Returns whether anything was read. */
  async fanOutAll(): Promise<boolean> {
    let any = false;
    for (const [shard, pool] of this.options.shards.entries()) {
      for (;;) {
        const read = await fanOutPage(this.options.messages, pool, shard, this.settings.fanOutPageSize);
        if (read > 0) {
          any = true;
          this.wake();
        }
        if (read < this.settings.fanOutPageSize || this.stopping) break;
      }
    }
    return any;
  }

  /** Claims a batch, sends it concurrently, records it. Returns whether anything was claimed. */
  async sendBatch(): Promise<boolean> {
    const { settings } = this;
    const claimed = await claimDue(this.options.messages, settings.batchSize, settings.timeoutMs + settings.leaseMarginMs);
    if (claimed.length === 0) return false;
    const results = await Promise.all(claimed.map(async (delivery) => {
      const result = await sendWebhook({ url: delivery.url, id: delivery.eventId, body: delivery.body, secrets: delivery.secrets, timeoutMs: settings.timeoutMs });
      if (this.options.afterSend) await this.options.afterSend(delivery, result);
      if (!result.ok) {
        // Never the headers or the delivery object: they carry the signature and the secrets.
        this.options.logger?.warn({ deliveryId: delivery.id, eventId: delivery.eventId, endpointId: delivery.endpointId, attempt: delivery.attempt, status: result.status, error: result.error, latencyMs: result.latencyMs }, 'webhook attempt failed');
      }
      return { delivery, result };
    }));
    await recordAttempts(this.options.messages, settings, results);
    return true;
  }

  private wake(): void {
    for (const wake of this.wakeLanes.splice(0)) wake();
  }

  private sleep(ms: number, wakeable = false): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleeps.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleeps.add(done);
      if (wakeable) this.wakeLanes.push(done);
    });
  }

  /** Runs `step` until stopped; idle steps sleep the poll interval (jittered), failing ones back off. */
  private async loop(name: string, step: () => Promise<boolean>, wakeable = false): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      try {
        const busy = await step();
        failures = 0;
        if (!busy) await this.sleep(this.settings.pollMs * (0.75 + Math.random() / 2), wakeable);
      } catch (error) {
        failures++;
        const delay = Math.min(this.settings.pollMs * 2 ** Math.min(failures, 6), 30_000) * (0.5 + Math.random());
        this.options.logger?.warn({ loop: name, error: (error as Error).message, retryInMs: Math.round(delay) }, 'webhook dispatcher step failed; retrying');
        await this.sleep(delay);
      }
    }
  }
}
