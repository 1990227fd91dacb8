import { WorkflowFailedError, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { carriedOutcome, startTransfer } from '../src/client.js';
import type { TransferResult } from '../src/domain/transfer.js';
import { approveSignal, cancelUpdate } from '../workflows/definitions.js';
import type { transferWorkflow } from '../workflows/transfer.js';
import type { Findings } from './findings.js';
import type { Plan, TransferSpec } from './plan.js';
import { sleep } from './processes.js';

/** What the client did around one transfer, and how it ended. */
export interface TransferRecord {
  spec: TransferSpec;
  /** False when the run's time limit came before this transfer's turn: it was never sent. */
  started: boolean;
  /** duplicate-changed: how the start with other parameters was answered. */
  changedStart?: 'attached' | 'rejected';
  approved?: boolean;
  /** The cancel update: accepted (the transfer then must not complete), rejected, or unknown. */
  cancel?: 'accepted' | 'rejected';
  /** The cancel was sent after the transfer's end had been seen. */
  lateCancel?: boolean;
  result?: TransferResult;
  /** A Temporal-level close other than COMPLETED (failed, terminated, timed out). */
  closedAs?: string;
  /** ms from the first start call to the observed end (workload phase only). */
  latencyMs?: number;
}

const TRANSIENT = /UNAVAILABLE|DEADLINE_EXCEEDED|RESOURCE_EXHAUSTED|ECONNREFUSED|ECONNRESET|tcp connect|transport error|socket hang up|Connection (dropped|reset|refused|closed)|Channel/i;

/** Errors the client should ride out while Temporal restarts; anything else is an answer. */
export function isTransientClientError(error: unknown): boolean {
  // Answers from the workflow (a rejected update, a closed or unknown workflow) are never retried.
  if (error instanceof WorkflowUpdateFailedError || error instanceof WorkflowNotFoundError || error instanceof WorkflowFailedError) return false;
  const e = error as { code?: number; cause?: { code?: number; message?: string }; message?: string };
  const code = e?.cause?.code ?? e?.code;
  if (code === 4 || code === 8 || code === 14 || code === 1) return true;
  return TRANSIENT.test(`${e?.message ?? ''} ${e?.cause?.message ?? ''}`);
}

export class Workload {
  readonly records: TransferRecord[];
  started = 0;
  finished = 0;
  private next = 0;

  constructor(
    private readonly client: () => Client,
    private readonly taskQueue: string,
    private readonly plan: Plan,
    private readonly findings: Findings,
    private readonly deadline: number,
  ) {
    this.records = plan.transfers.map((spec) => ({ spec, started: false }));
  }

  /**
   * Runs every transfer with at most `concurrency` in flight; resolves when all have ended (or had
   * their turn). `gate(i)` holds transfer i back until the faults planned before it have begun, so
   * the seed fixes how faults and transfers interleave.
   */
  async run(concurrency: number, gate: (index: number) => Promise<void>, progress: (line: string) => void): Promise<void> {
    let lastReport = Date.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      for (let i = this.next++; i < this.records.length && Date.now() < this.deadline; i = this.next++) {
        await gate(i);
        try {
          await this.one(this.records[i]!);
        } catch (error) {
          this.findings.violation({ check: 'client_call_failed', transfer: this.records[i]!.spec.id, message: `the client could not complete its calls: ${(error as Error).message}` });
        }
        if (Date.now() - lastReport > 5000) {
          lastReport = Date.now();
          progress(`workload: ${this.started} started, ${this.finished} finished of ${this.records.length}`);
        }
      }
    }));
  }

  /** Retries a client call through Temporal restarts, until the run's deadline. */
  private async retrying<T>(what: string, call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (!isTransientClientError(error) || Date.now() > this.deadline) throw error;
        this.findings.count('client retries');
        if (attempt % 20 === 0) this.findings.count(`client still retrying: ${what}`);
        await sleep(Math.min(2000, 100 * attempt));
      }
    }
  }

  private handle(id: string): WorkflowHandle<typeof transferWorkflow> {
    return this.client().workflow.getHandle<typeof transferWorkflow>(id);
  }

  private async one(record: TransferRecord): Promise<void> {
    const { spec } = record;
    const t0 = Date.now();
    const request = { transferId: spec.id, from: spec.from, to: spec.to, amount: spec.amount.toString(), currency: spec.currency };
    const changing = spec.kind === 'duplicate-changed';
    let accepted = 0;
    const start = (req: typeof request) => this.retrying('start', () => startTransfer(this.client(), this.taskQueue, req)).then(() => {
      accepted++;
      return true;
    }, (error: unknown) => {
      // Racing starts with other parameters: whichever came first is the transfer, the others are
      // refused (a reused id with other parameters). Without such a race, a refusal is a failure.
      if (!changing) throw error;
      return false;
    });
    const starts: Promise<unknown>[] = [];
    for (let c = 0; c < spec.copies; c++) starts.push(start(request));
    if (changing) starts.push(start({ ...request, amount: (spec.amount + 1n).toString() }).then((ok) => (record.changedStart = ok ? 'attached' : 'rejected')));
    record.started = true; // from the first start call on, the transfer may exist
    try {
      await Promise.all(starts);
    } finally {
      this.started++; // counted even when its starts failed: the fault schedule must never wait on it
    }
    if (accepted === 0) throw new Error('every start of the transfer was refused');

    const needsApproval = spec.amount >= this.plan.approvalThreshold;
    if (needsApproval && spec.kind !== 'approval-cancel' && spec.kind !== 'approval-timeout') {
      await sleep(spec.delayMs);
      // The signal: durable, and judged by the workflow even when it arrives before the approval wait.
      await this.retrying('approve', () => this.handle(spec.id).signal(approveSignal, { by: 'chaos-approver' }));
      record.approved = true;
    }
    const late = spec.kind === 'cancel' && spec.delayMs >= 1500;
    if (late) {
      // A cancel after the transfer ended must be refused and change nothing.
      await this.outcome(record, Math.min(this.deadline, Date.now() + 120_000));
      record.lateCancel = true;
      if (record.result) record.cancel = await this.cancel(spec.id);
    } else if (spec.kind === 'cancel' || spec.kind === 'approval-cancel') {
      await sleep(spec.delayMs);
      record.cancel = await this.cancel(spec.id);
    }
    // An approval left to time out holds no slot: it is collected at the end.
    if (spec.kind !== 'approval-timeout') await this.outcome(record, Math.min(this.deadline, Date.now() + 120_000));
    if (record.result) record.latencyMs = Date.now() - t0;
  }

  /** The cancel update, with a fixed update id so a retry after a lost answer attaches to the first. */
  private async cancel(id: string): Promise<'accepted' | 'rejected'> {
    try {
      const client = this.client();
      await this.retrying('cancel', () => client.withDeadline(Date.now() + 30_000, () => this.handle(id).executeUpdate(cancelUpdate, { args: [{ reason: 'chaos cancel' }], updateId: `${id}-cancel` })));
      return 'accepted';
    } catch (error) {
      if (error instanceof WorkflowUpdateFailedError || error instanceof WorkflowNotFoundError || /already completed|validat|can no longer be cancelled|already ended/i.test((error as Error).message)) return 'rejected';
      throw error;
    }
  }

  /** Waits (through restarts) for the transfer to close, until `deadline`. */
  async outcome(record: TransferRecord, deadline: number): Promise<void> {
    if (record.result || record.closedAs) return;
    for (;;) {
      try {
        // Each attempt is bounded: a transfer that never closes must not hold the caller forever.
        const client = this.client();
        record.result = await client.withDeadline(Math.min(deadline, Date.now() + 30_000), () => this.handle(record.spec.id).result());
        break;
      } catch (error) {
        const carried = carriedOutcome(error); // an outcome other than COMPLETED, carried by its typed failure
        if (carried) {
          record.result = carried;
          break;
        }
        if (error instanceof WorkflowFailedError) {
          record.closedAs = `${error.message}: ${error.cause?.message ?? ''}`;
          break;
        }
        if (!isTransientClientError(error)) throw error;
        if (Date.now() > deadline) return;
        await sleep(500);
      }
    }
    this.finished++;
  }

  /** After the workload: every transfer's outcome, each bounded by `deadline`. */
  async collect(deadline: number, concurrency: number): Promise<void> {
    const open = this.records.filter((r) => r.started && !r.result && !r.closedAs);
    // A workload that ran into its own deadline still reads the outcomes that are there: a few
    // seconds to fetch the results of transfers that closed (an approval left to time out is only
    // collected here), so one stuck transfer is reported as itself, not with every uncollected one.
    deadline = Math.max(deadline, Date.now() + 10_000);
    let i = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (i < open.length) await this.outcome(open[i++]!, deadline);
    }));
  }
}
