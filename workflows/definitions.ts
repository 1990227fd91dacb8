import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { TransferResult, TransferState } from '../src/domain/transfer.js';

/** Message definitions shared by the workflow, our CLI and tests. Names are what `temporal` CLI users type. */
export const statusQuery = defineQuery<TransferState>('status');
export const cancelUpdate = defineUpdate<TransferResult, [CancelRequest]>('cancel');
export const approveSignal = defineSignal<[ApproveRequest?]>('approve');

export interface CancelRequest {
  reason?: string;
}

export interface ApproveRequest {
  by?: string;
}

export const TRANSFER_WORKFLOW = 'transferWorkflow';
export const DEFAULT_TASK_QUEUE = 'transfers';
