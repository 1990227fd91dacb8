import { Refusal } from './codes.js';
import { RefusalError } from './errors.js';
import { shown } from './input.js';

/**
 * Money is integer minor units (bigint) plus an ISO 4217 currency. Floating point never touches an
 * amount: decimal text is converted digit by digit using the currency's minor-unit exponent.
 * This module is pure so the workflow sandbox can import it.
 */

/** ISO 4217 minor-unit exponents for the currencies this ledger accepts. */
export const CURRENCY_EXPONENTS: Readonly<Record<string, number>> = Object.freeze({
  USD: 2, EUR: 2, GBP: 2, CHF: 2, CAD: 2, AUD: 2, NZD: 2, SEK: 2, NOK: 2, DKK: 2, PLN: 2, CZK: 2,
  CNY: 2, HKD: 2, SGD: 2, INR: 2, BRL: 2, MXN: 2, ZAR: 2, TRY: 2,
  JPY: 0, KRW: 0, ISK: 0, CLP: 0, VND: 0,
  KWD: 3, BHD: 3, OMR: 3, JOD: 3, TND: 3,
});

/** Amounts must fit PostgreSQL bigint (signed 64-bit). */
export const MAX_AMOUNT = 2n ** 63n - 1n;

export function currencyExponent(currency: string): number {
  const exponent = CURRENCY_EXPONENTS[currency];
  if (exponent === undefined) {
    throw new RefusalError(Refusal.UNKNOWN_CURRENCY, `unknown currency ${shown(currency)}`, { currency });
  }
  return exponent;
}

export function assertCurrency(currency: unknown): asserts currency is string {
  if (typeof currency !== 'string') {
    throw new RefusalError(Refusal.UNKNOWN_CURRENCY, `currency must be an ISO 4217 code such as "USD" (got ${shown(currency)})`);
  }
  currencyExponent(currency);
}

/**
 * Minor units from the wire: a digit string or a safe integer. A float, a negative number, zero or a
 * value beyond 64 bits is refused: money is never rounded to make input fit.
 */
export function parseMinorUnits(value: unknown, field = 'amount'): bigint {
  let amount: bigint;
  if (typeof value === 'bigint') {
    amount = value;
  } else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw invalid(`${field} must be an integer number of minor units (got ${value})`);
    }
    amount = BigInt(value);
  } else if (typeof value === 'string' && /^-?[0-9]+$/.test(value)) {
    if (value.length > 20) throw invalid(`${field} is out of range`);
    amount = BigInt(value);
  } else {
    throw invalid(`${field} must be a digit string or a safe integer of minor units (got ${shown(value)})`);
  }
  if (amount <= 0n) throw invalid(`${field} must be positive (got ${amount})`);
  if (amount > MAX_AMOUNT) throw invalid(`${field} is out of range (max ${MAX_AMOUNT})`);
  return amount;
}

/**
 * Exact decimal → minor units: "12.34" USD is 1234n; "12.345" USD is an error, never a rounding.
 */
export function parseDecimal(text: string, currency: string, field = 'amount'): bigint {
  const exponent = currencyExponent(currency);
  const match = /^([0-9]+)(?:\.([0-9]+))?$/.exec(text.trim());
  if (!match) throw invalid(`${field} ${shown(text)} is not a plain positive decimal number`);
  const whole = match[1] ?? '0';
  const fraction = match[2] ?? '';
  if (fraction.length > exponent) {
    throw invalid(`${field} ${shown(text)} has more decimals than ${currency} allows (${exponent})`);
  }
  const minor = BigInt(whole + fraction.padEnd(exponent, '0'));
  return parseMinorUnits(minor, field);
}

/** Minor units → "12.34" (no currency). Handles negative values for ledger balances. */
export function formatDecimal(amount: bigint, currency: string): string {
  const exponent = currencyExponent(currency);
  const negative = amount < 0n;
  const digits = (negative ? -amount : amount).toString().padStart(exponent + 1, '0');
  const whole = exponent === 0 ? digits : digits.slice(0, -exponent);
  const fraction = exponent === 0 ? '' : `.${digits.slice(-exponent)}`;
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

/**
 * "1,234.56 USD" — the form used in summaries and human output: the whole part grouped by thousands
 * with commas (whatever the locale, so text reads the same everywhere and in tests). For people only:
 * JSON, API fields, stored data and anything parsed back use digit strings of minor units (or
 * {@link formatDecimal}, which never groups).
 */
export function formatMoney(amount: bigint, currency: string): string {
  return `${groupThousands(formatDecimal(amount, currency))} ${currency}`;
}

/** "-1234567.89" → "-1,234,567.89": commas every three digits of the whole part; sign and fraction kept. */
export function groupThousands(decimal: string): string {
  const match = /^(-?)([0-9]+)(\.[0-9]+)?$/.exec(decimal);
  if (!match) return decimal;
  const [, sign = '', whole = '', fraction = ''] = match;
  return `${sign}${whole.replace(/\B(?=(?:[0-9]{3})+$)/g, ',')}${fraction}`;
}

function invalid(message: string): RefusalError {
  return new RefusalError(Refusal.INVALID_AMOUNT, message);
}
