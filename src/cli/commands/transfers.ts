import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import type { TransferView } from '../../client.js';
import { parseDecimal } from '../../domain/money.js';
import { OPEN_STATUSES, PERSON, TERMINAL_STATUSES, validateCancelRequest, validateTransfer, type TransferResult, type TransferStatus } from '../../domain/transfer.js';
import { openClient, openLedger, stackApi } from '../context.js';
import { outcomeLine, reasonSuffix } from '../outcome.js';
import { checkAccountId, checkCurrency, checkPerson, checkPositiveInteger, checkTransferId, CliError, emit, EXIT, money, type GlobalOptions } from '../output.js';

export function transferJson(v: TransferView | (TransferResult & { id?: string })) {
  const id = 'id' in v && v.id ? v.id : (v as TransferResult).transferId;
  return { id, status: v.status, from: v.from, to: v.to, amount: v.amount, currency: v.currency, ...(v.reason ? { reason: v.reason } : {}), ...(v.message ? { message: v.message } : {}), ...(v.memo ? { memo: v.memo } : {}) };
}

export function transferLine(v: ReturnType<typeof transferJson>): string {
  return `${v.id}  ${v.status}${reasonSuffix(v.status, v.reason)}  ${v.from} → ${v.to}  ${v.amount && v.currency ? money(v.amount, v.currency) : ''}`;
}

/** The transfer's line, and for one that did not complete a second saying why and where the money is. */
export function resultLines(v: TransferResult | TransferView): string {
  const why = outcomeLine(v.status === (v as TransferView).result?.status ? { ...v, ...(v as TransferView).result } : v);
  return [transferLine(transferJson(v)), ...(why ? [`  ${why}`] : [])].join('\n');
}

/** Exit 1 when a transfer ended without completing: scripts can branch on it. */
function exitFor(status: string): void {
  if (status !== 'COMPLETED' && (TERMINAL_STATUSES as readonly string[]).includes(status)) process.exitCode = EXIT.NOT_COMPLETED;
}

type TransferApi = typeof import('../../client.js');

/** A Temporal client for one command; the SDK and our client module load only here (after validation). */
export async function withClient<T>(fn: (c: Awaited<ReturnType<typeof openClient>> & { api: TransferApi }) => Promise<T>): Promise<T> {
  const api = await import('../../client.js');
  const c = await openClient();
  try {
    return await fn({ ...c, api });
  } finally {
    await c.close();
  }
}

const LISTED_STATUSES: readonly TransferStatus[] = [...OPEN_STATUSES, ...TERMINAL_STATUSES];

/** The ledger's records of one transfer, for runs that closed without a result (see describeTransfer). */
export async function readLedger(id: string) {
  const ledger = await openLedger();
  try {
    return await ledger.transferRecords(id);
  } finally {
    await ledger.close();
  }
}

export function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; message?: string };
  return e?.name === 'WorkflowNotFoundError' || /not found/i.test(e?.message ?? '');
}

const API_STATUS_TIMEOUT_MS = 20_000; // the server's own status query is bounded at 10 s

/**
 * The transfer as `describeTransfer` sees it, from the stack's API (`?detail=full` carries the
 * result, state and ledger picture `status` prints). Undefined when the API cannot say: the caller
 * asks Temporal itself. A 404 for the transfer is the same "not found" as from Temporal.
 */
async function viewFromApi(api: { url: string; headers: Record<string, string> }, id: string): Promise<TransferView | undefined> {
  let response: Response;
  try {
    response = await fetch(`${api.url}/v1/transfers/${encodeURIComponent(id)}?detail=full`, { headers: api.headers, signal: AbortSignal.timeout(API_STATUS_TIMEOUT_MS) });
  } catch {
    return undefined;
  }
  const body = (await response.json().catch(() => undefined)) as (Record<string, unknown> & { code?: string; detail?: string }) | undefined;
  if (response.status === 404 && body?.code === 'NOT_FOUND' && body.detail === `transfer ${id} not found`) throw new CliError(`transfer ${id} not found`, EXIT.USAGE, 'NOT_FOUND');
  if (response.status !== 200 || !body || body['id'] !== id) return undefined;
  const { step: _step, sides: _sides, ...view } = body;
  return view as unknown as TransferView;
}

