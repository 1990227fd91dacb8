import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { listDeliveries } from '../../src/messaging/webhooks/deliveries.js';
import { WebhookDispatcher } from '../../src/messaging/webhooks/dispatcher.js';
import { addEndpoint } from '../../src/messaging/webhooks/endpoints.js';
import { fundBalances, startFundAccountReceiver } from '../../src/receiver/fund-account.js';
import { createMessagingDbs, deliveryStates, FAST, insertEvent, scriptedReceiver, waitFor, type MessagingDbs } from './support.js';

let dbs: MessagingDbs;
beforeAll(async () => {
  dbs = await createMessagingDbs();
});
afterAll(async () => {
  await dbs?.drop();
});
beforeEach(async () => {
  await dbs.messages.query('TRUNCATE webhook_endpoints CASCADE');
});

const CHILD = fileURLToPath(new URL('./dispatcher-child.ts', import.meta.url));

async function insertMany(count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(await insertEvent(dbs.shards[i % dbs.shards.length]!, { account: `fund-${i % 7}` }));
  return ids;
}

describe('crashes and concurrency', () => {
  it('two dispatchers at once deliver each event once to each endpoint', async () => {
    const a = await scriptedReceiver((_h, _req, res) => res.writeHead(200).end());
    const b = await scriptedReceiver((_h, _req, res) => res.writeHead(204).end());
    await addEndpoint(dbs.messages, { url: a.url, eventTypes: ['*'] });
    await addEndpoint(dbs.messages, { url: b.url, eventTypes: ['transfer.credit_posted'] });
    const ids = await insertMany(200);
    // A long deadline and lease: no attempt times out on a loaded machine (a timeout is a legitimate
    // resend), so a duplicate here could only come from two dispatchers claiming the same row.
    const settings = { ...FAST, timeoutMs: 15_000, leaseMarginMs: 60_000, fanOutPageSize: 25, batchSize: 10 };
    const dispatchers = [0, 1].map(() => new WebhookDispatcher({ messages: dbs.messages, shards: dbs.shards, settings }));
    dispatchers.forEach((d) => d.start());
    try {
      await waitFor('400 deliveries', async () => (await deliveryStates(dbs.messages)).filter((d) => d.status === 'delivered').length === 400, 60_000);
    } finally {
      await Promise.all(dispatchers.map((d) => d.stop()));
    }
    expect((await deliveryStates(dbs.messages)).every((d) => d.attempts === 1)).toBe(true);
    for (const r of [a, b]) {
      expect(r.hits).toHaveLength(200);
      expect(new Set(r.hits.map((h) => h.id))).toEqual(new Set(ids));
      await r.close();
    }
  });

  it('a dispatcher killed after the receiver answered and before recording it: redelivered, absorbed by the receiver', async () => {
    const { endpoint, secret } = await addEndpoint(dbs.messages, { url: 'http://127.0.0.1:1/placeholder', eventTypes: ['transfer.credit_posted'] });
    const receiver = await startFundAccountReceiver({ databaseUrl: dbs.fundUrl, secrets: [secret] });
    await dbs.messages.query('UPDATE webhook_endpoints SET url = $2::text WHERE id = $1::uuid', [endpoint.id, receiver.url]);
    try {
      const id = await insertEvent(dbs.shards[1]!, { account: 'fund-crash', amount: '2500' });
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, MESSAGES_URL: dbs.messagesUrl, SHARD_URLS: dbs.shardUrls.join(',') }, stdio: ['ignore', 'pipe', 'inherit'] });
      const answered = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => {
          out += d;
          const line = /answered (\S+) (\S+)/.exec(out);
          if (line) resolve(`${line[1]} ${line[2]}`);
        });
        child.once('exit', (code) => reject(new Error(`dispatcher child exited (${code}) before answering`)));
      });
      expect(answered).toBe(`${id} 204`);
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      // The receiver applied it; the messages database still says pending, attempt 1 claimed.
      expect(await fundBalances(receiver.pool)).toEqual([{ account: 'fund-crash', currency: 'USD', balance: '2500', credits: 1 }]);
      expect(await deliveryStates(dbs.messages)).toMatchObject([{ eventId: id, status: 'pending', attempts: 1, lastStatus: null }]);
      const survivor = new WebhookDispatcher({ messages: dbs.messages, shards: dbs.shards, settings: FAST });
      survivor.start();
      try {
        await waitFor('redelivered once the lease ran out', async () => (await deliveryStates(dbs.messages))[0]?.status === 'delivered');
      } finally {
        await survivor.stop();
      }
      const [row] = await listDeliveries(dbs.messages, { eventId: id, limit: 1 });
      // Attempt 2 got 200 (the receiver's "already applied"), not 204: the duplicate was absorbed.
      expect(row!.history.map((h) => [h.attempt, h.httpStatus])).toEqual([[2, 200]]);
      expect(await fundBalances(receiver.pool)).toEqual([{ account: 'fund-crash', currency: 'USD', balance: '2500', credits: 1 }]);
    } finally {
      await receiver.close();
    }
  });

  it('database connections cut mid-batch, again and again: nothing lost', async () => {
    const r = await scriptedReceiver((_h, _req, res) => res.writeHead(200).end());
    await addEndpoint(dbs.messages, { url: r.url, eventTypes: ['*'] });
    const ids = await insertMany(300);
    const dispatcher = new WebhookDispatcher({ messages: dbs.messages, shards: dbs.shards, settings: { ...FAST, fanOutPageSize: 20, batchSize: 10, pollMs: 10 } });
    const admin = new pg.Client({ connectionString: inject('pgUrl') });
    await admin.connect();
    const names = [new URL(dbs.messagesUrl).pathname.slice(1), ...dbs.shardUrls.map((u) => new URL(u).pathname.slice(1))];
    let terminated = 0;
    dispatcher.start();
    try {
      // Bounded: 15 rounds, 100 ms apart, while fan-out and sends are in flight.
      for (let round = 0; round < 15; round++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const { rows } = await admin.query<{ ok: boolean }>('SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = ANY($1::text[]) AND pid <> pg_backend_pid()', [names]);
        terminated += rows.filter((x) => x.ok).length;
      }
      // The test's own pool loses connections too: a check that hits a cut one just asks again.
      const count = () => dbs.messages.query<{ n: string }>(`SELECT count(*)::text AS n FROM webhook_deliveries WHERE status = 'delivered'`).then((r) => r.rows[0]!.n, () => 'connection cut');
      await waitFor('every event delivered', async () => (await count()) === '300', 60_000);
    } finally {
      await dispatcher.stop();
      await admin.end();
      await r.close();
    }
    expect(terminated).toBeGreaterThan(0);
    // At least once: every event arrived; a duplicate is allowed (a cut between send and record).
    expect(new Set(r.hits.map((h) => h.id))).toEqual(new Set(ids));
  });
});
