// Names shared by workflows, clients and the CLI, without @temporalio/workflow: the CLI's
// configuration reads them at every start (definitions.ts re-exports them).

export const TRANSFER_WORKFLOW = 'transferWorkflow';
export const DEFAULT_TASK_QUEUE = 'transfers';

/** ApplicationFailure type of a refused approval (update) and of lastError (signal). */
export const APPROVAL_REFUSED = 'APPROVAL_REFUSED';
