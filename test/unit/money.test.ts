import { describe, expect, it } from 'vitest';
import { Refusal } from '../../src/domain/codes.js';
import { refusalCode as refusal } from '../support/refusals.js';
import { formatDecimal, formatMoney, MAX_AMOUNT, parseDecimal, parseMinorUnits } from '../../src/domain/money.js';

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

  it('round-trips every formatted amount', () => {
    for (const amount of [1n, 9n, 10n, 99n, 100n, 101n, 123456789n, MAX_AMOUNT]) {
      for (const currency of ['USD', 'JPY', 'KWD']) {
        expect(parseDecimal(formatDecimal(amount, currency), currency)).toBe(amount);
      }
    }
  });
});
