import type pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { handleRequest, markHandled, markStarted, REQUESTS_PUBLICATION, type Handled, type RequestHandlerOptions, type RequestRow } from './requests.js';

export interface LogRelayOptions extends RequestHandlerOptions {
  /** The producer database (its role needs REPLICATION, and the server wal_level=logical). */
  url: string;
  /** For marking rows handled. */
  pool: pg.Pool;
  slot?: string;
  log?: (line: string) => void;
  /**
   * Rows handed over are marked, and the slot acknowledged, in one flush at most this often (or every
   * 200 rows): one UPDATE per flush instead of one per request. Never acknowledged before marked.
   */
  flushMs?: number;
}

export const DEFAULT_SLOT = 'transfer_requests_relay';

/**
 * The log relay: tails the producer's write-ahead log through logical decoding (pgoutput, a
 * publication on inserts, a replication slot), the PostgreSQL counterpart of a binlog subscriber.
 * It polls nothing. The slot's position is acknowledged only after every request of a transaction
 * was handed to Temporal and marked: a crash re-delivers from the last acknowledged commit, never
 * skips (handing a request over twice is harmless: its id is the workflow id).
 *
 * The client library acknowledges on its own unless told otherwise: `acknowledge.auto` is off, its
 * periodic acknowledgement timer is off (`timeoutSeconds: 0`, or it would confirm the last
 * *received* position), and flow control is on so each async handler finishes before the next
 * message (a test pins this).
 */
export class LogRelay {
  private service: LogicalReplicationService | undefined;
  private running = false;
  private inTransaction: RequestRow[] = [];
  /** The last commit whose requests are all handled: the only position ever acknowledged. */
  confirmed: string | undefined;
  handled = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Handed over, not yet marked; `upTo` is the commit to acknowledge once they are. */
  private unmarked: { row: RequestRow; result: Handled }[] = [];
  private upTo: string | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  /** A message is being handled, or a flush is marking and acknowledging. */
  private busy = 0;

  constructor(private readonly options: LogRelayOptions) {}

  get slot(): string {
    return this.options.slot ?? DEFAULT_SLOT;
  }

