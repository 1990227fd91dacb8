import * as wf from '@temporalio/workflow';
import type { TransferPolicy, TransferState } from '../src/domain/transfer.js';
import { APPROVAL_REFUSED, approveSignal, approveUpdate, type ApproveRequest } from './definitions.js';
import type { TransferSinks } from './sinks.js';

const { transferMetrics } = wf.proxySinks<TransferSinks>();

export interface ApprovalGate {
  /** The policy and the requester, once known; approvals that arrived earlier are judged now. */
  setRules(rules: TransferPolicy, requestedBy: string | undefined): void;
  readonly approved: boolean;
  readonly approvedBy: string | undefined;
}

/**
 * Who may approve. Four eyes: the requester never approves their own transfer; with an approvers
 * list (TRANSFER_APPROVERS, carried in the recorded policy) nobody else does either, and an approval
 * must name its approver. The `approve` signal (fire and forget, the Temporal CLI recipe) and the
 * `approve` update (answers with the refusal) share these rules; a refusal never approves and is
 * visible as the status query's lastError, a step record and a log line.
 */
export function installApprovalGate(state: TransferState, onRefused: (by: string | undefined, reason: string) => void): ApprovalGate {
  let rules: { approvers: string[]; requestedBy: string | undefined } | undefined;
  const early: (ApproveRequest | undefined)[] = [];
  const gate = { approved: false, approvedBy: undefined as string | undefined };

  const who = (request: ApproveRequest | undefined) => (typeof request?.by === 'string' && request.by !== '' ? request.by.slice(0, 100) : undefined);

  function refusal(by: string | undefined): string | undefined {
    if (!rules) return undefined;
    if (rules.approvers.length > 0) {
      if (by === undefined) return `approvals must name the approver (one of: ${rules.approvers.join(', ')})`;
      if (!rules.approvers.includes(by)) return `${by} is not an approver of this transfer`;
    }
    if (by !== undefined && by === rules.requestedBy) return `${by} requested this transfer and cannot approve it`;
    return undefined;
  }

  /** Applies one approval; returns the refusal, if any (recorded, never approving). */
  function consider(request: ApproveRequest | undefined): string | undefined {
    const by = who(request);
    const reason = refusal(by);
    if (reason !== undefined) {
      state.lastError = { step: 'approval', type: APPROVAL_REFUSED, message: reason };
      transferMetrics.approvalRefused(by ?? '', reason);
      onRefused(by, reason);
      return reason;
    }
    if (!gate.approved) {
      gate.approved = true;
      gate.approvedBy = by;
    }
    return undefined;
  }

  wf.setHandler(approveSignal, (request) => {
    if (!rules) early.push(request); // the policy is not loaded yet: judge it once it is
    else consider(request);
  });
  wf.setHandler(
    approveUpdate,
    (request: ApproveRequest) => {
      const reason = consider(request);
      if (reason !== undefined) throw wf.ApplicationFailure.create({ type: APPROVAL_REFUSED, message: reason, nonRetryable: true });
      return { approved: true as const, ...(gate.approvedBy ? { by: gate.approvedBy } : {}) };
    },
    {
      validator: (_request: ApproveRequest) => {
        if (!state.awaitingApproval) throw new Error(state.result ? `transfer ${state.transferId} already ended ${state.result.status}` : `transfer ${state.transferId} is not awaiting approval`);
      },
    },
  );

  return {
    setRules(policy, requestedBy) {
      rules = { approvers: policy.approvers ?? [], requestedBy };
      for (const request of early.splice(0)) consider(request);
    },
    get approved() {
      return gate.approved;
    },
    get approvedBy() {
      return gate.approvedBy;
    },
  };
}
