import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evenSlotMap } from '../../src/domain/slots.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { WebhookDispatcher } from '../../src/messaging/webhooks/dispatcher.js';
import { addEndpoint } from '../../src/messaging/webhooks/endpoints.js';
import { fundBalances, startFundAccountReceiver } from '../../src/receiver/fund-account.js';
import { fresh, fundedAccount, reserveInput } from '../ledger/semantics-support.js';
import { createMessagingDbs, FAST, scriptedReceiver, waitFor, type MessagingDbs } from './support.js';

/** The whole path with events written by the ledger itself: ledger operation → webhook → receiver effect. */
let dbs: MessagingDbs;
let ledger: Ledger;
beforeAll(async () => {
  dbs = await createMessagingDbs();
  ledger = Ledger.connect({ shardUrls: dbs.shardUrls, slotMap: evenSlotMap(2), poolSize: 4 });
});
afterAll(async () => {
  await ledger?.close();
  await dbs?.drop();
});

describe('ledger events delivered', () => {
  it('cross-shard transfers credit the fund-account receiver once each, replays included; every event reaches a "*" subscriber', async () => {
    const all = await scriptedReceiver((_h, _req, res) => res.writeHead(204).end());
    const { endpoint, secret } = await addEndpoint(dbs.messages, { url: 'http://127.0.0.1:9/placeholder', eventTypes: ['transfer.credit_posted'] });
    await addEndpoint(dbs.messages, { url: all.url, eventTypes: ['*'] });
    const receiver = await startFundAccountReceiver({ databaseUrl: dbs.fundUrl, secrets: [secret] });
    await dbs.messages.query('UPDATE webhook_endpoints SET url = $2::text WHERE id = $1::uuid', [endpoint.id, receiver.url]);
    const dispatcher = new WebhookDispatcher({ messages: dbs.messages, shards: dbs.shards, settings: FAST });
    dispatcher.start();
    try {
      const from = await fundedAccount(ledger, 0, 'wh-from', 10_000);
      const to = await fundedAccount(ledger, 1, 'wh-to');
      const amounts = [250, 125, 40];
      for (const amount of amounts) {
        const id = fresh('wh-tr');
        const debit = await ledger.reserve(reserveInput(from, String(amount), { transferId: id, side: 'debit' }));
        const credit = await ledger.reserve(reserveInput(to, String(amount), { transferId: id, side: 'credit' }));
        await ledger.post({ key: `${id}:post-debit`, holdKey: debit.key, accountId: from, transferId: id });
        await ledger.post({ key: `${id}:post-credit`, holdKey: credit.key, accountId: to, transferId: id });
        // A retried step: the ledger replays it and writes no second event.
        await ledger.post({ key: `${id}:post-credit`, holdKey: credit.key, accountId: to, transferId: id });
      }
      // Per transfer: 4 events; plus 2 account.opened and 1 account.deposited.
      const expected = amounts.length * 4 + 3;
      await waitFor('all events at the "*" subscriber and three credits applied', async () =>
        all.hits.length >= expected && (await fundBalances(receiver.pool)).some((b) => b.credits === 3));
      expect(await fundBalances(receiver.pool)).toEqual([{ account: to, currency: 'USD', balance: '415', credits: 3 }]);
      const types = all.hits.map((h) => (JSON.parse(h.body) as { type: string }).type);
      expect(types.filter((t) => t === 'transfer.credit_posted')).toHaveLength(3);
      expect(types.filter((t) => t.startsWith('account.'))).toHaveLength(3);
      expect(new Set(all.hits.map((h) => h.id)).size).toBe(expected);
    } finally {
      await dispatcher.stop();
      await receiver.close();
      await all.close();
    }
  });
});