  async start(): Promise<void> {
    this.running = true;
    await this.ensureSlot();
    this.subscribe();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.restartTimer);
    clearTimeout(this.flushTimer);
    // What was handed over gets marked and acknowledged; if that fails, it is re-delivered next time.
    if (this.service) await this.flush(this.service).catch(() => undefined);
    await this.service?.destroy().catch(() => undefined);
    this.service = undefined;
  }

  private async ensureSlot(): Promise<void> {
    await this.options.pool.query(
      `SELECT pg_create_logical_replication_slot($1::name, 'pgoutput')
       WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1::name)`,
      [this.slot],
    ).catch((error: { code?: string }) => {
      if (error.code !== '42710') throw error; // created by a concurrent relay: fine
    });
  }

  private subscribe(): void {
    const service = new LogicalReplicationService(
      { connectionString: this.options.url },
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
    );
    this.service = service;
    // After any failure this service is finished: later messages must not be acknowledged past the
    // one that failed, so they are ignored and everything from the last acknowledgement is re-read.
    let failed = false;
    service.on('data', async (lsn: string, message: Pgoutput.Message) => {
      if (failed) return;
      this.busy++;
      try {
        await this.onMessage(service, lsn, message);
      } catch (error) {
        failed = true;
        this.retry(service, error as Error);
      } finally {
        this.busy--;
      }
    });
    // The server asks for feedback now and then; answer with what is handled, not what was received.
    // With nothing in hand (no transaction being read, nothing handed over and unmarked) everything
    // the server sent before this keepalive is handled, so its position is acknowledged: otherwise an
    // idle publication would pin the WAL of every other database of the cluster in the slot forever.
    // A transaction still open on the server commits past this position and is still delivered.
    service.on('heartbeat', async (lsn: string, _ts: number, shouldRespond: boolean) => {
      if (this.service !== service) return;
      const idle = this.busy === 0 && this.inTransaction.length === 0 && this.unmarked.length === 0 && this.flushTimer === undefined;
      // A keepalive carries the end of what was sent (the next byte); acknowledge() reports its
      // argument + 1 (right for a message's own position), so it gets the last byte sent: a commit
      // record starting exactly at that end must not count as confirmed.
      const last = lsn ? lsnText(lsnValue(lsn) - 1n) : undefined;
      if (idle && last && (this.confirmed === undefined || lsnValue(last) > lsnValue(this.confirmed))) {
        await service.acknowledge(last).then(() => (this.confirmed = last), () => undefined);
      } else if (shouldRespond && this.confirmed) {
        await service.acknowledge(this.confirmed).catch(() => undefined);
      }
    });
    service.on('error', (error: Error) => this.retry(service, error));
    service.subscribe(new PgoutputPlugin({ protoVersion: 1, publicationNames: [REQUESTS_PUBLICATION] }), this.slot)
      .catch((error: Error) => this.retry(service, error));
  }

  /** Another relay holds the slot, the server restarted, the network dropped: start again later. */
  private retry(service: LogicalReplicationService, error: Error): void {
    if (!this.running || this.service !== service) return;
    this.options.log?.(`log relay: ${error.message}; reconnecting in 1 s`);
    this.service = undefined;
    this.inTransaction = [];
    this.unmarked = [];
    this.upTo = undefined;
    clearTimeout(this.flushTimer);
    void service.destroy().catch(() => undefined);
    this.restartTimer = setTimeout(() => this.subscribe(), 1_000);
  }

  private async onMessage(service: LogicalReplicationService, lsn: string, message: Pgoutput.Message): Promise<void> {
    if (message.tag === 'begin') {
      this.inTransaction = [];
    } else if (message.tag === 'insert') {
      this.inTransaction.push(message.new as RequestRow);
    } else if (message.tag === 'commit') {
      const rows = this.inTransaction;
      this.inTransaction = [];
      for (const row of rows) {
        const result = await this.handleUntilDone(row);
        this.unmarked.push({ row, result }); // after the await: a flush may have swapped the array meanwhile
      }
      this.handled += rows.length;
      this.upTo = lsn;
      if (this.unmarked.length >= 200) await this.flush(service);
      else this.flushTimer ??= setTimeout(() => void this.flush(service).catch((error: Error) => this.retry(service, error)), this.options.flushMs ?? 10);
    }
  }

  /** Marks what was handed over, then (only then) acknowledges up to its last commit. */
  private flush(service: LogicalReplicationService): Promise<void> {
    this.busy++;
    // A failed flush (its service is finished, see retry) must not stop the next one from running.
    this.flushing = this.flushing.catch(() => undefined).then(async () => {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
      const batch = this.unmarked;
      const upTo = this.upTo;
      if (!upTo || service !== this.service) return;
      this.unmarked = [];
      await markStarted(this.options.pool, batch.filter((b) => b.result.kind === 'started').map((b) => b.row.id));
      for (const b of batch) if (b.result.kind !== 'started') await markHandled(this.options.pool, b.row, b.result);
      await service.acknowledge(upTo);
      if (this.confirmed === undefined || lsnValue(upTo) > lsnValue(this.confirmed)) this.confirmed = upTo;
    }).finally(() => this.busy--);
    return this.flushing;
  }

  /** In log order: a request Temporal cannot take yet blocks the ones behind it, never skipped. */
  private async handleUntilDone(row: RequestRow): Promise<Handled> {
    for (let attempt = 0; this.running; attempt++) {
      const result = await handleRequest({ ...row, attempts: attempt }, this.options);
      if (result.kind !== 'retry') return result;
      this.options.log?.(`log relay: ${row.id} not started (${result.error}); retrying`);
      await new Promise((r) => setTimeout(r, Math.min(30_000, 500 * 2 ** Math.min(attempt, 6))));
    }
    throw new Error('relay stopped before the request was handed over'); // not acknowledged: re-delivered
  }
}

/** A WAL position "X/Y" (two hex halves) as one number, for comparing. */
export function lsnValue(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi ?? '0'}`) << 32n) + BigInt(`0x${lo ?? '0'}`);
}

export function lsnText(value: bigint): string {
  return `${(value >> 32n).toString(16).toUpperCase()}/${(value & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** How much WAL the slot holds back (bytes) and whether a consumer is attached: for status and metrics. */
export async function slotLag(pool: pg.Pool, slot = DEFAULT_SLOT): Promise<{ exists: boolean; active: boolean; lagBytes: number }> {
  const { rows } = await pool.query<{ active: boolean; lag: string | null }>(
    `SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const row = rows[0];
  return row ? { exists: true, active: row.active, lagBytes: Number(row.lag ?? 0) } : { exists: false, active: false, lagBytes: 0 };
}
