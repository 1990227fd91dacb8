import * as wf from '@temporalio/workflow';
import type { CompensationResult } from '../activities/index.js';
import { PERSON, type CompensationName, type RepairRequest, type Resolution, type StepRecord, type TransferResult, type TransferState, type TransferStatus } from '../src/domain/transfer.js';
import { repairUpdate } from './definitions.js';
import { blockedBy } from './failures.js';
import type { TransferSinks } from './sinks.js';

const { transferMetrics } = wf.proxySinks<TransferSinks>();

/** Marks the histories that may stop for an operator (a blocked compensation, hole 3). */
export const NEEDS_ATTENTION_PATCH = 'compensation-needs-attention';

export interface Compensation {
  name: CompensationName;
  run: () => Promise<CompensationResult>;
  /**
   * Asked when the compensation stopped: true when the transfer finished meanwhile (the hold was
   * posted by the transfer's own step) and the workflow completed it instead, which ends the unwind.
   */
  rollForward?: (error: unknown, startedAt: number) => Promise<boolean>;
}

type RecordStep = (step: StepRecord['step'], result: { attempt: number; replayed: boolean } | undefined, startedAt: number, outcome: StepRecord['outcome'], detail?: string) => void;

interface Saga {
  state: TransferState;
  setStatus: (status: TransferStatus) => void;
  record: RecordStep;
  compensations: TransferResult['compensations'];
  /**
   * Whether a stopped compensation waits for an operator, when decided at the workflow's start;
   * undefined: asked (NEEDS_ATTENTION_PATCH) where a compensation first stops, as older histories did.
   */
  stopsForOperator?: boolean;
}

/**
 * Unwinds the compensation stack in reverse. Transient faults never reach here (compensations retry
 * them without end); a refusal does (the activity makes it non-retryable): the transfer then becomes
 * NEEDS_ATTENTION (status query, TransferStatus search attribute, a metric and a log line) and waits
 * for an operator's `repair` update: `retry` runs the same compensation again with the same key,
 * `resolve` records that the operator settled it by hand and moves on to the next compensation.
 */
export class Compensator {
  private decision: RepairRequest | undefined;
  private episode = 0;
  resolution: Resolution | undefined;

  constructor(private readonly saga: Saga) {
    const { state } = saga;
    wf.setHandler(
      repairUpdate,
      async (request) => {
        const episode = this.episode;
        this.decision = { action: request.action, ...(request.note ? { note: request.note } : {}), ...(request.by ? { by: request.by } : {}) };
        // Answer with what the decision led to: the transfer ended, or it is blocked again.
        await wf.condition(() => state.result !== undefined || (this.episode !== episode && state.attention !== undefined));
        return state;
      },
      {
        validator: (request) => {
          if (!state.attention || this.decision) throw new Error(`transfer ${state.transferId} is ${state.status}: repair applies only while it NEEDS_ATTENTION`);
          if (request?.action !== 'retry' && request?.action !== 'resolve') throw new Error('repair action must be "retry" or "resolve"');
          if (request.action === 'resolve' && (typeof request.note !== 'string' || request.note.trim() === '' || request.note.length > 500)) {
            throw new Error('resolve needs a note (1 to 500 characters) saying how the operator settled it');
          }
          if (request.by !== undefined && (typeof request.by !== 'string' || !PERSON.test(request.by))) throw new Error('by must be a name of 1 to 100 characters');
        },
      },
    );
  }

  /** 'rolled-forward' when a compensation found the transfer finished and completed it instead. */
  async unwind(stack: readonly Compensation[], cause: string): Promise<'unwound' | 'rolled-forward'> {
    const { state, record, compensations } = this.saga;
    for (const compensation of [...stack].reverse()) {
      const startedAt = Date.now();
      state.step = compensation.name;
      wf.setCurrentDetails(`compensating: ${compensation.name} after ${cause}`);
      for (;;) {
        let result: CompensationResult;
        try {
          result = await compensation.run();
        } catch (error) {
          if (compensation.rollForward && (await compensation.rollForward(error, startedAt))) return 'rolled-forward';
          // Only a stopped compensation lands here; before this patch none ever did (they retried forever).
          if (!(this.saga.stopsForOperator ?? wf.patched(NEEDS_ATTENTION_PATCH))) throw error;
          const decision = await this.askOperator(compensation.name, blockedBy(error), startedAt);
          if (decision.action === 'retry') continue;
          this.resolution = { step: compensation.name, note: decision.note ?? '', ...(decision.by ? { by: decision.by } : {}), at: new Date(Date.now()).toISOString() };
          record(compensation.name, undefined, startedAt, 'resolved', `settled by hand${decision.by ? ` by ${decision.by}` : ''}: ${decision.note}`);
          compensations.push({ step: compensation.name, outcome: 'resolved_by_operator' });
          break;
        }
        record(compensation.name, result, startedAt, 'ok', result.outcome);
        if (result.hold) state.holds = state.holds.map((h) => (h.key === result.hold!.key ? result.hold! : h));
        compensations.push({ step: result.outcome === 'refunded' || result.outcome === 'already_refunded' ? 'refund-debit' : compensation.name, outcome: result.outcome });
        break;
      }
    }
    return 'unwound';
  }

  private async askOperator(step: CompensationName, refusal: { code: string; message: string }, startedAt: number): Promise<RepairRequest> {
    const { state, setStatus, record } = this.saga;
    record(step, undefined, startedAt, 'blocked', `${refusal.code}: ${refusal.message}`);
    state.attention = { step, code: refusal.code, message: refusal.message, since: new Date(Date.now()).toISOString() };
    state.lastError = { step, type: refusal.code, message: refusal.message };
    this.episode += 1;
    setStatus('NEEDS_ATTENTION');
    wf.setCurrentDetails(`NEEDS ATTENTION: ${step} refused (${refusal.code}); \`transfer repair ${state.transferId} --retry\` or --resolve "<note>"`);
    transferMetrics.attention(step, refusal.code, refusal.message);
    await wf.condition(() => this.decision !== undefined);
    const decision = this.decision!;
    this.decision = undefined;
    state.attention = undefined;
    transferMetrics.repaired(step, decision.action, decision.by ?? '', decision.note ?? '');
    setStatus('COMPENSATING');
    return decision;
  }
}
