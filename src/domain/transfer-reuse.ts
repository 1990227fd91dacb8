import { parseMinorUnits } from './money.js';
import type { ValidTransfer } from './transfer.js';

/**
 * A transfer id names exactly one transfer. Starting an id again is safe only with the same
 * parameters (then it is the same transfer); with any other from/to/amount/currency/memo it is a
 * different request under a taken name, and answering it with the first transfer would report
 * something as done that was never asked for.
 */
export const TRANSFER_PARAMETERS = ['from', 'to', 'amount', 'currency', 'memo'] as const;
export type TransferParameter = (typeof TRANSFER_PARAMETERS)[number];

/** What a transfer was asked to do, in one canonical form (amount as a digit string of minor units). */
export interface TransferParameters {
  from: string;
  to: string;
  amount: string;
  currency: string;
  memo?: string;
}

export function parametersOf(t: ValidTransfer): TransferParameters {
  return { from: t.from, to: t.to, amount: t.amount.toString(), currency: t.currency, ...(t.memo ? { memo: t.memo } : {}) };
}

/**
 * The parameters a run was started with, from its raw input: whatever a start stored (our client,
 * `temporal workflow start --input`, possibly invalid) in the same canonical form, so `2500` and
 * `"2500"` compare equal and an empty memo equals none.
 */
export function storedParameters(input: unknown): TransferParameters {
  const req = (typeof input === 'object' && input !== null && !Array.isArray(input) ? input : {}) as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v));
  let amount = text(req['amount']);
  try {
    amount = parseMinorUnits(req['amount']).toString();
  } catch {
    // An amount the workflow refused: kept as given, so no valid request can match it.
  }
  const memo = req['memo'];
  return { from: text(req['from']), to: text(req['to']), amount, currency: text(req['currency']), ...(memo !== undefined && memo !== '' ? { memo: text(memo) } : {}) };
}

export function differingFields(stored: TransferParameters, requested: TransferParameters): TransferParameter[] {
  return TRANSFER_PARAMETERS.filter((field) => (stored[field] ?? '') !== (requested[field] ?? ''));
}

const shown = (value: string | undefined) => (value === undefined ? 'none' : JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value));

/** A start under a transfer id that already names a transfer with other parameters: nothing was started. */
export class TransferIdReusedError extends Error {
  override readonly name = 'TransferIdReusedError';
  readonly code = 'TRANSFER_ID_REUSED';
  constructor(
    readonly transferId: string,
    readonly fields: readonly TransferParameter[],
    readonly stored: TransferParameters,
    readonly requested: TransferParameters,
  ) {
    const list = (side: TransferParameters) => fields.map((f) => `${f} ${shown(side[f])}`).join(', ');
    super(
      `transfer id ${transferId} already exists with other parameters: ${fields.join(', ')} ${fields.length === 1 ? 'differs' : 'differ'} (stored ${list(stored)}; requested ${list(requested)}); nothing was started`,
    );
  }
}
