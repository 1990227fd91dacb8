import { describe, expect, it } from 'vitest';
import { Refusal } from '../../src/domain/codes.js';
import { RefusalError } from '../../src/domain/errors.js';
import { refusalCode as refusal } from '../support/refusals.js';
import { validateTransfer } from '../../src/domain/transfer.js';
import { policyFromEnv } from '../../src/config.js';

const valid = { transferId: 'tr-1', from: 'alice', to: 'bob', amount: '1250', currency: 'USD' };

describe('validateTransfer (workflow-level rules)', () => {
  it('accepts a valid transfer and parses the amount to bigint minor units', () => {
    expect(validateTransfer(valid)).toEqual({ transferId: 'tr-1', from: 'alice', to: 'bob', amount: 1250n, currency: 'USD' });
    expect(validateTransfer({ ...valid, transferId: undefined }, 'wf-7').transferId).toBe('wf-7');
  });

  it('refuses a transfer from an account to itself with SAME_ACCOUNT', () => {
    expect(refusal(() => validateTransfer({ ...valid, to: 'alice' }))).toBe(Refusal.SAME_ACCOUNT);
    const error = (() => {
      try {
        validateTransfer({ ...valid, from: 'bob' });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(RefusalError);
    expect(error).toMatchObject({ code: 'SAME_ACCOUNT', message: expect.stringContaining('bob') });
  });

  it('treats ids differing only in case as different accounts (ids are case-sensitive)', () => {
    expect(validateTransfer({ ...valid, to: 'Alice' }).to).toBe('Alice');
  });

  it('checks account ids before SAME_ACCOUNT, and amount and currency after it', () => {
    expect(refusal(() => validateTransfer({ ...valid, from: 'sys:x', to: 'sys:x' }))).toBe(Refusal.INVALID_ACCOUNT_ID);
    expect(refusal(() => validateTransfer({ ...valid, to: 'alice', amount: '0' }))).toBe(Refusal.SAME_ACCOUNT);
    expect(refusal(() => validateTransfer({ ...valid, amount: '12.5' }))).toBe(Refusal.INVALID_AMOUNT);
    expect(refusal(() => validateTransfer({ ...valid, currency: 'XXX' }))).toBe(Refusal.UNKNOWN_CURRENCY);
  });

  it('refuses malformed input with INVALID_INPUT', () => {
    expect(refusal(() => validateTransfer(null))).toBe(Refusal.INVALID_INPUT);
    expect(refusal(() => validateTransfer([valid]))).toBe(Refusal.INVALID_INPUT);
    expect(refusal(() => validateTransfer({ ...valid, transferId: 'has space' }))).toBe(Refusal.INVALID_INPUT);
    expect(refusal(() => validateTransfer(valid, 'another-workflow-id'))).toBe(Refusal.INVALID_INPUT);
    expect(refusal(() => validateTransfer({ ...valid, memo: 'm'.repeat(501) }))).toBe(Refusal.INVALID_INPUT);
  });

  it('takes an optional requestedBy name and refuses anything else in it', () => {
    expect(validateTransfer({ ...valid, requestedBy: 'alice' }).requestedBy).toBe('alice');
    expect(refusal(() => validateTransfer({ ...valid, requestedBy: '' }))).toBe(Refusal.INVALID_INPUT);
    expect(refusal(() => validateTransfer({ ...valid, requestedBy: 7 }))).toBe(Refusal.INVALID_INPUT);
    expect(refusal(() => validateTransfer({ ...valid, requestedBy: 'a\nb' }))).toBe(Refusal.INVALID_INPUT);
    expect(refusal(() => validateTransfer({ ...valid, requestedBy: 'x'.repeat(101) }))).toBe(Refusal.INVALID_INPUT);
  });

  it('reads TRANSFER_APPROVERS into the policy (absent when unset)', () => {
    expect(policyFromEnv({ TRANSFER_APPROVERS: ' alice, bob ,' })('USD').approvers).toEqual(['alice', 'bob']);
    expect(policyFromEnv({})('USD')).not.toHaveProperty('approvers');
  });
});
