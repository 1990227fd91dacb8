import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ephemeralPort } from '../../src/embedded/ports.js';
import { WebhookDispatcher } from '../../src/messaging/webhooks/dispatcher.js';
import { addEndpoint, newSecret, rotateSecret } from '../../src/messaging/webhooks/endpoints.js';
import { fundBalances, startFundAccountReceiver } from '../../src/receiver/fund-account.js';
import { CLI, cliEnv } from '../support/cli.js';
import { createMessagingDbs, FAST, insertEvent, scriptedReceiver, waitFor, type MessagingDbs } from './support.js';

let dbs: MessagingDbs;
beforeAll(async () => {
  dbs = await createMessagingDbs();
});
afterAll(async () => {
  await dbs?.drop();
});

function post(url: string, body: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const credit = (id: string, amount: string) => JSON.stringify({ id, type: 'transfer.credit_posted', timestamp: new Date().toISOString(), data: { transferId: `t-${id}`, account: 'fund-sig', amount, currency: 'USD' } });

describe('the fund-account reference receiver', () => {
  it('verifies the raw body and timestamp, and applies a repeated webhook-id once', async () => {
    const secret = newSecret();
    const receiver = await startFundAccountReceiver({ databaseUrl: dbs.fundUrl, secrets: [secret] });
    try {
      const signer = new Webhook(secret);
      const body = credit('msg-1', '700');
      const at = new Date();
      const headers = (b: string, when = at, s = signer) => ({ 'webhook-id': 'msg-1', 'webhook-timestamp': String(Math.floor(when.getTime() / 1000)), 'webhook-signature': s.sign('msg-1', when, b) });
      // Same JSON, different bytes (a space): the signature is over the raw body, so it fails.
      expect(await post(receiver.url, body.replace('{', '{ '), headers(body))).toBe(401);
      // Signed by someone else's secret.
      expect(await post(receiver.url, body, headers(body, at, new Webhook(newSecret())))).toBe(401);
      // Correctly signed but 10 minutes old: outside the tolerance (replayed capture).
      const old = new Date(Date.now() - 10 * 60_000);
      expect(await post(receiver.url, body, headers(body, old))).toBe(401);
      expect(await fundBalances(receiver.pool)).toEqual([]);
      expect(await post(receiver.url, body, headers(body))).toBe(204);
      expect(await post(receiver.url, body, headers(body))).toBe(200);
      expect(await fundBalances(receiver.pool)).toEqual([{ account: 'fund-sig', currency: 'USD', balance: '700', credits: 1 }]);
    } finally {
      await receiver.close();
    }
  });

  it('after a secret rotation, deliveries verify with the previous secret and with the new one', async () => {
    const oldOnly = await scriptedReceiver((_h, _req, res) => res.writeHead(200).end());
    const { endpoint, secret: previous } = await addEndpoint(dbs.messages, { url: oldOnly.url, eventTypes: ['*'] });
    const { secret: next } = await rotateSecret(dbs.messages, endpoint.id, 60_000);
    const id = await insertEvent(dbs.shards[0]!);
    const dispatcher = new WebhookDispatcher({ messages: dbs.messages, shards: dbs.shards, settings: FAST });
    dispatcher.start();
    try {
      await waitFor('delivered', () => oldOnly.hits.some((h) => h.id === id));
    } finally {
      await dispatcher.stop();
      await oldOnly.close();
      await dbs.messages.query('TRUNCATE webhook_endpoints CASCADE');
    }
    const hit = oldOnly.hits.find((h) => h.id === id)!;
    const headers = { 'webhook-id': hit.id, 'webhook-timestamp': hit.timestamp, 'webhook-signature': hit.signature };
    expect(hit.signature.split(' ')).toHaveLength(2);
    expect(() => new Webhook(previous).verify(hit.body, headers)).not.toThrow();
    expect(() => new Webhook(next).verify(hit.body, headers)).not.toThrow();
  });

  it('killed while transfers run and restarted, it catches up with nothing lost or doubled', async () => {
    const port = await ephemeralPort();
    const url = `http://127.0.0.1:${port}/webhooks`;
    const { secret } = await addEndpoint(dbs.messages, { url, eventTypes: ['transfer.credit_posted'] });
    const env = cliEnv({ FUND_ACCOUNT_DATABASE_URL: dbs.fundUrl, WEBHOOK_SECRETS: secret });
    const start = async (): Promise<ChildProcess> => {
      const child = spawn(process.execPath, [CLI, 'receiver', '--port', String(port)], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      await new Promise<void>((resolve, reject) => {
        let err = '';
        child.stderr!.setEncoding('utf8').on('data', (d: string) => {
          err += d;
          if (err.includes('listening on')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`receiver exited (${code}): ${err}`)));
      });
      return child;
    };
    const kill = async (child: ChildProcess) => {
      child.kill('SIGKILL');
      if (child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('exit', resolve));
    };
    const dispatcher = new WebhookDispatcher({ messages: dbs.messages, shards: dbs.shards, settings: { ...FAST, retryScheduleMs: Array.from({ length: 100 }, () => 300) } });
    dispatcher.start();
    let receiver = await start();
    const amounts: bigint[] = [];
    const pay = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const amount = BigInt(100 + amounts.length);
        amounts.push(amount);
        await insertEvent(dbs.shards[amounts.length % 2]!, { account: 'fund-main', amount: amount.toString() });
      }
    };
    try {
      await pay(20);
      await waitFor('some credits applied', async () => (await dbs.messages.query(`SELECT 1 FROM webhook_deliveries WHERE status = 'delivered'`)).rowCount! > 0);
      await kill(receiver);
      // Transfers go on while the receiver is down: their deliveries fail and wait for retries.
      await pay(30);
      await waitFor('failed attempts while down', async () => (await dbs.messages.query('SELECT 1 FROM webhook_attempts WHERE http_status IS NULL')).rowCount! > 0);
      receiver = await start();
      await pay(10);
      await waitFor('all 60 delivered', async () => (await dbs.messages.query<{ n: string }>(`SELECT count(*)::text AS n FROM webhook_deliveries WHERE status = 'delivered'`)).rows[0]!.n === '60', 60_000);
    } finally {
      await kill(receiver);
      await dispatcher.stop();
    }
    const total = amounts.reduce((a, b) => a + b, 0n);
    const check = await startFundAccountReceiver({ databaseUrl: dbs.fundUrl, secrets: [secret] });
    try {
      expect((await fundBalances(check.pool)).filter((b) => b.account === 'fund-main')).toEqual([{ account: 'fund-main', currency: 'USD', balance: total.toString(), credits: 60 }]);
      expect((await check.pool.query(`SELECT 1 FROM fund_credits WHERE account = 'fund-main'`)).rowCount).toBe(60);
    } finally {
      await check.close();
    }
  }, 150_000);
});
