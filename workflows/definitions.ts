import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { RepairRequest, TransferResult, TransferState } from '../src/domain/transfer.js';

/** Message definitions shared by the workflow, our CLI and tests. Names are what `temporal` CLI users type. */
export const statusQuery = defineQuery<TransferState>('status');
export const cancelUpdate = defineUpdate<TransferResult, [CancelRequest]>('cancel');
/** Fire and forget (the Temporal CLI recipe): a refused approval shows in the status query's lastError. */
export const approveSignal = defineSignal<[ApproveRequest?]>('approve');
/** The same decision with an answer: a refused approval fails the update, so the caller sees it. */
export const approveUpdate = defineUpdate<ApproveAnswer, [ApproveRequest]>('approve');
/** An operator's decision on a transfer in NEEDS_ATTENTION; answers with the state that follows. */
export const repairUpdate = defineUpdate<TransferState, [RepairRequest]>('repair');

export interface CancelRequest {
  reason?: string;
}

export interface ApproveRequest {
  by?: string;
}

export interface ApproveAnswer {
  approved: true;
  by?: string;
}

export { APPROVAL_REFUSED, DEFAULT_TASK_QUEUE, TRANSFER_WORKFLOW } from './names.js';
