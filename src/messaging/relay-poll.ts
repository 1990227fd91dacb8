import pg from 'pg';
import { withTransaction } from '../db/transaction.js';
import { handleRequest, markHandled, markStarted, REQUESTS_CHANNEL, REQUESTS_TABLE, type RequestHandlerOptions, type RequestRow } from './requests.js';

export interface PollRelayOptions extends RequestHandlerOptions {
  pool: pg.Pool;
  /** Connection string for the LISTEN connection (a pooled client cannot keep listening). */
  url: string;
  /** Fallback poll interval: the only wake-up when `notify` is off. */
  intervalMs?: number;
  /** Wake on NOTIFY at commit (default true). */
  notify?: boolean;
  batch?: number;
  /** After a NOTIFY, wait this long so one claim takes the rows of several commits (default 5 ms). */
  coalesceMs?: number;
  log?: (line: string) => void;
}

/**
 * The polling relay. Claims pending rows with FOR UPDATE SKIP LOCKED (several relays share the work
 * and never hand the same row to Temporal at once), in no cursor order at all: a row becomes
 * claimable when its transaction commits, whatever its id, so a late commit is never skipped
 * (the `id > last_seen` cursor bug). LISTEN/NOTIFY wakes it at commit; the interval is the floor.
 */
export class PollRelay {
  private running = false;
  private wake: (() => void) | undefined;
  /** A NOTIFY that arrived while a batch was being handled: drain again at once. */
  private kicked = false;
  private listener: pg.Client | undefined;
  private loop: Promise<void> | undefined;
  handled = 0;

  constructor(private readonly options: PollRelayOptions) {}

  async start(): Promise<void> {
    this.running = true;
    if (this.options.notify !== false) await this.listen();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    await this.listener?.end().catch(() => undefined);
  }

  /** Claims and hands over one batch; returns how many rows it handled. */
  async drainOnce(): Promise<number> {
    const batch = this.options.batch ?? 50;
    return withTransaction(this.options.pool, async (client) => {
      const { rows } = await client.query<RequestRow>(
        `SELECT id, from_account, to_account, amount, currency, memo, attempts FROM ${REQUESTS_TABLE}
         WHERE state = 'pending' AND next_attempt_at <= now()
         ORDER BY next_attempt_at, requested_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [batch],
      );
      // Starts in parallel: each is one idempotent RPC, and the rows stay locked until all are marked.
      const results = await Promise.all(rows.map((row) => handleRequest(row, this.options)));
      // One statement marks every started row; rejections and retries (rare) each get their own.
      await markStarted(client, rows.filter((_, i) => results[i]!.kind === 'started').map((r) => r.id));
      for (const [i, row] of rows.entries()) if (results[i]!.kind !== 'started') await markHandled(client, row, results[i]!);
      this.handled += rows.length;
      return rows.length;
    });
  }

  private async run(): Promise<void> {
    const interval = this.options.intervalMs ?? 1_000;
    while (this.running) {
      let n = 0;
      try {
        n = await this.drainOnce();
      } catch (error) {
        this.options.log?.(`relay: ${(error as Error).message}; retrying`);
      }
      if (n === (this.options.batch ?? 50)) continue; // more may be waiting
      if (this.kicked) {
        this.kicked = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        let timer: NodeJS.Timeout | undefined = undefined;
        const done = () => {
          clearTimeout(timer);
          this.kicked = false;
          resolve();
        };
        timer = setTimeout(done, interval);
        this.wake = done;
      });
      this.wake = undefined;
    }
  }

  /** A dedicated LISTEN connection, re-established after any loss (a missed NOTIFY only costs the interval). */
  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.url, keepAlive: true, application_name: 'durable-transfer' });
    const again = () => {
      if (this.listener !== client) return;
      this.listener = undefined;
      if (this.running) setTimeout(() => void this.listen().catch(() => undefined), 1_000);
    };
    client.on('error', again);
    client.on('end', again);
    let coalescing = false;
    client.on('notification', () => {
      if (coalescing) return;
      coalescing = true;
      setTimeout(() => {
        coalescing = false;
        this.kicked = true;
        this.wake?.();
      }, this.options.coalesceMs ?? 5);
    });
    this.listener = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${REQUESTS_CHANNEL}`);
    } catch (error) {
      this.options.log?.(`relay: LISTEN failed (${(error as Error).message}); polling every ${this.options.intervalMs ?? 1_000} ms meanwhile`);
      again();
    }
  }
}
