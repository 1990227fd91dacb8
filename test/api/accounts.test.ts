import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { ApiError, createTransferApi, getAccount } from '../../src/api/client.js';
import { accountOnShard } from '../support/ledger.js';
import { expectLedgerClean } from '../support/transfers.js';
import { expectProblem, expectSchema, http, useApiServer } from './support.js';

const h = useApiServer();
const tag = `apiacc-${randomBytes(3).toString('hex')}`;
let api: ReturnType<typeof createTransferApi>;
let a0: string;
let a1: string;

beforeAll(() => {
  api = createTransferApi({ baseUrl: h.baseUrl, apiKey: h.apiKey });
  a0 = accountOnShard(h.t.ledger, 0, `${tag}-x`);
  a1 = accountOnShard(h.t.ledger, 1, `${tag}-y`);
});

describe('HTTP API: accounts', () => {
  it('open is idempotent by id: 201, then 200 with the same account; other parameters are 409', async () => {
    const first = await http(h, 'POST', '/v1/accounts', { body: { id: a0, currency: 'USD', overdraftLimit: '500' } });
    expect(first.status).toBe(201);
    expect(first.headers.get('location')).toBe(`/v1/accounts/${a0}`);
    expect(first.body).toEqual({ id: a0, currency: 'USD', status: 'active', shard: 0, posted: '0', pendingDebits: '0', pendingCredits: '0', overdraftLimit: '500', available: '500' });
    expectSchema('Account', first.body);
    const again = await http(h, 'POST', '/v1/accounts', { body: { id: a0, currency: 'USD', overdraftLimit: '500' } });
    expect({ status: again.status, body: again.body }).toEqual({ status: 200, body: first.body });
    expectProblem(await http(h, 'POST', '/v1/accounts', { body: { id: a0, currency: 'USD' } }), 409, 'ACCOUNT_EXISTS');
    await api.openAccount({ id: a1, currency: 'USD' });
    expect(await getAccount({ baseUrl: h.baseUrl, apiKey: h.apiKey }, a1)).toMatchObject({ id: a1, shard: 1, posted: '0' });
    expectProblem(await http(h, 'GET', `/v1/accounts/${tag}-nobody`), 404, 'ACCOUNT_NOT_FOUND');
  });

  it('deposits and withdrawals: the same key and body replay the same answer; paid once', async () => {
    const key = `${tag}-dep-1`;
    const first = await api.deposit(a0, { amount: '10000', currency: 'USD' }, { idempotencyKey: key });
    expect(first.replayed).toBe(false);
    expect(first.value).toMatchObject({ key, kind: 'deposit', account: a0, amount: '10000', currency: 'USD', entryId: key });
    expectSchema('Movement', first.value);
    const again = await api.deposit(a0, { amount: '10000', currency: 'USD' }, { idempotencyKey: key });
    expect(again).toEqual({ value: first.value, replayed: true });
    const out = await api.withdraw(a0, { amount: '2500', currency: 'USD' }, { idempotencyKey: `${tag}-wd-1` });
    expect(out.value).toMatchObject({ kind: 'withdrawal', amount: '2500' });
    expect(await api.getAccount(a0)).toMatchObject({ posted: '7500', available: '8000' });
    // A refusal is sticky under its key too: the same request again is the same 422.
    for (let i = 0; i < 2; i++) expectProblem(await http(h, 'POST', `/v1/accounts/${a0}/withdrawals`, { body: { amount: '9000', currency: 'USD' }, headers: { 'idempotency-key': `${tag}-wd-big` } }), 422, 'INSUFFICIENT_FUNDS');
    await expectLedgerClean(h.t.ledger);
  });

  it('a key reused with another body is 422 IDEMPOTENCY_KEY_REUSED naming what differs, on the same shard or another', async () => {
    const key = `${tag}-dep-2`;
    await api.deposit(a0, { amount: '300', currency: 'USD' }, { idempotencyKey: key });
    const before = await api.getAccount(a0);
    const cases: [string, string, unknown, string[]][] = [
      [`/v1/accounts/${a0}/deposits`, 'amount', { amount: '301', currency: 'USD' }, ['amount']],
      [`/v1/accounts/${a0}/withdrawals`, 'kind', { amount: '300', currency: 'USD' }, ['kind']],
      [`/v1/accounts/${a1}/deposits`, 'account (other shard)', { amount: '300', currency: 'USD' }, ['account']],
      [`/v1/accounts/${a1}/deposits`, 'account and amount', { amount: '7', currency: 'USD' }, ['account', 'amount']],
    ];
    for (const [path, label, body, fields] of cases) {
      const r = await http(h, 'POST', path, { body, headers: { 'idempotency-key': key } });
      expectProblem(r, 422, 'IDEMPOTENCY_KEY_REUSED');
      expect(r.body.fields, label).toEqual(fields);
    }
    const error = await api.deposit(a0, { amount: '1', currency: 'USD' }, { idempotencyKey: key }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).fields).toEqual(['amount']);
    expect(await api.getAccount(a0)).toEqual(before);
    expect((await api.getAccount(a1)).posted).toBe('0');
  });
});
