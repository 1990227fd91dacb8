import type { TransferResult } from '../domain/transfer.js';
import { isRefusalCode } from '../domain/codes.js';
import { money } from './output.js';

/**
 * Human words for how a transfer ended: the refusal's reason (not only in --json), amounts in
 * currency units (ledger messages say "N minor units"; stored data is unchanged), a refused
 * recipient said as such, and never a reason that repeats the status ("CANCELLED (CANCELLED)").
 */
export type OutcomeFields = Pick<TransferResult, 'reason' | 'message' | 'from' | 'to' | 'amount' | 'currency' | 'sides'> & { status: string };

/** "account x cannot cover 50000 minor units" → "account x cannot cover 500.00 USD". */
export function inCurrencyUnits(message: string, currency: string): string {
  return message.replace(/(-?[0-9]+) minor units/g, (_, digits: string) => money(digits, currency));
}

/** The reason in parentheses after the status, unless it only repeats the status. */
export function reasonSuffix(status: string, reason?: string): string {
  return reason && reason !== status ? ` (${reason})` : '';
}

const SIDE_OF_CREDIT = /^(reserve|post)-credit: /;

/** One line saying why a transfer did not complete, and what happened to the money; undefined for COMPLETED and open ones. */
export function outcomeLine(v: OutcomeFields): string | undefined {
  if (!['FAILED', 'COMPENSATED', 'CANCELLED'].includes(v.status)) return undefined;
  const amount = v.amount && v.currency ? money(v.amount, v.currency) : 'the amount';
  const why = v.message ? inCurrencyUnits(v.message.replace(/^[a-z-]+: /, ''), v.currency) : undefined;
  const money_ = (() => {
    switch (v.sides?.debit) {
      case 'voided': return `the ${amount} hold on ${v.from} was released`;
      case 'expired': return `the ${amount} hold on ${v.from} expired`;
      case 'refunded': return `the ${amount} debited from ${v.from} was refunded`;
      case 'none': return 'nothing was held or moved';
      default: return undefined;
    }
  })();
  if (v.status === 'CANCELLED') {
    const note = why && why !== 'workflow cancelled' && why !== v.reason ? `: ${why}` : '';
    return `cancelled${v.reason && v.reason !== 'CANCELLED' ? ` (${v.reason})` : ''}${note}${money_ ? `; ${money_}` : ''}`;
  }
  const refused = v.reason !== undefined && isRefusalCode(v.reason);
  const creditSide = v.status === 'COMPENSATED' && (SIDE_OF_CREDIT.test(v.message ?? '') || (v.message ?? '').includes(`account ${v.to} `));
  const who = creditSide ? `refused by the recipient ${v.to}` : refused ? 'refused' : 'failed';
  return `${who}: ${why ?? 'no reason given'}${v.reason ? ` (${v.reason})` : ''}${money_ ? `; ${money_}` : ''}`;
}
