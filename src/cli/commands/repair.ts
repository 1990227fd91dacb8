import type { Command } from 'commander';
import type { TransferState } from '../../domain/transfer.js';
import type { FinishReport, LedgerPicture } from '../../repair.js';
import { openLedger } from '../context.js';
import { checkPerson, checkTransferId, CliError, emit, EXIT, type GlobalOptions } from '../output.js';
import { isNotFound, readLedger, withClient } from './transfers.js';

/**
 * `transfer repair <id>`: the operator's way out of a transfer that cannot finish on its own.
 *
 * - An open run that NEEDS_ATTENTION (a compensation the ledger refused) waits for a decision, sent as
 *   the workflow's `repair` update: `--retry` runs the compensation again (same idempotency key),
 *   `--resolve "<note>"` records that the operator settled it by hand and lets the transfer end.
 * - A run that closed without a result (terminated, timed out, failed) can no longer act; `--finish`
 *   finishes its transfer from the ledger with the saga's own step keys. Never while a run is open:
 *   the workflow owns those steps then, and two writers would race.
 * - Without an action it prints the diagnosis and what each action would do, and changes nothing.
 */
export function registerRepairCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('repair <id>')
    .description('resolve a transfer that NEEDS_ATTENTION (--retry, --resolve) or whose run was terminated (--finish); no option: diagnose only')
    .option('--retry', 'run the blocked compensation again (after fixing its cause)')
    .option('--resolve <note>', 'record that it was settled by hand, and let the transfer end RESOLVED')
    .option('--finish', 'for a run that closed without a result: finish the transfer from the ledger')
    .option('--by <name>', 'who decides (default: $USER)')
    .action(async (id: string, opts: { retry?: boolean; resolve?: string; finish?: boolean; by?: string }) => {
      checkTransferId(id);
      const actions = [opts.retry && 'retry', opts.resolve !== undefined && 'resolve', opts.finish && 'finish'].filter(Boolean) as string[];
      if (actions.length > 1) throw new CliError(`choose one of --retry, --resolve, --finish (got ${actions.join(', ')})`, EXIT.USAGE, 'USAGE');
      if (opts.resolve !== undefined && (opts.resolve.trim() === '' || opts.resolve.length > 500)) {
        throw new CliError('--resolve needs a note of 1 to 500 characters saying how it was settled', EXIT.USAGE, 'INVALID_INPUT');
      }
      const by = checkPerson(opts.by ?? process.env.USER, '--by');
      const action = actions[0];

      await withClient(async ({ client, api }) => {
        const description = await client.workflow.getHandle(id).describe().catch((error: unknown) => {
          if (isNotFound(error)) throw new CliError(`transfer ${id} not found`, EXIT.USAGE, 'NOT_FOUND');
          throw error;
        });
        const runStatus = description.status.name;
        const view = await api.describeTransfer(client, id, readLedger);

        if (runStatus === 'RUNNING') {
          if (action === 'finish') throw rejected(id, `its workflow run is open (${view.status}); the workflow owns its ledger steps. Use --retry or --resolve when it NEEDS_ATTENTION`);
          if (action === undefined) {
            emit(globals(), { id, runStatus, status: view.status, ...(view.state?.attention ? { attention: view.state.attention } : {}) }, () =>
              view.state?.attention
                ? `${id}  NEEDS_ATTENTION: ${view.state.attention.step} refused with ${view.state.attention.code}: ${view.state.attention.message}\n  --retry runs it again with the same key; --resolve "<note>" records that you settled it by hand`
                : `${id}  ${view.status}: nothing to repair (repair applies when it NEEDS_ATTENTION)`);
            return;
          }
          const request = action === 'retry' ? { action: 'retry' as const, ...(by ? { by } : {}) } : { action: 'resolve' as const, note: opts.resolve!, ...(by ? { by } : {}) };
          const state = await api.repairTransfer(client, id, request).catch((error: Error) => {
            throw rejected(id, error.cause instanceof Error ? error.cause.message : error.message);
          });
          emitState(globals(), id, state);
          if (state.status === 'NEEDS_ATTENTION') process.exitCode = EXIT.NOT_COMPLETED; // still blocked
          return;
        }

        if (runStatus === 'COMPLETED' || view.result) { // a run that ended with its outcome (typed failure included)
          if (action !== undefined) throw rejected(id, `it already ended ${view.status}; nothing to repair`);
          emit(globals(), { id, runStatus, status: view.status }, () => `${id}  ${view.status}: the workflow finished it; nothing to repair`);
          return;
        }

        // Terminated, timed out, failed: only the ledger can say, and only --finish can act.
        if (action === 'retry' || action === 'resolve') throw rejected(id, `its workflow run is ${runStatus}; nothing is waiting for a decision. Use --finish to finish it from the ledger`);
        if (action === undefined) {
          emit(globals(), { id, runStatus, status: view.status, ...(view.ledger ? { ledger: view.ledger } : {}), plan: plan(view.ledger) }, () => `${id}  run ${runStatus}; ${view.message ?? ''}\n  --finish would: ${plan(view.ledger)}`);
          return;
        }
        const { finishFromLedger } = await import('../../repair.js');
        const ledger = await openLedger();
        let report: FinishReport;
        try {
          report = await finishFromLedger(ledger, { transferId: id, from: view.from, to: view.to, currency: view.currency });
        } finally {
          await ledger.close();
        }
        emit(globals(), { id, runStatus, status: report.after.status, ledger: report.after, steps: report.steps, ...(report.blocked ? { blocked: report.blocked } : {}), ...(by ? { by } : {}) }, () =>
          [
            `${id}  finished from the ledger: ${report.after.status}  (${report.after.summary})`,
            ...report.steps.map((s) => `  ${s.step}: ${s.outcome}`),
            ...(report.blocked ? [`  blocked: ${report.blocked.step} refused with ${report.blocked.code}: ${report.blocked.message}`] : []),
          ].join('\n'));
        if (report.blocked || report.after.status === 'NEEDS_ATTENTION') process.exitCode = EXIT.NOT_COMPLETED;
      });
    });
}

function rejected(id: string, why: string): CliError {
  return new CliError(`cannot repair ${id}: ${why}`, EXIT.NOT_COMPLETED, 'REPAIR_REJECTED');
}

/** What --finish would do, from what the ledger holds (the same rules as finishFromLedger). */
function plan(picture: LedgerPicture | undefined): string {
  if (!picture) return 'read the ledger first (it could not be read)';
  if (picture.debit === 'posted' && picture.credit === 'posted') return 'nothing: both sides are posted';
  if (picture.debit === 'posted' && picture.credit === 'pending') return 'post the credit (if its hold has expired: void it and refund the debit)';
  if (picture.debit === 'posted') return 'void the credit side and refund the debit';
  if (picture.status === 'NEEDS_ATTENTION') return 'void both sides (nothing was paid)';
  return 'nothing to move; void both sides so a late reservation is fenced';
}

function emitState(options: GlobalOptions, id: string, state: TransferState): void {
  const json = { id, status: state.result?.status ?? state.status, ...(state.attention ? { attention: state.attention } : {}), ...(state.result ? { result: state.result } : {}) };
  emit(options, json, () =>
    state.attention
      ? `${id}  still NEEDS_ATTENTION: ${state.attention.step} refused with ${state.attention.code}: ${state.attention.message}`
      : `${id}  ${state.result?.status ?? state.status}${state.result?.reason ? ` (${state.result.reason})` : ''}${state.result?.resolution ? `: settled by hand: ${state.result.resolution.note}` : ''}`);
}
