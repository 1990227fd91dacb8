import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { ApiError, createTransferApi } from '../../src/api/client.js';
import { accountOnShard } from '../support/ledger.js';
import { expectLedgerClean } from '../support/transfers.js';
import { eventually, expectProblem, expectSchema, http, useApiServer } from './support.js';

const h = useApiServer();
const tag = `api-${randomBytes(3).toString('hex')}`;
let alice: string;
let bob: string;
let api: ReturnType<typeof createTransferApi>;

beforeAll(async () => {
  api = createTransferApi({ baseUrl: h.baseUrl, apiKey: h.apiKey });
  alice = accountOnShard(h.t.ledger, 0, `${tag}-alice`);
  bob = accountOnShard(h.t.ledger, 1, `${tag}-bob`);
  const opened = await api.openAccount({ id: alice, currency: 'USD' });
  expect(opened.replayed).toBe(false);
  await api.openAccount({ id: bob, currency: 'USD' });
  await api.deposit(alice, { amount: '500000', currency: 'USD' }, { idempotencyKey: `${tag}-seed` });
});

describe('HTTP API: transfers', () => {
  it('starts a transfer and waits for its outcome; GET shows it; balances moved', async () => {
    const id = `${tag}-t1`;
    const r = await http(h, 'POST', '/v1/transfers?wait=20s', { body: { from: alice, to: bob, amount: '1234', currency: 'USD', memo: 'rent' }, headers: { 'idempotency-key': id } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.headers.get('location')).toBe(`/v1/transfers/${id}`);
    expect(r.headers.get('idempotent-replayed')).toBeNull();
    expect(r.body).toMatchObject({ id, status: 'COMPLETED', from: alice, to: bob, amount: '1234', currency: 'USD', memo: 'rent', sides: { debit: 'posted', credit: 'posted' } });
    expectSchema('Transfer', r.body);
    const got = await api.getTransfer(id);
    expect(got).toMatchObject({ id, status: 'COMPLETED', amount: '1234' });
    expect((await api.getAccount(bob)).posted).toBe('1234');
    await expectLedgerClean(h.t.ledger);
  });

  it('GET ?detail=full adds what `transfer status` reads: the run\'s result, the running state', async () => {
    const id = `${tag}-t1`; // completed by the test above
    const full = await http(h, 'GET', `/v1/transfers/${id}?detail=full`);
    expect(full.status).toBe(200);
    expectSchema('TransferDetail', full.body);
    expect(full.body).toMatchObject({ id, status: 'COMPLETED', result: { transferId: id, status: 'COMPLETED', sides: { debit: 'posted', credit: 'posted' } } });
    expect(full.body.result.steps.length).toBeGreaterThan(0);
    const plain = await http(h, 'GET', `/v1/transfers/${id}`);
    expect(plain.body.result).toBeUndefined();
    expect({ ...full.body, result: undefined }).toEqual({ ...plain.body, result: undefined });
    expectProblem(await http(h, 'GET', `/v1/transfers/${id}?detail=all`), 400, 'INVALID_INPUT');
  });

  it('the same key and body again answer with the same transfer (201, Idempotent-Replayed), nothing paid twice', async () => {
    const id = `${tag}-t2`;
    const body = { from: alice, to: bob, amount: '100', currency: 'USD' };
    const first = await http(h, 'POST', '/v1/transfers?wait=20s', { body, headers: { 'idempotency-key': id } });
    const again = await http(h, 'POST', '/v1/transfers', { body, headers: { 'idempotency-key': id } });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    const viaClient = await api.startTransfer(body, { idempotencyKey: id });
    expect(viaClient.replayed).toBe(true);
    expect(viaClient.value).toEqual(first.body);
    const records = await h.t.ledger.transferRecords(id);
    expect(records.postings.filter((p) => p.kind === 'transfer_debit' && p.accountId === alice)).toHaveLength(1);
  });

  it('the same key with another body is 422 TRANSFER_ID_REUSED naming the differing fields; nothing starts', async () => {
    const id = `${tag}-t3`;
    await api.startTransfer({ from: alice, to: bob, amount: '200', currency: 'USD', memo: 'a' }, { idempotencyKey: id, wait: '20s' });
    const r = await http(h, 'POST', '/v1/transfers', { body: { from: alice, to: bob, amount: '201', currency: 'USD', memo: 'b' }, headers: { 'idempotency-key': id } });
    expectProblem(r, 422, 'TRANSFER_ID_REUSED');
    expect(r.body.fields).toEqual(['amount', 'memo']);
    expect(r.body.detail).toMatch(/amount, memo differ/);
    const error = await api.startTransfer({ from: alice, to: bob, amount: '200', currency: 'EUR', memo: 'a' }, { idempotencyKey: id }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe('TRANSFER_ID_REUSED');
    expect((error as ApiError).fields).toEqual(['currency']);
    expect(await api.getTransfer(id)).toMatchObject({ amount: '200', memo: 'a', status: 'COMPLETED' });
  });

  it('a key whose first request is still in flight answers 409 with Retry-After', async () => {
    const id = `${tag}-t4`;
    const body = { from: alice, to: bob, amount: '150000', currency: 'USD' }; // waits for approval
    const first = http(h, 'POST', '/v1/transfers?wait=4s', { body, headers: { 'idempotency-key': id } });
    await eventually(() => api.getTransfer(id).catch(() => undefined), (t) => t?.status === 'AWAITING_APPROVAL');
    const second = await http(h, 'POST', '/v1/transfers', { body, headers: { 'idempotency-key': id } });
    expectProblem(second, 409, 'IDEMPOTENCY_KEY_IN_FLIGHT');
    expect(second.headers.get('retry-after')).toBe('1');
    const answered = await first;
    expect(answered.status).toBe(201);
    expect(answered.body.status).toBe('AWAITING_APPROVAL');
    // Answered: the key is free again, and the same request is a replay.
    const third = await http(h, 'POST', '/v1/transfers', { body, headers: { 'idempotency-key': id } });
    expect(third.status).toBe(201);
    expect(third.headers.get('idempotent-replayed')).toBe('true');
    // approve it (not by the requester), and it completes
    expect(await api.approveTransfer(id, 'carol')).toEqual({ id, approved: true, by: 'carol' });
    const done = await eventually(() => api.getTransfer(id), (t) => t.status === 'COMPLETED');
    expect(done.status).toBe('COMPLETED');
    const again = await http(h, 'POST', `/v1/transfers/${id}/approve`, { body: {} });
    expectProblem(again, 409, 'APPROVE_REJECTED');
  });

  it('cancel: a transfer waiting for approval is CANCELLED; a second cancel is 409; unknown ids 404', async () => {
    const id = `${tag}-t5`;
    await api.startTransfer({ from: alice, to: bob, amount: '120000', currency: 'USD', requestedBy: 'dave' }, { idempotencyKey: id });
    await eventually(() => api.getTransfer(id), (t) => t.status === 'AWAITING_APPROVAL');
    const refused = await http(h, 'POST', `/v1/transfers/${id}/approve`, { body: { by: 'dave' } });
    expectProblem(refused, 409, 'APPROVAL_REFUSED');
    const cancelled = await api.cancelTransfer(id, 'changed my mind');
    expect(cancelled).toMatchObject({ id, status: 'CANCELLED' });
    expectSchema('Transfer', cancelled);
    expectProblem(await http(h, 'POST', `/v1/transfers/${id}/cancel`), 409, 'CANCEL_REJECTED');
    expectProblem(await http(h, 'POST', `/v1/transfers/${tag}-nobody/cancel`, { body: {} }), 404, 'NOT_FOUND');
    expectProblem(await http(h, 'GET', `/v1/transfers/${tag}-nobody`), 404, 'NOT_FOUND');
    expectProblem(await http(h, 'POST', `/v1/transfers/${tag}-nobody/approve`, { body: {} }), 404, 'NOT_FOUND');
    expect((await api.getAccount(alice)).pendingDebits).toBe('0');
  });

  it('a transfer the ledger refuses is created and ends FAILED with the refusal code', async () => {
    const poor = accountOnShard(h.t.ledger, 1, `${tag}-poor`);
    await api.openAccount({ id: poor, currency: 'USD' });
    const { value } = await api.startTransfer({ from: poor, to: alice, amount: '5', currency: 'USD' }, { idempotencyKey: `${tag}-t6`, wait: '20s' });
    expect(value).toMatchObject({ status: 'FAILED', reason: 'INSUFFICIENT_FUNDS' });
  });

  it('lists with filters and pages with an opaque cursor', async () => {
    const from = accountOnShard(h.t.ledger, 0, `${tag}-lister`);
    await api.openAccount({ id: from, currency: 'USD' });
    await api.deposit(from, { amount: '1000', currency: 'USD' }, { idempotencyKey: `${tag}-lister-seed` });
    const ids = Array.from({ length: 5 }, (_, i) => `${tag}-l${i}`);
    for (const id of ids) await api.startTransfer({ from, to: bob, amount: '1', currency: 'USD' }, { idempotencyKey: id, wait: '20s' });
    const all = await eventually(() => api.listTransfers({ from, status: 'COMPLETED' }), (l) => l.items.length === 5);
    expect(all.items.map((i) => i.id).sort()).toEqual([...ids].sort());
    expectSchema('TransferList', all);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await api.listTransfers({ from, status: 'COMPLETED', limit: 2, ...(cursor ? { cursor } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((i) => i.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(seen.sort()).toEqual([...ids].sort());
    expect(pages).toBeGreaterThanOrEqual(3);
    const first = await api.listTransfers({ from, limit: 2 });
    expect(first.nextCursor).toBeDefined();
    // A cursor with other filters, or a made-up one, is refused.
    expectProblem(await http(h, 'GET', `/v1/transfers?to=${bob}&limit=2&cursor=${first.nextCursor}`), 400, 'INVALID_INPUT');
    expectProblem(await http(h, 'GET', '/v1/transfers?cursor=bm90LWEtY3Vyc29y'), 400, 'INVALID_INPUT');
    expect((await api.listTransfers({ from, currency: 'EUR' })).items).toEqual([]);
    expect((await api.listTransfers({ to: from })).items).toEqual([]);
  });
});
