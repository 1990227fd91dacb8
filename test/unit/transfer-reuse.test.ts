import { describe, expect, it } from 'vitest';
import { differingFields, storedParameters, TransferIdReusedError } from '../../src/domain/transfer-reuse.js';

const requested = { from: 'alice', to: 'bob', amount: '2500', currency: 'USD', memo: 'rent' };

describe('comparing a stored transfer request with a new one', () => {
  it('reads what any start stored in one canonical form', () => {
    expect(storedParameters({ transferId: 't', from: 'alice', to: 'bob', amount: 2500, currency: 'USD', memo: 'rent' })).toEqual(requested);
    expect(storedParameters({ from: 'alice', to: 'bob', amount: '2500', currency: 'USD', memo: '' })).toEqual({ from: 'alice', to: 'bob', amount: '2500', currency: 'USD' });
    // Input the workflow refused is kept as given, so no valid request can match it.
    expect(storedParameters({ from: 5, amount: '12.5' })).toEqual({ from: '5', to: '', amount: '12.5', currency: '' });
    expect(storedParameters(undefined)).toEqual({ from: '', to: '', amount: '', currency: '' });
  });

  it('names each differing field, in a fixed order', () => {
    expect(differingFields(requested, { ...requested })).toEqual([]);
    expect(differingFields(requested, { ...requested, amount: '2600' })).toEqual(['amount']);
    expect(differingFields(requested, { from: 'bob', to: 'alice', amount: '2500', currency: 'EUR' })).toEqual(['from', 'to', 'currency', 'memo']);
  });

  it('says what differs in one line, with values cut short', () => {
    const error = new TransferIdReusedError('t-1', ['amount', 'memo'], requested, { ...requested, amount: '2600', memo: `x${'y'.repeat(100)}\n` });
    expect(error.message).toMatch(/^transfer id t-1 already exists with other parameters: amount, memo differ \(stored amount "2500", memo "rent"; requested amount "2600", memo "xy+…"\); nothing was started$/);
    expect(error).toMatchObject({ code: 'TRANSFER_ID_REUSED', fields: ['amount', 'memo'] });
  });
});
