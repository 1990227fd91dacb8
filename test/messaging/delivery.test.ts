import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DispatcherSettings } from '../../src/messaging/webhooks/config.js';
import { listDeliveries } from '../../src/messaging/webhooks/deliveries.js';
import { WebhookDispatcher } from '../../src/messaging/webhooks/dispatcher.js';
import { addEndpoint } from '../../src/messaging/webhooks/endpoints.js';
import { createMessagingDbs, deliveryStates, FAST, insertEvent, scriptedReceiver, waitFor, type MessagingDbs, type ScriptedReceiver } from './support.js';

let dbs: MessagingDbs;
let dispatcher: WebhookDispatcher | undefined;
const receivers: ScriptedReceiver[] = [];

beforeAll(async () => {
  dbs = await createMessagingDbs();
});
afterAll(async () => {
  await dbs?.drop();
});
beforeEach(async () => {
  // Each test starts with no endpoints; older events stay behind the shards' cursors.
  await dbs.messages.query('TRUNCATE webhook_endpoints CASCADE');
});
afterEach(async () => {
  await dispatcher?.stop();
  dispatcher = undefined;
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

function run(settings: Partial<DispatcherSettings> = {}): WebhookDispatcher {
  dispatcher = new WebhookDispatcher({ messages: dbs.messages, shards: dbs.shards, settings: { ...FAST, ...settings } });
  dispatcher.start();
  return dispatcher;
}

async function receiver(...args: Parameters<typeof scriptedReceiver>): Promise<ScriptedReceiver> {
  const r = await scriptedReceiver(...args);
  receivers.push(r);
  return r;
}

const statusOf = async (eventId: string) => (await deliveryStates(dbs.messages)).find((d) => d.eventId === eventId);

describe('webhook delivery', () => {
  it('delivers every event from every shard once, signed per Standard Webhooks with the event id as webhook-id', async () => {
    const r = await receiver((_h, _req, res) => res.writeHead(204).end());
    const { secret } = await addEndpoint(dbs.messages, { url: r.url, eventTypes: ['transfer.*'] });
    const ids = [await insertEvent(dbs.shards[0]!), await insertEvent(dbs.shards[1]!), await insertEvent(dbs.shards[1]!, { type: 'transfer.debit_posted' })];
    // Not subscribed: an account event must not be sent.
    const skipped = await insertEvent(dbs.shards[0]!, { type: 'account.deposited' });
    run();
    await waitFor('three deliveries', async () => (await deliveryStates(dbs.messages)).filter((d) => d.status === 'delivered').length === 3);
    expect(r.hits.map((h) => h.id).sort()).toEqual([...ids].sort());
    const verifier = new Webhook(secret);
    for (const hit of r.hits) {
      const body = verifier.verify(hit.body, { 'webhook-id': hit.id, 'webhook-timestamp': hit.timestamp, 'webhook-signature': hit.signature }) as { id: string; type: string; data: { amount: string } };
      expect(body.id).toBe(hit.id);
      expect(body.data.amount).toBe('100');
      // A body altered by one byte no longer verifies: the signature covers the raw bytes.
      expect(() => verifier.verify(hit.body.replace('"100"', '"101"'), { 'webhook-id': hit.id, 'webhook-timestamp': hit.timestamp, 'webhook-signature': hit.signature })).toThrow();
    }
    expect(await statusOf(skipped)).toBeUndefined();
    const rows = await listDeliveries(dbs.messages, { limit: 10 });
    expect(rows.every((d) => d.attempts === 1 && d.lastStatus === 204 && d.lastLatencyMs !== null && d.history.length === 1)).toBe(true);
  });

  it('retries a 500 with the same webhook-id on the schedule, then records the success', async () => {
    const r = await receiver((_h, _req, res, n) => res.writeHead(n <= 2 ? 500 : 200).end());
    await addEndpoint(dbs.messages, { url: r.url, eventTypes: ['*'] });
    const id = await insertEvent(dbs.shards[0]!);
    run({ retryScheduleMs: [150, 300, 1000], jitter: 0 });
    await waitFor('delivered after two 500s', async () => (await statusOf(id))?.status === 'delivered');
    expect(r.hits.map((h) => h.id)).toEqual([id, id, id]);
    // The gaps follow the schedule (jitter off): at least 150 ms, then at least 300 ms.
    expect(r.hits[1]!.at - r.hits[0]!.at).toBeGreaterThanOrEqual(140);
    expect(r.hits[2]!.at - r.hits[1]!.at).toBeGreaterThanOrEqual(290);
    const [row] = await listDeliveries(dbs.messages, { eventId: id, limit: 1 });
    expect(row!.history.map((a) => a.httpStatus)).toEqual([500, 500, 200]);
  });

  it('honours Retry-After when it asks for longer than the schedule', async () => {
    const r = await receiver((_h, _req, res, n) => (n === 1 ? res.writeHead(429, { 'retry-after': '1' }).end() : res.writeHead(200).end()));
    await addEndpoint(dbs.messages, { url: r.url, eventTypes: ['*'] });
    const id = await insertEvent(dbs.shards[0]!);
    run({ retryScheduleMs: [30, 30, 30] });
    await waitFor('delivered after Retry-After', async () => (await statusOf(id))?.status === 'delivered');
    expect(r.hits).toHaveLength(2);
    expect(r.hits[1]!.at - r.hits[0]!.at).toBeGreaterThanOrEqual(950);
  });

  it('410 Gone disables the endpoint and nothing more is sent to it', async () => {
    const r = await receiver((_h, _req, res) => res.writeHead(410).end());
    const { endpoint } = await addEndpoint(dbs.messages, { url: r.url, eventTypes: ['*'] });
    const first = await insertEvent(dbs.shards[0]!);
    run();
    await waitFor('endpoint disabled', async () => (await dbs.messages.query('SELECT 1 FROM webhook_endpoints WHERE id = $1::uuid AND NOT enabled', [endpoint.id])).rowCount === 1);
    const { rows } = await dbs.messages.query<{ disabled_reason: string }>('SELECT disabled_reason FROM webhook_endpoints WHERE id = $1::uuid', [endpoint.id]);
    expect(rows[0]!.disabled_reason).toMatch(/410 Gone/);
    expect(await statusOf(first)).toMatchObject({ status: 'dead', lastStatus: 410 });
    const later = await insertEvent(dbs.shards[0]!);
    const seq = (await dbs.shards[0]!.query<{ seq: string }>('SELECT seq::text FROM ledger_events WHERE id = $1::uuid', [later])).rows[0]!.seq;
    await waitFor('cursor past the later event', async () => (await dbs.messages.query('SELECT 1 FROM webhook_cursors WHERE shard = 0 AND seq >= $1::bigint', [seq])).rowCount === 1);
    expect(await statusOf(later)).toBeUndefined();
    expect(r.hits).toHaveLength(1);
  });

  it('a receiver that accepts the connection and never answers times out and is retried', async () => {
    // First request: socket left open with no response at all. Second: answered.
    const r = await receiver((_h, _req, res, n) => void (n === 1 ? undefined : res.writeHead(200).end()));
    await addEndpoint(dbs.messages, { url: r.url, eventTypes: ['*'] });
    const id = await insertEvent(dbs.shards[1]!);
    run({ timeoutMs: 300 });
    await waitFor('delivered on the second attempt', async () => (await statusOf(id))?.status === 'delivered');
    const [row] = await listDeliveries(dbs.messages, { eventId: id, limit: 1 });
    expect(row!.history).toHaveLength(2);
    expect(row!.history[0]!.error).toMatch(/no response within 300 ms/);
    expect(row!.history[0]!.latencyMs).toBeGreaterThanOrEqual(290);
    expect(row!.history[1]!.httpStatus).toBe(200);
  });

  it('a 2xx sent before the body was read counts as delivered (once)', async () => {
    const r = await receiver((_h, _req, res) => res.writeHead(202).end(), { readBody: false });
    await addEndpoint(dbs.messages, { url: r.url, eventTypes: ['*'] });
    // A body large enough that it is still being written when the answer arrives.
    const id = (await dbs.shards[0]!.query<{ id: string }>(
      `INSERT INTO ledger_events (aggregatetype, aggregateid, type, payload) VALUES ('transfer', 't-big', 'transfer.credit_posted', jsonb_build_object('memo', repeat('x', 2000000))) RETURNING id::text`)).rows[0]!.id;
    run();
    await waitFor('delivered', async () => (await statusOf(id))?.status === 'delivered');
    expect(await statusOf(id)).toMatchObject({ attempts: 1, lastStatus: 202 });
    expect(r.hits.map((h) => h.id)).toEqual([id]);
  });

  it('a redirect is a failed attempt and is not followed; exhausted attempts end dead', async () => {
    const target = await receiver((_h, _req, res) => res.writeHead(200).end());
    const r = await receiver((_h, _req, res) => res.writeHead(302, { location: target.url }).end());
    await addEndpoint(dbs.messages, { url: r.url, eventTypes: ['*'] });
    const id = await insertEvent(dbs.shards[0]!);
    run();
    await waitFor('dead letter', async () => (await statusOf(id))?.status === 'dead', 30_000);
    // First attempt + one per scheduled delay (three in FAST), then nothing more.
    expect(await statusOf(id)).toMatchObject({ attempts: 4, lastStatus: 302, lastError: 'redirect 302 not followed' });
    expect(r.hits).toHaveLength(4);
    expect(target.hits).toHaveLength(0);
  });

  it('a receiver failing forever (500) is dead-lettered after the schedule, and replay makes it due again', async () => {
    let healthy = false;
    const r = await receiver((_h, _req, res) => res.writeHead(healthy ? 200 : 500).end());
    await addEndpoint(dbs.messages, { url: r.url, eventTypes: ['*'] });
    const id = await insertEvent(dbs.shards[1]!);
    run();
    await waitFor('dead letter', async () => (await statusOf(id))?.status === 'dead', 30_000);
    expect(r.hits).toHaveLength(4);
    healthy = true;
    const { replayDead } = await import('../../src/messaging/webhooks/deliveries.js');
    expect(await replayDead(dbs.messages)).toBe(1);
    await waitFor('delivered after replay', async () => (await statusOf(id))?.status === 'delivered');
    expect(r.hits.map((h) => h.id)).toEqual([id, id, id, id, id]);
  });

  it('prunes delivered deliveries after the retention time and keeps the others', async () => {
    const ok = await receiver((_h, _req, res) => res.writeHead(200).end());
    const failing = await receiver((_h, _req, res) => res.writeHead(503).end());
    await addEndpoint(dbs.messages, { url: ok.url, eventTypes: ['*'] });
    await addEndpoint(dbs.messages, { url: failing.url, eventTypes: ['*'] });
    const id = await insertEvent(dbs.shards[0]!);
    run({ retentionMs: 300, pruneEveryMs: 50, retryScheduleMs: [60_000] });
    await waitFor('one delivered, one failed', async () => ok.hits.length === 1 && failing.hits.length === 1);
    await waitFor('delivered row pruned', async () => (await deliveryStates(dbs.messages)).filter((d) => d.eventId === id).length === 1);
    expect((await deliveryStates(dbs.messages)).filter((d) => d.eventId === id)).toMatchObject([{ status: 'pending', lastStatus: 503 }]);
  });
});
