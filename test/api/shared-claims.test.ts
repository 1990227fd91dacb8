import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransferApi } from '../../src/api/client.js';
import { createApiServer } from '../../src/api/server.js';
import { evenSlotMap } from '../../src/domain/slots.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { accountOnShard } from '../support/ledger.js';
import { connectDevServer } from '../support/temporal.js';
import { eventually, expectProblem, http, useApiServer, type ApiHarness } from './support.js';

/**
 * Two API servers on the same ledger and Temporal, as two `transfer serve` processes would be: the
 * second has its own Temporal connection and its own ledger pools. An Idempotency-Key in flight on
 * one is in flight on both (the claim lives in shard 0's api_key_claims), and a claim left by a
 * process that died expires.
 */
const h = useApiServer();
const tag = `claims-${randomBytes(3).toString('hex')}`;
let second: ApiHarness;
let secondApp: FastifyInstance;
let secondLedger: Ledger;
let secondEnv: TestWorkflowEnvironment;
let a0: string;
let a1: string;

beforeAll(async () => {
  secondLedger = Ledger.connect({ shardUrls: h.t.urls, slotMap: evenSlotMap(h.t.urls.length), poolSize: 8 });
  secondEnv = await connectDevServer();
  secondApp = await createApiServer({ client: secondEnv.client, taskQueue: h.taskQueue, ledger: secondLedger, apiKeys: [h.apiKey] });
  await secondApp.listen({ host: '127.0.0.1', port: 0 });
  second = { ...h, app: secondApp, baseUrl: `http://127.0.0.1:${(secondApp.server.address() as AddressInfo).port}` };
  const api = createTransferApi({ baseUrl: h.baseUrl, apiKey: h.apiKey });
  a0 = accountOnShard(h.t.ledger, 0, `${tag}-a`);
  a1 = accountOnShard(h.t.ledger, 1, `${tag}-b`);
  for (const id of [a0, a1]) await api.openAccount({ id, currency: 'USD' });
  await api.deposit(a0, { amount: '500000', currency: 'USD' }, { idempotencyKey: `${tag}-seed` });
});
afterAll(async () => {
  await secondApp?.close();
  await secondEnv?.teardown();
  await secondLedger?.close();
});

describe('HTTP API: an Idempotency-Key in flight is shared by every API process of the ledger', () => {
  it('a transfer key in flight on one server answers 409 on the other; once answered, a replay there', async () => {
    const id = `${tag}-t1`;
    const body = { from: a0, to: a1, amount: '150000', currency: 'USD' }; // waits for approval
    const first = http(h, 'POST', '/v1/transfers?wait=8s', { body, headers: { 'idempotency-key': id } });
    // In flight on the first server: its claim is in shard 0's table.
    const claims = () => h.t.ledger.shards[0]!.pool.query('SELECT owner FROM api_key_claims WHERE slot = $1', [`transfer:${id}`]).then((r) => r.rowCount);
    expect(await eventually(claims, (n) => n === 1)).toBe(1);
    const other = await http(second, 'POST', '/v1/transfers', { body, headers: { 'idempotency-key': id } });
    expectProblem(other, 409, 'IDEMPOTENCY_KEY_IN_FLIGHT');
    expect(other.headers.get('retry-after')).toBe('1');
    const answered = await first;
    expect(answered.status).toBe(201);
    expect(answered.body.status).toBe('AWAITING_APPROVAL');
    expect(await claims()).toBe(0);
    const replay = await http(second, 'POST', '/v1/transfers', { body, headers: { 'idempotency-key': id } });
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    await http(h, 'POST', `/v1/transfers/${id}/cancel`, { body: { reason: 'test over' } });
  });

  it('a claim left by a process that died blocks its key only until its lease expires', async () => {
    const key = `${tag}-crashed`;
    const control = h.t.ledger.shards[0]!.pool;
    await control.query(`INSERT INTO api_key_claims (slot, owner, expires_at) VALUES ($1, 'a process that died', now() + interval '1500 milliseconds')`, [`movement:${key}`]);
    const blocked = await http(second, 'POST', `/v1/accounts/${a1}/deposits`, { body: { amount: '7', currency: 'USD' }, headers: { 'idempotency-key': key } });
    expectProblem(blocked, 409, 'IDEMPOTENCY_KEY_IN_FLIGHT');
    await new Promise((r) => setTimeout(r, 1_700));
    const taken = await http(second, 'POST', `/v1/accounts/${a1}/deposits`, { body: { amount: '7', currency: 'USD' }, headers: { 'idempotency-key': key } });
    expect(taken.status, JSON.stringify(taken.body)).toBe(201);
    // Answered: the claim is gone, not left to expire.
    expect((await control.query('SELECT count(*)::int AS n FROM api_key_claims WHERE slot = $1', [`movement:${key}`])).rows[0].n).toBe(0);
  });

  it('one deposit key fired at accounts on two shards through two servers at once: exactly one applies', async () => {
    for (let round = 0; round < 8; round++) {
      const key = `${tag}-race-${round}`;
      const before = await Promise.all([h.t.ledger.getAccount(a0), h.t.ledger.getAccount(a1)]);
      const answers = await Promise.all([
        http(h, 'POST', `/v1/accounts/${a0}/deposits`, { body: { amount: '11', currency: 'USD' }, headers: { 'idempotency-key': key } }),
        http(second, 'POST', `/v1/accounts/${a1}/deposits`, { body: { amount: '11', currency: 'USD' }, headers: { 'idempotency-key': key } }),
      ]);
      const applied = answers.filter((a) => a.status === 201);
      const refused = answers.filter((a) => a.status !== 201);
      expect(applied, JSON.stringify(answers.map((a) => a.body))).toHaveLength(1);
      // The other was either still in flight (409) or came second and found the key used (422).
      expect(['IDEMPOTENCY_KEY_IN_FLIGHT', 'IDEMPOTENCY_KEY_REUSED']).toContain(refused[0]!.body.code);
      expectProblem(refused[0]!, refused[0]!.body.code === 'IDEMPOTENCY_KEY_IN_FLIGHT' ? 409 : 422, refused[0]!.body.code as string);
      expect(await h.t.ledger.movementRecords(key)).toHaveLength(1);
      const after = await Promise.all([h.t.ledger.getAccount(a0), h.t.ledger.getAccount(a1)]);
      const moved = after.map((a, i) => BigInt(a.posted) - BigInt(before[i]!.posted));
      expect(moved.sort()).toEqual([0n, 11n]);
      // A retry of the loser now meets the used key on the other shard: 422, never a second deposit.
      const loser = answers[0]!.status === 201 ? { server: second, account: a1 } : { server: h, account: a0 };
      expectProblem(await http(loser.server, 'POST', `/v1/accounts/${loser.account}/deposits`, { body: { amount: '11', currency: 'USD' }, headers: { 'idempotency-key': key } }), 422, 'IDEMPOTENCY_KEY_REUSED');
    }
  });
});
