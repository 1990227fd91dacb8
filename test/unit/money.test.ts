import { describe, expect, it } from 'vitest';
import { Refusal } from '../../src/domain/codes.js';
import { refusalCode as refusal } from '../support/refusals.js';
import { formatDecimal, formatMoney, groupThousands, MAX_AMOUNT, parseDecimal, parseMinorUnits } from '../../src/domain/money.js';
import { inCurrencyUnits, outcomeLine } from '../../src/cli/outcome.js';
import { money } from '../../src/cli/output.js';

describe('money', () => {
  it('converts decimal text exactly with the currency exponent', () => {
    expect(parseDecimal('12.34', 'USD')).toBe(1234n);
    expect(parseDecimal('12.3', 'USD')).toBe(1230n);
    expect(parseDecimal('12', 'USD')).toBe(1200n);
    expect(parseDecimal('1500', 'JPY')).toBe(1500n);
    expect(parseDecimal('1.234', 'KWD')).toBe(1234n);
    expect(parseDecimal('0.01', 'USD')).toBe(1n);
    expect(parseDecimal('92233720368547758.07', 'USD')).toBe(MAX_AMOUNT);
  });

  it('refuses more decimals than the currency has instead of rounding', () => {
    expect(refusal(() => parseDecimal('12.345', 'USD'))).toBe(Refusal.INVALID_AMOUNT);
    expect(refusal(() => parseDecimal('1.5', 'JPY'))).toBe(Refusal.INVALID_AMOUNT);
  });

  it('refuses zero, negative, non-numeric and out-of-range amounts', () => {
    for (const bad of ['0', '0.00', '-1', '1e3', '', ' ', '1,000', 'abc', '92233720368547758.08', '.5']) {
      expect(refusal(() => parseDecimal(bad, 'USD')), bad).toBe(Refusal.INVALID_AMOUNT);
    }
  });

  it('accepts digit strings and safe integers of minor units, never floats', () => {
    expect(parseMinorUnits('1234')).toBe(1234n);
    expect(parseMinorUnits(1234)).toBe(1234n);
    expect(parseMinorUnits('9223372036854775807')).toBe(MAX_AMOUNT);
    for (const bad of [12.5, 0, -5, '9223372036854775808', Number.MAX_SAFE_INTEGER + 2, '12.5', null, undefined, {}, '0x10']) {
      expect(refusal(() => parseMinorUnits(bad)), String(bad)).toBe(Refusal.INVALID_AMOUNT);
    }
  });

  it('refuses unknown currencies', () => {
    expect(refusal(() => parseDecimal('1', 'XXX'))).toBe(Refusal.UNKNOWN_CURRENCY);
    expect(refusal(() => parseDecimal('1', 'usd'))).toBe(Refusal.UNKNOWN_CURRENCY);
  });

  it('formats minor units back to decimals, including negatives and zero-exponent currencies', () => {
    expect(formatDecimal(1234n, 'USD')).toBe('12.34');
    expect(formatDecimal(5n, 'USD')).toBe('0.05');
    expect(formatDecimal(-1250n, 'USD')).toBe('-12.50');
    expect(formatDecimal(1500n, 'JPY')).toBe('1500');
    expect(formatMoney(1234n, 'KWD')).toBe('1.234 KWD');
  });

  it('groups thousands in human text (0, 2 and 3 decimals, negatives, beyond 2^53)', () => {
    expect(formatMoney(100000n, 'USD')).toBe('1,000.00 USD');
    expect(formatMoney(99999n, 'USD')).toBe('999.99 USD');
    expect(formatMoney(5n, 'USD')).toBe('0.05 USD');
    expect(formatMoney(123456789n, 'USD')).toBe('1,234,567.89 USD');
    expect(formatMoney(-100000n, 'USD')).toBe('-1,000.00 USD');
    expect(formatMoney(-99999n, 'USD')).toBe('-999.99 USD');
    expect(formatMoney(999n, 'JPY')).toBe('999 JPY');
    expect(formatMoney(1000n, 'JPY')).toBe('1,000 JPY');
    expect(formatMoney(1234567n, 'JPY')).toBe('1,234,567 JPY');
    expect(formatMoney(-1234567n, 'JPY')).toBe('-1,234,567 JPY');
    expect(formatMoney(1234n, 'KWD')).toBe('1.234 KWD');
    expect(formatMoney(1234567890n, 'KWD')).toBe('1,234,567.890 KWD');
    expect(formatMoney(-1234567n, 'KWD')).toBe('-1,234.567 KWD');
    // Beyond 2^53 every digit is kept (bigint all the way, never a float).
    expect(formatMoney(2n ** 53n + 1n, 'USD')).toBe('90,071,992,547,409.93 USD');
    expect(formatMoney(MAX_AMOUNT, 'USD')).toBe('92,233,720,368,547,758.07 USD');
    expect(formatMoney(MAX_AMOUNT, 'JPY')).toBe('9,223,372,036,854,775,807 JPY');
    expect(formatMoney(-MAX_AMOUNT, 'KWD')).toBe('-9,223,372,036,854,775.807 KWD');
    expect(groupThousands('1234')).toBe('1,234');
    expect(groupThousands('123')).toBe('123');
    expect(groupThousands('-123456.7')).toBe('-123,456.7');
    expect(groupThousands('not a number')).toBe('not a number');
  });

  it('keeps machine forms ungrouped: formatDecimal parses back, messages in minor units become grouped units', () => {
    expect(formatDecimal(123456789n, 'USD')).toBe('1234567.89');
    expect(formatDecimal(MAX_AMOUNT, 'JPY')).toBe(MAX_AMOUNT.toString());
    expect(money('100000', 'USD')).toBe('1,000.00 USD');
    expect(money('100000', 'XXX')).toBe('100000 XXX'); // unknown currency: the raw digits
    expect(inCurrencyUnits('account a cannot cover 100000 minor units', 'USD')).toBe('account a cannot cover 1,000.00 USD');
    expect(inCurrencyUnits('account a has insufficient available funds for 1234567 minor units', 'JPY')).toBe('account a has insufficient available funds for 1,234,567 JPY');
    expect(outcomeLine({ status: 'FAILED', reason: 'INSUFFICIENT_FUNDS', message: 'reserve-debit: account alice has insufficient available funds for 100000 minor units', from: 'alice', to: 'bob', amount: '100000', currency: 'USD', sides: { debit: 'none', credit: 'none' } }))
      .toBe('refused: account alice has insufficient available funds for 1,000.00 USD (INSUFFICIENT_FUNDS); nothing was held or moved');
  });

  it('round-trips every formatted amount', () => {
    for (const amount of [1n, 9n, 10n, 99n, 100n, 101n, 123456789n, MAX_AMOUNT]) {
      for (const currency of ['USD', 'JPY', 'KWD']) {
        expect(parseDecimal(formatDecimal(amount, currency), currency)).toBe(amount);
      }
    }
  });
});