/** Status from the run's search attribute (no worker needed, unlike a query). */
async function currentStatus(client: Client, id: string): Promise<string> {
  const { TransferStatusKey } = await import('../../domain/search-attributes.js');
  const d = await client.workflow.getHandle(id).describe();
  return d.typedSearchAttributes.get(TransferStatusKey) ?? (d.status.name === 'RUNNING' ? 'RUNNING' : d.status.name);
}

/** Signals and updates only make sense for a running transfer: unknown id → exit 2, ended → exit 1. */
async function mustBeRunning(client: Client, id: string, verb: string): Promise<void> {
  const { TransferStatusKey } = await import('../../domain/search-attributes.js');
  const d = await client.workflow.getHandle(id).describe().catch((error: unknown) => {
    if (isNotFound(error)) throw new CliError(`transfer ${id} not found`, EXIT.USAGE, 'NOT_FOUND');
    throw error;
  });
  if (d.status.name !== 'RUNNING') {
    const status = d.typedSearchAttributes.get(TransferStatusKey) ?? d.status.name;
    throw new CliError(`cannot ${verb} ${id}: the transfer already ended ${status}`, EXIT.NOT_COMPLETED, `${verb.toUpperCase()}_REJECTED`);
  }
}

/** What to run next for a transfer waiting for approval: the two commands, ready to paste. */
export function approvalCommands(id: string) {
  return { approve: `npx transfer approve ${id} --by <name>`, cancel: `npx transfer cancel ${id} --reason "<why>"` };
}

export function approvalHint(id: string): string {
  const next = approvalCommands(id);
  return `awaiting approval: approve with \`${next.approve}\` (not the requester; TRANSFER_APPROVERS if set), or cancel with \`${next.cancel}\``;
}

const GATE_WAIT_MS = 3_000;

