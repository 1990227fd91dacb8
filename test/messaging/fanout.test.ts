import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebhookDispatcher } from '../../src/messaging/webhooks/dispatcher.js';
import { addEndpoint } from '../../src/messaging/webhooks/endpoints.js';
import { createMessagingDbs, type MessagingDbs } from './support.js';

let dbs: MessagingDbs;
beforeAll(async () => {
  dbs = await createMessagingDbs();
});
afterAll(async () => {
  await dbs?.drop();
});

describe('fan-out', () => {
  it('pages through many events of one transaction, and of many, without losing one (seq 9 before seq 10: numeric order, not text)', async () => {
    await addEndpoint(dbs.messages, { url: 'http://127.0.0.1:9/never-called', eventTypes: ['*'] });
    await dbs.messages.query('UPDATE webhook_endpoints SET enabled = true');
    // 1000 events in one transaction on shard 0, 300 in 300 transactions on shard 1.
    await dbs.shards[0]!.query(`INSERT INTO ledger_events (aggregatetype, aggregateid, type, payload)
      SELECT 'transfer', 't-' || i, 'transfer.credit_posted', jsonb_build_object('amount', i::text) FROM generate_series(1, 1000) AS i`);
    for (let i = 0; i < 300; i++) await dbs.shards[1]!.query(`INSERT INTO ledger_events (aggregatetype, aggregateid, type, payload) VALUES ('transfer', $1::text, 'transfer.debit_posted', '{}')`, [`u-${i}`]);
    const dispatcher = new WebhookDispatcher({ messages: dbs.messages, shards: dbs.shards, settings: { fanOutPageSize: 97 } });
    expect(await dispatcher.fanOutAll()).toBe(true);
    const { rows } = await dbs.messages.query<{ shard: number; n: string }>('SELECT shard, count(*)::text AS n FROM webhook_deliveries GROUP BY shard ORDER BY shard');
    expect(rows).toEqual([{ shard: 0, n: '1000' }, { shard: 1, n: '300' }]);
    // Read again: nothing new, nothing doubled.
    expect(await dispatcher.fanOutAll()).toBe(false);
  });
});
