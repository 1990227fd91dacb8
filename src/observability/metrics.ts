import { createServer, type Server, type ServerResponse } from 'node:http';
import client from 'prom-client';
import type { ActivityObserver } from '../../activities/index.js';
import type { BatchStats } from '../ledger/step-batcher.js';

/** What the batching metrics read from each shard of a Ledger (its StepBatcher). */
export interface BatchedShard {
  shard: number;
  steps?: { readonly stats: BatchStats; readonly waiting: number };
}

/**
 * Prometheus metrics of the worker: transfers by outcome, step latency, compensations and the
 * idempotent replays the ledger detected. The Temporal runtime exports its own metrics on a second
 * port (TEMPORAL_METRICS_PORT) through the SDK's telemetry options.
 */
export class TransferMetrics implements ActivityObserver {
  readonly registry = new client.Registry();
  readonly steps = new client.Histogram({
    name: 'transfer_step_duration_seconds',
    help: 'Ledger step latency by step and outcome',
    labelNames: ['step', 'outcome'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly replays = new client.Counter({ name: 'transfer_idempotent_replays_total', help: 'Steps the ledger recognised by key and replayed', labelNames: ['step'] as const, registers: [this.registry] });
  readonly compensations = new client.Counter({ name: 'transfer_compensations_total', help: 'Compensations by step and outcome', labelNames: ['step', 'outcome'] as const, registers: [this.registry] });
  readonly outcomes = new client.Counter({ name: 'transfer_outcomes_total', help: 'Finished transfers by status and reason', labelNames: ['status', 'reason'] as const, registers: [this.registry] });

  readonly relaySlotLag = new client.Gauge({ name: 'transfer_relay_slot_lag_bytes', help: 'WAL the log relay\'s replication slot retains (behind the producer\'s current position)', registers: [this.registry] });
  readonly suspense = new client.Gauge({ name: 'transfer_ledger_suspense_minor_units', help: 'Money refunded after its account closed, waiting for an operator (minor units)', labelNames: ['shard', 'currency'] as const, registers: [this.registry] });
  readonly attentions = new client.Counter({ name: 'transfer_needs_attention_total', help: 'Compensations refused by the ledger: the transfer waits for an operator (transfer repair)', labelNames: ['step', 'code'] as const, registers: [this.registry] });
  readonly repairs = new client.Counter({ name: 'transfer_repairs_total', help: 'Operator decisions on transfers that needed attention', labelNames: ['action'] as const, registers: [this.registry] });
  readonly approvalRefusals = new client.Counter({ name: 'transfer_approvals_refused_total', help: 'Approvals refused (not an approver, or the requester)', registers: [this.registry] });

  /** Whole transfers, from the workflow's start to its outcome (an approval wait included). */
  readonly durations = new client.Histogram({
    name: 'transfer_duration_seconds',
    help: 'Whole-transfer latency from workflow start to outcome, by outcome',
    labelNames: ['status'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400],
    registers: [this.registry],
  });
  /** Minor units of completed transfers; rate() of it is money moved per second. */
  readonly moneyMoved = new client.Counter({ name: 'transfer_money_moved_minor_units_total', help: 'Money moved by completed transfers, in minor units of the currency', labelNames: ['currency'] as const, registers: [this.registry] });
  /**
   * Open transfers of this worker's task queue, from Temporal's visibility (a count query every few
   * seconds, see runWorker): true across worker restarts and shared by every worker of the queue, so
   * a dashboard takes max() over workers, not sum().
   */
  readonly inFlight = new client.Gauge({ name: 'transfer_in_flight', help: 'Transfers whose workflow is running (visibility count, task queue of this worker)', registers: [this.registry] });
  readonly awaitingApproval = new client.Gauge({ name: 'transfer_awaiting_approval', help: "Running transfers with TransferStatus='AWAITING_APPROVAL' (visibility count)", registers: [this.registry] });

  /** The shards whose step batchers the ledger metrics below read at each scrape (watchLedger). */
  private batched: readonly BatchedShard[] = [];
  /**
   * The batchers' figures are cumulative (they only ever rise), so each scrape sets the counters to
   * them: reset, then one inc per shard.
   */
  private eachBatcher(fn: (shard: string, steps: NonNullable<BatchedShard['steps']>) => void): void {
    for (const { shard, steps } of this.batched) if (steps) fn(String(shard), steps);
  }
  readonly ledgerCalls: client.Counter<'shard' | 'kind'> = new client.Counter({
    name: 'transfer_ledger_step_calls_total',
    help: 'Ledger step calls by shard: a step sent alone (kind="alone") or a ledger_batch call that committed (kind="batch")',
    labelNames: ['shard', 'kind'] as const,
    registers: [this.registry],
    collect: () => {
      this.ledgerCalls.reset();
      this.eachBatcher((shard, steps) => {
        this.ledgerCalls.inc({ shard, kind: 'alone' }, steps.stats.singles);
        this.ledgerCalls.inc({ shard, kind: 'batch' }, steps.stats.batches);
      });
    },
  });
  /** A counter per shard set at each scrape from one cumulative figure of the shard's batcher. */
  private batcherCounter(name: string, help: string, figure: (stats: BatchStats) => number): client.Counter<'shard'> {
    const counter: client.Counter<'shard'> = new client.Counter({
      name,
      help,
      labelNames: ['shard'] as const,
      registers: [this.registry],
      collect: () => {
        counter.reset();
        this.eachBatcher((shard, steps) => counter.inc({ shard }, figure(steps.stats)));
      },
    });
    return counter;
  }
  readonly ledgerBatchedSteps = this.batcherCounter(
    'transfer_ledger_batched_steps_total',
    'Ledger steps that committed inside a ledger_batch call, by shard (÷ kind="batch" calls: steps per batch)',
    (stats) => stats.batchedSteps,
  );
  readonly ledgerBatchFallbacks = this.batcherCounter(
    'transfer_ledger_batch_fallbacks_total',
    'ledger_batch calls that failed as a whole (deadlock, timeout, lost connection); their steps ran again alone',
    (stats) => stats.fallbacks,
  );
  readonly ledgerStepsWaiting: client.Gauge<'shard'> = new client.Gauge({
    name: 'transfer_ledger_steps_waiting',
    help: "Ledger steps waiting for one of their shard's step calls to return (they go out together in the next batch)",
    labelNames: ['shard'] as const,
    registers: [this.registry],
    collect: () => this.eachBatcher((shard, steps) => this.ledgerStepsWaiting.set({ shard }, steps.waiting)),
  });

  constructor() {
    client.collectDefaultMetrics({ register: this.registry });
  }

  /** Reads the ledger's step batchers at each scrape (the worker's Ledger; each process has its own). */
  watchLedger(shards: readonly BatchedShard[]): void {
    this.batched = shards;
  }

  step(step: string, ms: number, outcome: 'ok' | 'refused' | 'error', replayed: boolean): void {
    this.steps.observe({ step, outcome }, ms / 1000);
    if (replayed) this.replays.inc({ step });
  }

  compensation(step: string, outcome: string): void {
    this.compensations.inc({ step, outcome });
  }

  attention(step: string, code: string): void {
    this.attentions.inc({ step, code });
  }

  repair(action: string): void {
    this.repairs.inc({ action });
  }

  approvalRefused(): void {
    this.approvalRefusals.inc();
  }

  /** A transfer ended: `seconds` since its workflow started; `amount` in minor units, counted when COMPLETED. */
  outcome(status: string, reason = '', seconds?: number, amount?: string, currency?: string): void {
    this.outcomes.inc({ status, reason });
    if (seconds !== undefined && seconds >= 0) this.durations.observe({ status }, seconds);
    if (status === 'COMPLETED' && amount && currency && /^\d+$/.test(amount)) this.moneyMoved.inc({ currency }, Number(amount));
  }

  /** The visibility counts of open transfers (see inFlight). */
  openTransfers(running: number, awaitingApproval: number): void {
    this.inFlight.set(running);
    this.awaitingApproval.set(awaitingApproval);
  }

  /** Replaces the suspense gauge with the ledger's current balances (zero rows disappear). */
  suspenseBalances(balances: readonly { shard: number; currency: string; amount: string }[]): void {
    this.suspense.reset();
    for (const b of balances) this.suspense.set({ shard: String(b.shard), currency: b.currency }, Number(b.amount));
  }

  /**
   * The endpoint shares the worker's process: a failing scrape (a collector throwing or rejecting)
   * answers 500 and is reported to `onError`, and never escapes as an uncaught exception or an
   * unhandled rejection, which would take the worker down with it.
   */
  serve(port: number, host = '0.0.0.0', onError: (error: unknown) => void = () => undefined): Promise<Server> {
    const server = createServer((req, res) => {
      this.answer(req.url ?? '', res).catch((error: unknown) => {
        try {
          onError(error);
        } catch {
          // A failing logger must not take the worker down either; the 500 below still answers.
        }
        if (res.headersSent) {
          res.destroy();
        } else {
          res.statusCode = 500;
          res.setHeader('content-type', 'text/plain');
          res.end('metrics unavailable; see the worker log\n');
        }
      });
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve(server));
    });
  }

  private async answer(url: string, res: ServerResponse): Promise<void> {
    if (!url.startsWith('/metrics')) {
      res.statusCode = 404;
      res.end('see /metrics\n');
      return;
    }
    const body = await this.registry.metrics();
    res.setHeader('content-type', this.registry.contentType);
    res.end(body);
  }
}