export function registerTransferCommands(program: Command, globals: () => GlobalOptions): void {
  program
    .command('send')
    .description('start a transfer (decimal amount converted exactly with the currency exponent)')
    .requiredOption('--from <account>', 'account to debit')
    .requiredOption('--to <account>', 'account to credit')
    .requiredOption('--amount <decimal>', 'amount, e.g. 12.34 (12.345 USD is an error, never a rounding)')
    .requiredOption('--currency <code>', 'ISO 4217 currency')
    .option('--id <transferId>', 'transfer id (default: a new one); starting the same id again never pays twice')
    .option('--memo <text>', 'free text stored with the transfer')
    .option('--requested-by <name>', 'who asks for it (default: $USER); that person can never approve it')
    .option('--wait', 'wait for the outcome')
    .action(async (opts: { from: string; to: string; amount: string; currency: string; id?: string; memo?: string; requestedBy?: string; wait?: boolean }) => {
      // Everything is checked before connecting: bad input exits 2 and starts nothing.
      opts.currency = checkCurrency(opts.currency);
      const amount = parseDecimal(opts.amount, opts.currency).toString();
      const transferId = opts.id ?? `tr-${randomUUID()}`;
      // Four eyes: the requester is recorded so an approval by the same person is refused.
      const requestedBy = checkPerson(opts.requestedBy ?? (process.env.USER && PERSON.test(process.env.USER) ? process.env.USER : undefined), '--requested-by');
      const request = { transferId, from: opts.from, to: opts.to, amount, currency: opts.currency, ...(opts.memo !== undefined ? { memo: opts.memo } : {}), ...(requestedBy ? { requestedBy } : {}) };
      validateTransfer(request, transferId);
      await withClient(async ({ client, config, api }) => {
        const started = await api.startTransfer(client, config.taskQueue, request);
        if (!opts.wait) {
          // A new transfer is RUNNING; an existing id answers with that transfer as stored and where it
          // is now (its outcome decides the exit code), never with this command's arguments.
          // A new transfer that waits for approval says so (with the commands to run), not RUNNING.
          const gate = started.started ? await api.gateState(client, started.id, GATE_WAIT_MS) : undefined;
          const status = started.started ? (gate?.status === 'AWAITING_APPROVAL' ? 'AWAITING_APPROVAL' : 'RUNNING') : await currentStatus(client, started.id);
          const stored = started.request;
          const awaiting = status === 'AWAITING_APPROVAL';
          const json = { id: started.id, status, ...stored, started: started.started, ...(awaiting ? { next: approvalCommands(started.id) } : {}) };
          emit(globals(), json, () => [
            `${started.started ? 'started' : 'already exists'}: ${started.id}  ${status}  ${stored.from} → ${stored.to}  ${money(stored.amount, stored.currency)}`,
            ...(awaiting ? [`  ${approvalHint(started.id)}`] : []),
          ].join('\n'));
          exitFor(status);
          return;
        }
        // While it waits: a transfer held at the approval gate says so on stderr (stdout stays the one answer).
        let settled = false;
        const outcome = api.transferResult(started.handle).finally(() => (settled = true));
        const notice = (async () => {
          const status = started.started ? (await api.gateState(client, started.id, GATE_WAIT_MS))?.status : await currentStatus(client, started.id);
          if (!settled && status === 'AWAITING_APPROVAL') process.stderr.write(`${started.id}: ${approvalHint(started.id)}; waiting…\n`);
        })().catch(() => undefined);
        const result = await outcome;
        await notice; // bounded; never leave a call in flight on a connection about to close
        const json = transferJson(result);
        emit(globals(), { ...json, started: started.started }, () => resultLines(result));
        exitFor(result.status);
      });
    });

  program
    .command('status <id>')
    .description('current state of a transfer (status, step, holds, last error)')
    .action(async (id: string) => {
      checkTransferId(id);
      const say = (line: string) => globals().verbose && process.stderr.write(`${line}\n`);
      // The stack's HTTP API answers without this process loading the Temporal SDK (~250 ms); any
      // answer but the transfer or "not found" (no API, a 401, Temporal down behind it) asks Temporal.
      const api = await stackApi();
      const fromApi = api ? await viewFromApi(api, id).catch((error: unknown) => {
        say(`status: answered by the HTTP API at ${api.url}`); // "not found"
        throw error;
      }) : undefined;
      if (api) say(fromApi ? `status: answered by the HTTP API at ${api.url}` : `status: the HTTP API at ${api.url} did not answer; asking Temporal`);
      const view = fromApi ?? await withClient(async ({ client, config, api: transfers }) => {
        say(`status: asking Temporal at ${config.address}`);
        return transfers.describeTransfer(client, id, readLedger).catch((error: Error) => {
          if (isNotFound(error)) throw new CliError(`transfer ${id} not found`, EXIT.USAGE, 'NOT_FOUND');
          throw error;
        });
      });
      const json = {
        ...transferJson(view),
        ...(view.runStatus ? { runStatus: view.runStatus } : {}),
        ...(view.state ? { step: view.state.step, holds: view.state.holds, attempts: view.state.attempts, ...(view.state.attention ? { attention: view.state.attention } : {}) } : {}),
        ...(view.result ? { holds: view.result.holds, steps: view.result.steps, ...(view.result.sides ? { sides: view.result.sides } : {}), ...(view.result.resolution ? { resolution: view.result.resolution } : {}) } : {}),
        ...(view.ledger ? { ledger: view.ledger } : {}),
        ...(view.status === 'AWAITING_APPROVAL' ? { next: approvalCommands(id) } : {}),
      };
      emit(globals(), json, () => [
        view.result ? resultLines(view) : transferLine(transferJson(view)),
        ...(view.state ? [`  step: ${view.state.step}`] : []),
        ...(view.message && !view.result ? [`  ${view.message}`] : []),
        ...(view.status === 'AWAITING_APPROVAL' ? [`  ${approvalHint(id)}`] : []),
        ...(view.state?.attention ? [`  needs attention: run \`transfer repair ${id} --retry\` or \`--resolve "<note>"\``] : []),
      ].join('\n'));
      exitFor(view.status);
    });

  program
    .command('cancel <id>')
    .description('cancel a transfer that has not started posting; holds are released')
    .option('--reason <text>', 'why')
    .action(async (id: string, opts: { reason?: string }) => {
      checkTransferId(id);
      validateCancelRequest({ ...(opts.reason !== undefined ? { reason: opts.reason } : {}) });
      await withClient(async ({ client, api }) => {
        await mustBeRunning(client, id, 'cancel');
        const result = await api.cancelTransfer(client, id, opts.reason).catch(async (error: Error) => {
          await mustBeRunning(client, id, 'cancel'); // it may have ended meanwhile: say so plainly
          throw new CliError(`cannot cancel ${id}: ${error.cause instanceof Error ? error.cause.message : error.message}`, EXIT.NOT_COMPLETED, 'CANCEL_REJECTED');
        });
        const json = transferJson(result);
        emit(globals(), json, () => resultLines(result));
        if (result.status !== 'CANCELLED') process.exitCode = EXIT.NOT_COMPLETED; // the cancel did not take
      });
    });

  program
    .command('approve <id>')
    .description('approve a transfer waiting for approval; exit 1 when refused (not an approver, the requester, not waiting)')
    .option('--by <name>', 'who approves (default: $USER)')
    .action(async (id: string, opts: { by?: string }) => {
      checkTransferId(id);
      const by = checkPerson(opts.by ?? process.env.USER, '--by');
      await withClient(async ({ client, api }) => {
        await mustBeRunning(client, id, 'approve');
        const answer = await api.approveTransfer(client, id, by).catch((error: Error) => {
          throw new CliError(`approval of ${id} refused: ${error.cause instanceof Error ? error.cause.message : error.message}`, EXIT.NOT_COMPLETED, 'APPROVAL_REFUSED');
        });
        emit(globals(), { id, approved: answer.approved, ...(answer.by ? { by: answer.by } : {}) }, () => `approved ${id}${answer.by ? ` by ${answer.by}` : ''}`);
      });
    });

  program
    .command('list')
    .description('transfers from Temporal visibility, filtered by search attributes')
    .option('--status <status>', LISTED_STATUSES.join(', '))
    .option('--account <id>', 'transfers from or to this account')
    .option('--limit <n>', 'at most this many', '50')
    .action(async (opts: { status?: string; account?: string; limit: string }) => {
      if (opts.status !== undefined && !(LISTED_STATUSES as readonly string[]).includes(opts.status)) {
        throw new CliError(`--status must be one of ${LISTED_STATUSES.join(', ')} (got ${JSON.stringify(opts.status)})`, EXIT.USAGE, 'INVALID_INPUT');
      }
      if (opts.account !== undefined) checkAccountId(opts.account);
      const limit = checkPositiveInteger(opts.limit, '--limit', 1000);
      await withClient(async ({ client, api }) => {
        const items = await api.listTransfers(client, { ...(opts.status ? { status: opts.status } : {}), ...(opts.account ? { account: opts.account } : {}), limit });
        emit(globals(), { items: items.map(transferJson) }, () => (items.length ? items.map((i) => transferLine(transferJson(i))).join('\n') : 'no transfers'));
      });
    });

  program
    .command('verify')
    .description('check the ledger invariants on every shard; exit 1 on any violation')
    .option('--transit-grace <seconds>', 'money in clearing with nothing pending is stuck after this long', '3600')
    .action(async (opts: { transitGrace: string }) => {
      if (!/^[0-9]{1,9}$/.test(opts.transitGrace)) throw new CliError(`--transit-grace must be a whole number of seconds (got ${JSON.stringify(opts.transitGrace)})`, EXIT.USAGE, 'INVALID_INPUT');
      const transitGraceMs = Number(opts.transitGrace) * 1000;
      const ledger = await openLedger();
      try {
        const report = await ledger.verify({ transitGraceMs });
        emit(globals(), report, () =>
          [
            report.ok ? 'ledger ok' : `${report.violations.length} violation(s):`,
            ...report.violations.map((v) => `  ${v.check}${v.shard !== undefined ? ` shard ${v.shard}` : ''}${v.account ? ` account ${v.account}` : ''}${v.transfer ? ` transfer ${v.transfer}` : ''}: ${v.message}`),
            ...report.shards.map((s) => `  shard ${s.shard}: ${s.accounts} accounts, ${s.holds} holds (${s.pendingHolds} pending), ${s.postings} postings`),
            ...report.totals.map((t) => `  ${t.currency}: customers ${money(t.customers, t.currency)}, in transit ${money(t.clearing, t.currency)}, suspense ${money(t.suspense, t.currency)}, entered ${money(t.entered, t.currency)}, left ${money(t.left, t.currency)}`),
            ...(report.attention.inTransit.transfers ? [`  ${report.attention.inTransit.transfers} transfer(s) in transit (oldest ${Math.round(report.attention.inTransit.oldestMs / 1000)} s)`] : []),
            ...report.attention.suspense.map((x) => `  attention: ${money(x.amount, x.currency)} in suspense on shard ${x.shard} (refunds to closed accounts): see \`transfer suspense list\``),
          ].join('\n'),
        );
        if (!report.ok) process.exitCode = EXIT.NOT_COMPLETED;
      } finally {
        await ledger.close();
      }
    });
}
